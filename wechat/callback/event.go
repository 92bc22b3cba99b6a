package callback

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Values of Event.MsgType and Event.Event used by wxmass.
const (
	// MsgTypeEvent is the MsgType of every event push.
	MsgTypeEvent = "event"
	// EventTemplateSendJobFinish is the delivery receipt of a template
	// message (wechat-api.md §2.6).
	EventTemplateSendJobFinish = "TEMPLATESENDJOBFINISH"
	// EventMassSendJobFinish is the outcome of a mass send job
	// (wechat-api.md §5.6).
	EventMassSendJobFinish = "MASSSENDJOBFINISH"
)

// ReasonMax is the longest Event.Reason, in bytes; longer reasons are cut.
// Reasons become report counters, so they must stay short.
const ReasonMax = 64

// ErrMalformed is a push body that is not a well-formed push: not XML, not
// rooted at <xml>, or missing or mangling a field the push needs. Errors
// wrapping it name the problem.
var ErrMalformed = errors.New("callback: malformed push")

// Delivery is the normalised outcome of a TEMPLATESENDJOBFINISH receipt.
type Delivery string

// Delivery values.
const (
	// DeliveryNone: the event is not a template-send receipt.
	DeliveryNone Delivery = ""
	// DeliveryDelivered: Status "success".
	DeliveryDelivered Delivery = "delivered"
	// DeliveryFailed: any Status starting with "failed"; Event.Reason says
	// why.
	DeliveryFailed Delivery = "failed"
	// DeliveryUnknown: a Status WeChat does not document.
	DeliveryUnknown Delivery = "unknown"
)

// Reasons of the documented failures (wechat-api.md §2.6).
const (
	// ReasonUserBlock: the user refuses the account's messages
	// ("failed:user block", also seen as "failed: user block").
	ReasonUserBlock = "user block"
	// ReasonSystemFailed: any other failure ("failed: system failed").
	ReasonSystemFailed = "system failed"
	// ReasonFreqLimit: WeChat limits how often the user gets messages
	// ("failed:freq limit", observed, not documented).
	ReasonFreqLimit = "freq limit"
	// ReasonUnknown is the reason of a bare "failed".
	ReasonUnknown = "unknown"
)

// Event is one verified, decrypted push.
type Event struct {
	// ToUserName is the account's original id ("gh_...").
	ToUserName string
	// FromUserName is the user's openid. Log it only masked.
	FromUserName string
	// CreateTime is when WeChat created the push, in Unix seconds.
	CreateTime int64
	// MsgType is "event" for events, or the message type (text, image...).
	MsgType string
	// Event is the event type, such as TEMPLATESENDJOBFINISH; "" for
	// messages.
	Event string
	// MsgID is <MsgID> of a receipt (the msgid the send API answered), or
	// <MsgId> of a user's message; 0 when absent.
	MsgID int64
	// Status is the receipt's <Status> exactly as WeChat sent it.
	Status string
	// Delivery is Status normalised, for TEMPLATESENDJOBFINISH only.
	Delivery Delivery
	// Reason is why a DeliveryFailed receipt failed: ReasonUserBlock,
	// ReasonSystemFailed, or the lower-cased text after the colon of an
	// undocumented failure (such as "freq limit"), at most ReasonMax bytes.
	Reason string
	// Mass is the outcome of a MASSSENDJOBFINISH event; zero otherwise.
	Mass MassOutcome
}

// IsReceipt reports whether e is the delivery receipt of a template message.
func (e Event) IsReceipt() bool {
	return e.MsgType == MsgTypeEvent && e.Event == EventTemplateSendJobFinish
}

// DedupeKey returns the key that identifies e across WeChat's retries
// (wechat-api.md §7.3): the account and the msgid for receipts and other
// events or messages that carry one, else the account, the user, the
// creation time and the event type.
func (e Event) DedupeKey() string {
	if e.MsgID != 0 {
		kind := e.Event
		if e.MsgType != MsgTypeEvent {
			kind = "msg"
		}
		return "msgid:" + e.ToUserName + ":" + kind + ":" + strconv.FormatInt(e.MsgID, 10)
	}
	return "ev:" + e.ToUserName + ":" + e.FromUserName + ":" + strconv.FormatInt(e.CreateTime, 10) + ":" + e.MsgType + ":" + e.Event
}

// NormalizeStatus maps a TEMPLATESENDJOBFINISH Status to its Delivery and,
// for failures, its reason. Whitespace is removed and case ignored before
// comparing, so "failed:user block", "failed: user block" and "Failed:
// User Block" all give (DeliveryFailed, ReasonUserBlock).
func NormalizeStatus(status string) (Delivery, string) {
	squashed := strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, status))
	switch {
	case squashed == "success":
		return DeliveryDelivered, ""
	case squashed == "failed:userblock":
		return DeliveryFailed, ReasonUserBlock
	case squashed == "failed:systemfailed":
		return DeliveryFailed, ReasonSystemFailed
	case strings.HasPrefix(squashed, "failed"):
		_, after, _ := strings.Cut(status, ":")
		reason := strings.ToLower(strings.Join(strings.Fields(after), " "))
		if reason == "" {
			return DeliveryFailed, ReasonUnknown
		}
		return DeliveryFailed, cutUTF8(reason, ReasonMax)
	}
	return DeliveryUnknown, ""
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ParseEvent parses a plaintext XML push (the body of a plain-mode push, or
// the decrypted <Encrypt> of a safe-mode one). Errors wrap ErrMalformed and
// name what is wrong.
func ParseEvent(body []byte) (Event, error) {
	p, err := decodePush(body)
	if err != nil {
		return Event{}, err
	}
	return p.event()
}

// push is the XML of a push: the fields of an event, and the ciphertext of
// safe and compatible modes.
type push struct {
	XMLName      xml.Name
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   string `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Event        string `xml:"Event"`
	// Receipts spell it MsgID, user messages MsgId (wechat-api.md §2.6).
	MsgID   string `xml:"MsgID"`
	MsgIDLc string `xml:"MsgId"`
	Status  string `xml:"Status"`
	Encrypt string `xml:"Encrypt"`
	// MASSSENDJOBFINISH counts (wechat-api.md §5.6).
	TotalCount  string `xml:"TotalCount"`
	FilterCount string `xml:"FilterCount"`
	SentCount   string `xml:"SentCount"`
	ErrorCount  string `xml:"ErrorCount"`
}

// decodePush decodes one <xml> document. Nothing but whitespace, comments
// and processing instructions may follow it.
func decodePush(body []byte) (push, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return push{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var p push
	if err := dec.Decode(&p); err != nil {
		return push{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if p.XMLName.Local != "xml" {
		return push{}, fmt.Errorf("%w: root element <%s>, want <xml>", ErrMalformed, cutUTF8(p.XMLName.Local, 40))
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return p, nil
		}
		if err != nil {
			return push{}, fmt.Errorf("%w: after </xml>: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return push{}, fmt.Errorf("%w: text after </xml>", ErrMalformed)
			}
		case xml.StartElement:
			return push{}, fmt.Errorf("%w: element <%s> after </xml>", ErrMalformed, cutUTF8(t.Name.Local, 40))
		}
	}
}

// event validates p's fields and returns them as an Event.
func (p push) event() (Event, error) {
	e := Event{
		ToUserName:   strings.TrimSpace(p.ToUserName),
		FromUserName: strings.TrimSpace(p.FromUserName),
		MsgType:      strings.TrimSpace(p.MsgType),
		Event:        strings.TrimSpace(p.Event),
		Status:       p.Status,
	}
	for _, f := range []struct{ name, v string }{
		{"ToUserName", e.ToUserName}, {"FromUserName", e.FromUserName}, {"MsgType", e.MsgType},
	} {
		if f.v == "" {
			return Event{}, fmt.Errorf("%w: missing <%s>", ErrMalformed, f.name)
		}
	}
	var err error
	if e.CreateTime, err = parseInt("CreateTime", p.CreateTime, true); err != nil {
		return Event{}, err
	}
	if e.MsgType == MsgTypeEvent && e.Event == "" {
		return Event{}, fmt.Errorf("%w: event push without <Event>", ErrMalformed)
	}
	msgID, name := p.MsgID, "MsgID"
	if strings.TrimSpace(msgID) == "" && strings.TrimSpace(p.MsgIDLc) != "" {
		msgID, name = p.MsgIDLc, "MsgId"
	}
	isMass := e.MsgType == MsgTypeEvent && e.Event == EventMassSendJobFinish
	if e.MsgID, err = parseInt(name, msgID, e.IsReceipt() || isMass); err != nil {
		return Event{}, err
	}
	if e.IsReceipt() {
		if strings.TrimSpace(e.Status) == "" {
			return Event{}, fmt.Errorf("%w: %s without <Status>", ErrMalformed, EventTemplateSendJobFinish)
		}
		e.Delivery, e.Reason = NormalizeStatus(e.Status)
	}
	if isMass {
		if e.Mass, err = p.massOutcome(); err != nil {
			return Event{}, err
		}
	}
	return e, nil
}

// parseInt parses the non-negative integer field name; an absent field is
// 0 unless required.
func parseInt(name, s string, required bool) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			return 0, fmt.Errorf("%w: missing <%s>", ErrMalformed, name)
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: <%s> %s is not a non-negative integer", ErrMalformed, name, quoteShort(s))
	}
	return n, nil
}
