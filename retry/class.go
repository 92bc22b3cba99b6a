package retry

import (
	"fmt"
	"strconv"
	"strings"
)

// Class is the kind of outcome an errcode stands for (wechat-api.md §8.2).
//
// The zero Class is ClassUnknown, so a rule or decision whose class was
// never set is treated as unknown, never as a success.
type Class int

// The classes. Their String values are stable: they are used as metric
// labels, in reports and in the rules file.
const (
	// ClassUnknown is an errcode without a rule, or an error the policy
	// cannot place. It is retried a few times, then failed.
	ClassUnknown Class = iota
	// ClassOK is a success (errcode 0, or an idempotent success such as
	// 45065).
	ClassOK
	// ClassRefreshToken (T) means the access_token was rejected; refresh it
	// and retry.
	ClassRefreshToken
	// ClassRetry (R) is a transient failure; retry later with backoff.
	ClassRetry
	// ClassRecipient (X) is terminal for this recipient: record failed,
	// do not retry.
	ClassRecipient
	// ClassMessage (M) is terminal for this message or payload: record
	// failed, do not retry as is.
	ClassMessage
	// ClassFatal (F) stops the whole campaign (or account) until a human
	// acts.
	ClassFatal
	// ClassQuota (Q) pauses this account's use of the API until the quota
	// resets. Nothing is recorded as failed.
	ClassQuota
	// ClassRest means WeChat asks to leave this user alone for a while
	// (43117): the recipient is deferred for the rule's delay, and every
	// other send to the user that counts toward the account's caps waits
	// as long. Nothing is recorded as failed.
	ClassRest
)

// String returns the stable snake_case name of c ("ok", "refresh_token",
// "retry", "recipient", "message", "fatal", "quota", "unknown"), or
// "class(N)" for a value outside the defined classes.
func (c Class) String() string {
	switch c {
	case ClassUnknown:
		return "unknown"
	case ClassOK:
		return "ok"
	case ClassRefreshToken:
		return "refresh_token"
	case ClassRetry:
		return "retry"
	case ClassRecipient:
		return "recipient"
	case ClassMessage:
		return "message"
	case ClassFatal:
		return "fatal"
	case ClassQuota:
		return "quota"
	case ClassRest:
		return "rest"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Classes returns every defined class, in the order of the constants.
func Classes() []Class {
	out := make([]Class, 0, int(ClassRest)+1)
	for c := ClassUnknown; c.valid(); c++ {
		out = append(out, c)
	}
	return out
}

// valid reports whether c is one of the defined classes.
func (c Class) valid() bool { return c >= ClassUnknown && c <= ClassRest }

// ParseClass returns the Class whose String is s. The error lists the
// accepted names.
func ParseClass(s string) (Class, error) {
	for c := ClassUnknown; c.valid(); c++ {
		if s == c.String() {
			return c, nil
		}
	}
	return ClassUnknown, fmt.Errorf("retry: class %q is not one of %s, %s", s, ruleClassList(), ClassUnknown)
}

// ruleClassList returns the names of the classes a rule may have, in the
// order of the constants, for error messages.
func ruleClassList() string {
	names := make([]string, 0, int(ClassRest))
	for c := ClassOK; c.valid(); c++ {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}

// MarshalText implements encoding.TextMarshaler with the String value. It
// fails for a value outside the defined classes.
func (c Class) MarshalText() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("retry: invalid class %d", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseClass.
func (c *Class) UnmarshalText(text []byte) error {
	v, err := ParseClass(string(text))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Action is what the sender does now with the recipient's send.
//
// The zero Action is not valid; Decide never returns it.
type Action int

// The actions.
const (
	// ActionSucceed records the send as sent.
	ActionSucceed Action = iota + 1
	// ActionRetry tries the send again after Decision.Delay.
	ActionRetry
	// ActionFail records the recipient as failed with the errcode and
	// class. No retry.
	ActionFail
	// ActionStopCampaign marks the campaign failed with the reason and
	// stops its other sends.
	ActionStopCampaign
	// ActionPause stops this account's use of the API until
	// Decision.Until. Nothing is recorded as failed; the send runs again
	// after the pause.
	ActionPause
	// ActionDefer leaves this recipient alone until Decision.Until
	// (ClassRest). Nothing is recorded as failed.
	ActionDefer
)

// String returns the stable snake_case name of a ("succeed", "retry",
// "fail", "stop_campaign", "pause"), or "action(N)" for another value.
func (a Action) String() string {
	switch a {
	case ActionSucceed:
		return "succeed"
	case ActionRetry:
		return "retry"
	case ActionFail:
		return "fail"
	case ActionStopCampaign:
		return "stop_campaign"
	case ActionPause:
		return "pause"
	case ActionDefer:
		return "defer"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// MarshalText implements encoding.TextMarshaler with the String value. It
// fails for a value outside the defined actions.
func (a Action) MarshalText() ([]byte, error) {
	if a < ActionSucceed || a > ActionPause {
		return nil, fmt.Errorf("retry: invalid action %d", int(a))
	}
	return []byte(a.String()), nil
}
