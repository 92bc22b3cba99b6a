package wechattest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Interaction is something a user does toward an account that WeChat
// pushes to the account's callback and that opens the customer-service
// window of custom/send (wechat-api.md §3.1).
type Interaction int

// The interactions of Server.Interact and Server.PushInteraction.
const (
	// InteractMessage is a text message from the user. It opens a window
	// of CSMessageWindow with CSMessageCount messages and is pushed as
	// MsgType text with Content InteractionContent and a MsgId.
	InteractMessage Interaction = iota + 1
	// InteractClick is a click on a click-push menu item. It opens a window
	// of CSEventWindow with CSEventCount messages and is pushed as a CLICK
	// event with EventKey InteractionMenuKey.
	InteractClick
	// InteractFollow is the user following the account. It makes the user
	// a follower, opens a window of CSEventWindow with CSEventCount messages
	// and is pushed as a subscribe event.
	InteractFollow
	// InteractScan is a scan of the account's parametric QR code. It opens
	// a window of CSEventWindow with CSEventCount messages. A follower's
	// scan is pushed as a SCAN event with EventKey InteractionScene; a
	// non-follower follows by it (and becomes a follower), pushed as a
	// subscribe event with EventKey "qrscene_" + InteractionScene.
	InteractScan
	// InteractUnfollow is the user unfollowing the account. It closes the
	// user's window, removes the user from the account's followers and is
	// pushed as an unsubscribe event.
	InteractUnfollow
)

// interactionNames are the names of the interactions, as in the body of
// POST /fake/interact.
var interactionNames = [...]string{
	InteractMessage:  "message",
	InteractClick:    "click",
	InteractFollow:   "follow",
	InteractScan:     "scan",
	InteractUnfollow: "unfollow",
}

// String returns the interaction's name: message, click, follow, scan or
// unfollow.
func (k Interaction) String() string {
	if k.valid() {
		return interactionNames[k]
	}
	return "Interaction(" + strconv.Itoa(int(k)) + ")"
}

func (k Interaction) valid() bool { return k >= InteractMessage && k <= InteractUnfollow }

// parseInteraction returns the interaction named s.
func parseInteraction(s string) (Interaction, bool) {
	for k := InteractMessage; k <= InteractUnfollow; k++ {
		if interactionNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// WeChat's customer-service windows (wechat-api.md §3.1). The fake divides
// the durations by Config.TimeScale.
const (
	// CSMessageWindow is how long custom/send may answer a user's message.
	CSMessageWindow = 48 * time.Hour
	// CSMessageCount is how many messages that window allows.
	CSMessageCount = 5
	// CSEventWindow is how long custom/send may answer a menu click, a
	// follow or a QR scan.
	CSEventWindow = time.Minute
	// CSEventCount is how many messages that window allows.
	CSEventCount = 3
)

// The fixed contents of pushed interactions.
const (
	// InteractionContent is the Content of a pushed user message.
	InteractionContent = "hello"
	// InteractionMenuKey is the EventKey of a pushed menu click.
	InteractionMenuKey = "KEY"
	// InteractionScene is the scene id of a pushed QR scan.
	InteractionScene = "123"
	// InteractionTicket is the Ticket of a pushed QR scan.
	InteractionTicket = "gQFfake0AAAAAAAAAAS5odHRwOi8vd2VpeGluLnFxLmNvbS9xLzAy"
)

// csKey is one user of one account.
type csKey struct{ appID, openid string }

// csWindow is a user's open customer-service window: custom/send may send
// left more messages in [start, end).
type csWindow struct {
	start, end time.Time
	left       int
}

// csWindows holds the open windows. The zero value is ready.
type csWindows struct {
	mu sync.Mutex
	m  map[csKey]csWindow
}

// open opens the window [start, end) with n messages for k, unless k's
// window ends later and still has messages left: WeChat documents the
// windows, not how they combine, and the fake keeps the more generous one
// (a menu click within a message's 48 hours keeps the message's window
// while it has messages; a click after they are used up opens its own 3).
func (w *csWindows) open(k csKey, start, end time.Time, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur, ok := w.m[k]; ok && cur.end.After(end) && cur.left > 0 {
		return
	}
	if w.m == nil {
		w.m = make(map[csKey]csWindow)
	}
	w.m[k] = csWindow{start: start, end: end, left: n}
}

// close closes k's window.
func (w *csWindows) close(k csKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, k)
}

// take uses one message of k's window at now: 0, or 45015 when no window
// is open at now and 45047 when its messages are used up.
func (w *csWindows) take(k csKey, now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur, ok := w.m[k]
	switch {
	case !ok || now.Before(cur.start) || !now.Before(cur.end):
		return 45015
	case cur.left == 0:
		return 45047
	}
	cur.left--
	w.m[k] = cur
	return 0
}

// get returns k's window if it is open at now.
func (w *csWindows) get(k csKey, now time.Time) (csWindow, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur, ok := w.m[k]
	if !ok || now.Before(cur.start) || !now.Before(cur.end) {
		return csWindow{}, false
	}
	return cur, true
}

// accountOf returns the account appID, or the first account for "".
func (s *Server) accountOf(appID string) (*account, error) {
	if appID == "" {
		return s.accounts[s.set.accounts[0].AppID], nil
	}
	if a := s.accounts[appID]; a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("wechattest: app_id %q: no such account", appID)
}

// interaction is one recorded interaction, resolved for its push.
type interaction struct {
	acct      *account
	openid    string
	kind      Interaction
	at        time.Time
	subscribe bool // a scan by a non-follower, pushed as subscribe
}

// Interact records that user openid did kind toward account appID (the
// first account when appID is "") at time at (now by Config.NowFunc when at
// is zero; an earlier time backdates it), without pushing anything:
//
//   - InteractMessage opens a customer-service window from at for
//     CSMessageWindow with CSMessageCount messages;
//   - InteractClick, InteractFollow and InteractScan open one for
//     CSEventWindow with CSEventCount messages;
//   - a new window replaces the open one unless that one ends later and
//     still has messages left (the more generous one is kept);
//   - InteractFollow, and InteractScan by a user who does not follow the
//     account, make the user a follower (user/get lists them after the
//     others; one who had left is back at the old place);
//   - InteractUnfollow closes the window and removes the user from the
//     followers.
//
// Config.CSWindow decides whether custom/send enforces the windows;
// Config.RequireFollower whether template/send and subscribe/bizsend
// (43004) and custom/send (45015) refuse users who do not follow. The
// follower list of user/get follows the interactions either way. Interact
// returns an error naming the argument when appID is not an account, openid
// not an openid or kind not an Interaction. It is safe for concurrent use.
func (s *Server) Interact(appID, openid string, kind Interaction, at time.Time) error {
	_, err := s.interact(appID, openid, kind, at)
	return err
}

func (s *Server) interact(appID, openid string, kind Interaction, at time.Time) (interaction, error) {
	acct, err := s.accountOf(appID)
	if err != nil {
		return interaction{}, err
	}
	if !validOpenID(openid) {
		return interaction{}, fmt.Errorf("wechattest: openid %q: not an openid (o and 27 of [A-Za-z0-9_-])", openid)
	}
	if !kind.valid() {
		return interaction{}, fmt.Errorf("wechattest: interaction %d: not one of %s", int(kind), strings.Join(interactionNames[1:], ", "))
	}
	if at.IsZero() {
		at = s.set.now()
	}
	in := interaction{acct: acct, openid: openid, kind: kind, at: at}
	k := csKey{appID: acct.AppID, openid: openid}
	switch kind {
	case InteractUnfollow:
		s.unfollow(acct, openid)
		s.cs.close(k)
	case InteractMessage:
		s.cs.open(k, at, at.Add(s.set.csMessageTTL), CSMessageCount)
	case InteractFollow:
		s.follow(acct, openid)
		s.cs.open(k, at, at.Add(s.set.csEventTTL), CSEventCount)
	case InteractScan:
		in.subscribe = !s.follow(acct, openid)
		s.cs.open(k, at, at.Add(s.set.csEventTTL), CSEventCount)
	case InteractClick:
		s.cs.open(k, at, at.Add(s.set.csEventTTL), CSEventCount)
	}
	s.interacted.Add(1)
	return in, nil
}

// CSWindow returns the customer-service window of user openid with account
// appID (the first account when appID is "") that is open now by
// Config.NowFunc: when it ends and how many messages custom/send may still
// send in it (0 when they are used up). ok is false when no window is open.
// Windows are tracked whether or not Config.CSWindow enforces them.
func (s *Server) CSWindow(appID, openid string) (end time.Time, left int, ok bool) {
	acct, err := s.accountOf(appID)
	if err != nil {
		return time.Time{}, 0, false
	}
	w, ok := s.cs.get(csKey{appID: acct.AppID, openid: openid}, s.set.now())
	return w.end, w.left, ok
}

// PushInteraction records an interaction as Interact does, then pushes it
// to Config.Callback.URL as WeChat would, on the caller's goroutine, signed
// and (in safe and compatible modes) encrypted like the receipts:
//
//	message   <MsgType>text</MsgType><Content>hello</Content><MsgId>N</MsgId>
//	click     <MsgType>event</MsgType><Event>CLICK</Event><EventKey>KEY</EventKey>
//	follow    <MsgType>event</MsgType><Event>subscribe</Event>
//	scan      <Event>SCAN</Event><EventKey>123</EventKey><Ticket>..</Ticket> by a follower,
//	          <Event>subscribe</Event><EventKey>qrscene_123</EventKey><Ticket>..</Ticket> by another user
//	unfollow  <MsgType>event</MsgType><Event>unsubscribe</Event>
//
// each with ToUserName the account's original id, FromUserName openid and
// CreateTime at in Unix seconds. It makes one attempt and returns an error
// unless the receiver answers HTTP 200 with an empty body or "success"
// (a *PushError otherwise, or the transport error); the interaction stays
// recorded either way. It returns ErrNoCallback without a Callback.URL and
// an error after Stop, recording nothing then, and Interact's errors for
// bad arguments. Stats.Interactions counts the pushes.
func (s *Server) PushInteraction(ctx context.Context, appID, openid string, kind Interaction, at time.Time) error {
	if s.pusher == nil {
		return ErrNoCallback
	}
	if s.pusher.isStopped() {
		return errPushStopped
	}
	in, err := s.interact(appID, openid, kind, at)
	if err != nil {
		return err
	}
	var msgID int64
	if kind == InteractMessage {
		msgID = s.nextMsgID()
	}
	gh := ghID(in.acct.AppID)
	return s.pusher.pushInteraction(ctx, in.acct.AppID, openid, interactionXML(gh, in, msgID))
}

// interactionXML is the push of in (see PushInteraction); msgID is the
// MsgId of a message.
func interactionXML(gh string, in interaction, msgID int64) []byte {
	var b bytes.Buffer
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, gh)
	b.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&b, in.openid)
	b.WriteString("</FromUserName><CreateTime>")
	b.WriteString(strconv.FormatInt(in.at.Unix(), 10))
	b.WriteString("</CreateTime>")
	if in.kind == InteractMessage {
		b.WriteString("<MsgType><![CDATA[text]]></MsgType><Content>")
		writeCDATA(&b, InteractionContent)
		b.WriteString("</Content><MsgId>")
		b.WriteString(strconv.FormatInt(msgID, 10))
		b.WriteString("</MsgId></xml>")
		return b.Bytes()
	}
	var event, key string
	ticket := false
	switch in.kind {
	case InteractClick:
		event, key = "CLICK", InteractionMenuKey
	case InteractFollow:
		event = "subscribe"
	case InteractScan:
		event, key, ticket = "SCAN", InteractionScene, true
		if in.subscribe {
			event, key = "subscribe", "qrscene_"+InteractionScene
		}
	case InteractUnfollow:
		event = "unsubscribe"
	}
	b.WriteString("<MsgType><![CDATA[event]]></MsgType><Event>")
	writeCDATA(&b, event)
	b.WriteString("</Event>")
	if key != "" {
		b.WriteString("<EventKey>")
		writeCDATA(&b, key)
		b.WriteString("</EventKey>")
	}
	if ticket {
		b.WriteString("<Ticket>")
		writeCDATA(&b, InteractionTicket)
		b.WriteString("</Ticket>")
	}
	b.WriteString("</xml>")
	return b.Bytes()
}

// InteractionStats counts the interactions of Interact, PushInteraction and
// POST /fake/interact.
type InteractionStats struct {
	// Recorded is the number of interactions recorded, pushed or not.
	Recorded int64 `json:"recorded"`
	// Pushed is the number of pushes answered HTTP 200 with an empty body
	// or "success".
	Pushed int64 `json:"pushed"`
	// PushFailed is the number of pushes answered otherwise, or not at all.
	PushFailed int64 `json:"push_failed"`
}
