package campaigns

import (
	"errors"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/wechat"
)

// Kind is the kind of message a campaign sends, which is also the WeChat API
// it uses.
type Kind string

// The message kinds.
const (
	// KindTemplate sends template messages (message/template/send).
	KindTemplate Kind = "template"
	// KindCustom sends customer-service messages (message/custom/send). They
	// reach only users inside their interaction window (wechat-api.md §3.1).
	KindCustom Kind = "custom"
	// KindSubscribe sends subscribe notifications
	// (message/subscribe/bizsend) to users who subscribed to the template.
	KindSubscribe Kind = "subscribe"
)

// API is the WeChat API that sends messages of kind k: one of the
// wechat.API* names, also the name of its rate-limit bucket and quota.
func (k Kind) API() string {
	switch k {
	case KindCustom:
		return wechat.APICustomSend
	case KindSubscribe:
		return wechat.APIBizSend
	case KindMass:
		return APIMass
	default:
		return wechat.APITemplateSend
	}
}

// Bounds of Campaign.Priority.
const (
	PriorityMin     = 1
	PriorityMax     = 10
	PriorityDefault = 5
)

// Weight is the campaign's weight in its bucket's fair sharing: its
// Priority, or PriorityDefault when it has none.
func (c *Campaign) Weight() int {
	if c.Priority < PriorityMin || c.Priority > PriorityMax {
		return PriorityDefault
	}
	return c.Priority
}

// Campaign is one message sent to one audience, run now, at a time or on a
// schedule. It is stored as JSON and is the body of the HTTP API.
//
// Exactly one of Template, Custom, Subscribe and Mass is set: the one Kind names.
// Text in the message may refer to per-recipient variables as {{.name}};
// see Validate for what is allowed and Compile for how it is rendered.
type Campaign struct {
	// ID is assigned by the store when the campaign is created.
	ID string `json:"id"`
	// Name is the operator's name for the campaign.
	Name string `json:"name"`
	// Account names the Official Account that sends: its id in the
	// accounts file (the API stores the id when given the appid, and the
	// default account when given none).
	Account string `json:"account"`
	// Kind is the kind of message.
	Kind Kind `json:"kind"`
	// Template is the message of a template campaign, else nil.
	Template *TemplateSpec `json:"template,omitempty"`
	// Custom is the message of a custom campaign, else nil.
	Custom *CustomSpec `json:"custom,omitempty"`
	// Subscribe is the message of a subscribe campaign, else nil.
	Subscribe *SubscribeSpec `json:"subscribe,omitempty"`
	// Mass is the message of a mass campaign, else nil.
	Mass *MassSpec `json:"mass,omitempty"`
	// Audience is who receives the message.
	Audience AudienceSpec `json:"audience"`
	// Schedule is when the campaign runs by itself once it is scheduled
	// (Store.Schedule): at a time or on a cron expression. Nil means it runs
	// only when started.
	Schedule *Schedule `json:"schedule,omitempty"`
	// Rate is this campaign's send rate in messages per second. Zero means
	// the account's rate for the API; a non-zero rate can only lower it.
	Rate float64 `json:"rate,omitempty"`
	// Priority weighs this campaign's share of its (account, API) bucket
	// against the other campaigns sending through it at the same time:
	// 1 to 10, 0 meaning PriorityDefault. Two campaigns of priorities 2 and
	// 4 get a third and two thirds of the bucket while both send.
	Priority int `json:"priority,omitempty"`
	// Protection is the campaign's own choices about the account's
	// protection (suppression, caps, quiet hours, the customer-service
	// window); nil keeps the account's.
	Protection *ProtectionSpec `json:"protection,omitempty"`
	// RequireTest refuses to start or schedule the campaign until a test
	// send (POST /v1/campaigns/{id}/test) reached every one of its targets
	// since the message last changed: see TestCurrent.
	RequireTest bool `json:"require_test,omitempty"`
	// TestedAt and TestedDigest are set by the store, never by a request:
	// when the campaign's last successful test send was made, and the
	// MessageDigest of the message it sent. Nil and "" before the first.
	TestedAt     *time.Time `json:"tested_at,omitempty"`
	TestedDigest string     `json:"tested_digest,omitempty"`
	// State is where the campaign is in its life; see State.
	State State `json:"state"`
	// CreatedAt and UpdatedAt are set by the store and by Transition.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TemplateSpec is the content of a template message (wechat-api.md §2.2).
type TemplateSpec struct {
	// TemplateID is the template's id in the account's template list.
	TemplateID string `json:"template_id"`
	// URL is the web page the message opens, if any. It is the same for
	// every recipient.
	URL string `json:"url,omitempty"`
	// MiniProgram is the mini program page the message opens, if any; it
	// wins over URL on clients that can open it.
	MiniProgram *wechat.MiniProgram `json:"miniprogram,omitempty"`
	// Data maps each template keyword (such as "thing1") to its value. A
	// value may refer to the recipient's variables, as in
	// "{{.name}}，您的订单已发货".
	Data map[string]string `json:"data"`
}

// SubscribeSpec is the content of a subscribe notification
// (wechat-api.md §4.1).
type SubscribeSpec struct {
	// TemplateID is the subscribe template's id.
	TemplateID string `json:"template_id"`
	// Page is the web page (an http or https URL) the notification opens,
	// if any.
	Page string `json:"page,omitempty"`
	// MiniProgram is the mini program page the notification opens, if any.
	MiniProgram *wechat.MiniProgram `json:"miniprogram,omitempty"`
	// Data maps each keyword to its value, as in TemplateSpec.Data.
	Data map[string]string `json:"data"`
}

// CustomSpec is the content of a customer-service message
// (wechat-api.md §3.2): MsgType and exactly the payload field it names.
//
// Text may refer to variables in text.content, the news article's title and
// description, the mini program card's title, and the menu's head_content,
// tail_content and item contents. Ids, media ids, URLs and page paths are the
// same for every recipient.
type CustomSpec struct {
	// MsgType is one of the wechat.MsgType* constants.
	MsgType string       `json:"msgtype"`
	Text    *wechat.Text `json:"text,omitempty"`
	// Image names temporary media by media_id, or a stored file that
	// wxmass uploads as temporary media (MediaRef).
	Image           *MediaRef               `json:"image,omitempty"`
	News            *wechat.News            `json:"news,omitempty"`
	MPNews          *wechat.Media           `json:"mpnews,omitempty"`
	MPNewsArticle   *wechat.MPNewsArticle   `json:"mpnewsarticle,omitempty"`
	MiniProgramPage *wechat.MiniProgramPage `json:"miniprogrampage,omitempty"`
	MsgMenu         *wechat.MsgMenu         `json:"msgmenu,omitempty"`
	// KFAccount sends the message as this customer-service account
	// ("name@account"), if set.
	KFAccount string `json:"kf_account,omitempty"`
}

// AudienceSource is where a campaign's recipients come from.
type AudienceSource string

// The audience sources.
const (
	// SourceInline is the list in AudienceSpec.OpenIDs.
	SourceInline AudienceSource = "inline"
	// SourceFile is an uploaded CSV or JSONL file (see AudienceReader),
	// stored with the campaign; it may carry per-recipient variables.
	SourceFile AudienceSource = "file"
	// SourceFollowers is every follower of the account, paged through
	// user/get when the run launches.
	SourceFollowers AudienceSource = "followers"
	// SourceTag is the members of the tag AudienceSpec.TagID, paged through
	// user/tag/get.
	SourceTag AudienceSource = "tag"
	// SourceWindow is every user inside their customer-service window with
	// a message left when the run launches, from the interactions the
	// account's callback recorded (custom campaigns only).
	SourceWindow AudienceSource = "window"
)

// AudienceSpec says who receives a campaign's message.
type AudienceSpec struct {
	// Source is where the recipients come from.
	Source AudienceSource `json:"source"`
	// OpenIDs is the recipients of an inline audience, at most
	// InlineMaxOpenIDs.
	OpenIDs []string `json:"openids,omitempty"`
	// TagID is the tag of a tag audience.
	TagID int64 `json:"tag_id,omitempty"`
	// Variables names the per-recipient variables the audience provides:
	// the columns (CSV) or keys (JSONL) of a file other than openid. Only a
	// file audience has variables.
	Variables []string `json:"variables,omitempty"`
}

// State is where a campaign is in its life.
//
// The transitions allowed by CanTransition are:
//
//	draft     → scheduled, running, cancelled
//	scheduled → running, cancelled, draft
//	running   → paused, completed, stopping
//	paused    → running, stopping
//	stopping  → cancelled, failed
//	completed → running (the next run of a recurring campaign, or a retry
//	            run of the failed recipients), cancelled (no more runs)
//	failed    → running (a retry run only)
//	cancelled → running (a retry run only)
//
// A live run that is cancelled, or meets a campaign-fatal errcode, stops:
// the campaign is stopping until every recipient of the run has an
// outcome, then cancelled or failed. A cancelled campaign never starts or
// fires again: it is off its schedule for good. A failed campaign (a
// campaign-fatal errcode such as a deleted template) or a cancelled one
// runs again only as a retry run that an operator asks for, over the
// recipients of one of its runs (the failed or skipped ones once the cause
// is fixed, the cancelled ones after a cancel); that run's report stays as
// it ended.
type State string

// The campaign states.
const (
	// StateDraft is a stored campaign that is not going to run yet.
	StateDraft State = "draft"
	// StateScheduled waits for the first fire of its Schedule: its start
	// time or its first cron fire. Between the runs of a recurring schedule
	// the campaign is completed, and still on its schedule (Store.Schedule).
	StateScheduled State = "scheduled"
	// StateRunning is sending.
	StateRunning State = "running"
	// StatePaused has stopped sending until it is resumed; pending sends
	// wait.
	StatePaused State = "paused"
	// StateCompleted has given every recipient of its last run a final
	// outcome.
	StateCompleted State = "completed"
	// StateStopping has stopped sending: its run's recipients without an
	// outcome are getting theirs (skipped or cancelled if certainly never
	// sent, unknown if an attempt may have reached WeChat, or the answer
	// of a call still in flight); then it is cancelled or failed.
	StateStopping State = "stopping"
	// StateCancelled was stopped by an operator. It is terminal: only a
	// retry run an operator asks for leaves it.
	StateCancelled State = "cancelled"
	// StateFailed was stopped by a campaign-fatal error. Only a retry run
	// leaves it.
	StateFailed State = "failed"
)

// ErrBadTransition is returned by Campaign.Transition for a change of state
// that State.CanTransition does not allow.
var ErrBadTransition = errors.New("campaigns: bad state transition")

// transitions lists, for each state, the states it may move to.
var transitions = map[State][]State{
	StateDraft:     {StateScheduled, StateRunning, StateCancelled},
	StateScheduled: {StateRunning, StateCancelled, StateDraft},
	StateRunning:   {StatePaused, StateCompleted, StateStopping},
	StatePaused:    {StateRunning, StateStopping},
	StateStopping:  {StateCancelled, StateFailed},
	StateCompleted: {StateRunning, StateCancelled},
	// A failed or cancelled campaign runs again only as a retry run
	// (Store.StartRetryRun): of its failed or skipped recipients once the
	// cause is fixed, of its cancelled ones after a cancel.
	StateFailed:    {StateRunning},
	StateCancelled: {StateRunning},
}

// Valid reports whether s is one of the State constants.
func (s State) Valid() bool {
	switch s {
	case StateDraft, StateScheduled, StateRunning, StatePaused, StateStopping, StateCompleted, StateCancelled, StateFailed:
		return true
	}
	return false
}

// Terminal reports whether s ends the campaign's own life: cancelled, which
// no start, schedule or fire leaves. Only a retry run an operator asks for
// (Store.StartRetryRun) runs it again, as it does a failed campaign.
func (s State) Terminal() bool {
	return s == StateCancelled
}

// CanTransition reports whether a campaign in state s may move to state to;
// see State for the table. A state never transitions to itself.
func (s State) CanTransition(to State) bool {
	for _, t := range transitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// Transition moves c to state to and sets UpdatedAt to now. It returns an
// error wrapping ErrBadTransition, naming both states, and leaves c
// unchanged when s.CanTransition(to) is false.
func (c *Campaign) Transition(to State, now time.Time) error {
	if !c.State.CanTransition(to) {
		return fmt.Errorf("%w: %q to %q", ErrBadTransition, c.State, to)
	}
	c.State = to
	c.UpdatedAt = now
	return nil
}
