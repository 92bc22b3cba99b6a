package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Names of the mass-send APIs (wechat-api.md §5.1).
const (
	APIMassSend     = "message/mass/send"
	APIMassSendAll  = "message/mass/sendall"
	APIMassPreview  = "message/mass/preview"
	APIMassGet      = "message/mass/get"
	APIMassDelete   = "message/mass/delete"
	APIMassSpeedGet = "message/mass/speed/get"
	APIMassSpeedSet = "message/mass/speed/set"
)

// Limits of mass sends (wechat-api.md §5.2, §5.3, §5.4).
const (
	// MassOpenIDsMin is the fewest openids of a mass/send (40130 below).
	MassOpenIDsMin = 2
	// MassOpenIDsMax is the most openids of a mass/send (45019 above).
	MassOpenIDsMax = 10000
	// ClientMsgIDMax is the longest clientmsgid, in bytes (45067 above).
	ClientMsgIDMax = 64
	// MassSpeedMax is the highest speed level of mass/speed/set (45083
	// above); 0 is the fastest.
	MassSpeedMax = 4
)

// Mass message types (the msgtype field of the mass APIs).
const (
	MassTypeMPNews  = "mpnews"
	MassTypeText    = "text"
	MassTypeVoice   = "voice"
	MassTypeImage   = "image"
	MassTypeMPVideo = "mpvideo"
	MassTypeWXCard  = "wxcard"
)

// Statuses of mass/get (wechat-api.md §5.5).
const (
	MassStatusSending = "SENDING"
	MassStatusSuccess = "SEND_SUCCESS"
	MassStatusFail    = "SEND_FAIL"
	MassStatusDelete  = "DELETE"
)

// ErrMassDuplicate matches errcode 45065: a mass job with the same
// clientmsgid was submitted in the last 24 hours. The *MassDuplicateError
// that matches it carries that job's msg_id; treat it as an idempotent
// success.
var ErrMassDuplicate = errors.New("wechat: mass job with this clientmsgid already sent")

// MassDuplicateError is the answer 45065: the clientmsgid was used by the
// job MsgID. errors.Is(err, ErrMassDuplicate) holds for it, and errors.As
// reaches the *APIError too.
type MassDuplicateError struct {
	MsgID     int64
	MsgDataID int64
	Err       *APIError
}

// Error names the existing job.
func (e *MassDuplicateError) Error() string {
	return e.Err.Error() + " (existing msg_id " + strconv.FormatInt(e.MsgID, 10) + ")"
}

// Is matches ErrMassDuplicate.
func (e *MassDuplicateError) Is(target error) bool { return target == ErrMassDuplicate }

// Unwrap returns the *APIError.
func (e *MassDuplicateError) Unwrap() error { return e.Err }

// MassMessage is the content of a mass send or preview: MsgType names the
// one payload field that must be set (Validate checks it).
type MassMessage struct {
	MsgType string      `json:"msgtype"`
	MPNews  *Media      `json:"mpnews,omitempty"`
	Text    *Text       `json:"text,omitempty"`
	Voice   *Media      `json:"voice,omitempty"`
	Images  *MassImages `json:"images,omitempty"`
	MPVideo *Media      `json:"mpvideo,omitempty"`
	WXCard  *WXCard     `json:"wxcard,omitempty"`
	// SendIgnoreReprint 1 goes on when an mpnews is judged a reprint that
	// may be reprinted; 0 (default) stops the send (wechat-api.md §5.2).
	SendIgnoreReprint int `json:"send_ignore_reprint"`
	// ClientMsgID dedupes the job for 24 hours (at most ClientMsgIDMax
	// bytes). Set a distinct one per batch: without it WeChat dedupes by a
	// digest of the content (wechat-api.md §5.3).
	ClientMsgID string `json:"clientmsgid,omitempty"`
}

// MassImages is the payload of an image mass message: up to several
// media_ids shown as one post.
type MassImages struct {
	MediaIDs           []string `json:"media_ids"`
	Recommend          string   `json:"recommend,omitempty"`
	NeedOpenComment    int      `json:"need_open_comment,omitempty"`
	OnlyFansCanComment int      `json:"only_fans_can_comment,omitempty"`
}

// WXCard is a card (coupon) payload.
type WXCard struct {
	CardID string `json:"card_id"`
}

// Validate checks that exactly the payload MsgType names is set and that
// ClientMsgID is at most ClientMsgIDMax bytes.
func (m *MassMessage) Validate() error {
	payloads := [...]struct {
		msgType string
		set     bool
	}{
		{MassTypeMPNews, m.MPNews != nil},
		{MassTypeText, m.Text != nil},
		{MassTypeVoice, m.Voice != nil},
		{MassTypeImage, m.Images != nil},
		{MassTypeMPVideo, m.MPVideo != nil},
		{MassTypeWXCard, m.WXCard != nil},
	}
	known := false
	for _, p := range payloads {
		switch {
		case p.msgType == m.MsgType && !p.set:
			return fmt.Errorf("wechat: mass message: msgtype %q without its payload", m.MsgType)
		case p.msgType == m.MsgType:
			known = true
		case p.set:
			return fmt.Errorf("wechat: mass message: payload of %q set on a %q message", p.msgType, m.MsgType)
		}
	}
	if !known {
		return fmt.Errorf("wechat: mass message: msgtype %q is not supported", m.MsgType)
	}
	if m.Images != nil && len(m.Images.MediaIDs) == 0 {
		return errors.New("wechat: mass message: images without media_ids")
	}
	if len(m.ClientMsgID) > ClientMsgIDMax {
		return fmt.Errorf("wechat: mass message: clientmsgid is %d bytes, at most %d are allowed", len(m.ClientMsgID), ClientMsgIDMax)
	}
	return nil
}

// MassResult is the answer of a mass send: submission, not delivery; the
// outcome comes as MASSSENDJOBFINISH. MsgDataID is set for mpnews only.
type MassResult struct {
	MsgID     int64 `json:"msg_id"`
	MsgDataID int64 `json:"msg_data_id,omitempty"`
}

type massAnswer struct {
	envelope
	MassResult
}

type massSendRequest struct {
	ToUser []string `json:"touser"`
	*MassMessage
}

// MassSend sends m to the openids (MassOpenIDsMin to MassOpenIDsMax of
// them, checked before the call) with POST message/mass/send. A 45065
// answer returns a *MassDuplicateError (errors.Is ErrMassDuplicate) whose
// MsgID is the job sent before with the same ClientMsgID.
func (c *Client) MassSend(ctx context.Context, ts TokenSource, openids []string, m *MassMessage) (MassResult, error) {
	if n := len(openids); n < MassOpenIDsMin || n > MassOpenIDsMax {
		return MassResult{}, fmt.Errorf("wechat: mass send: %d openids; a batch needs %d to %d", n, MassOpenIDsMin, MassOpenIDsMax)
	}
	if err := m.Validate(); err != nil {
		return MassResult{}, err
	}
	return c.massCall(ctx, ts, APIMassSend, &massSendRequest{ToUser: openids, MassMessage: m})
}

// MassFilter chooses the audience of MassSendAll: everyone (IsToAll) or
// the users with TagID.
type MassFilter struct {
	IsToAll bool  `json:"is_to_all"`
	TagID   int64 `json:"tag_id,omitempty"`
}

type massSendAllRequest struct {
	Filter MassFilter `json:"filter"`
	*MassMessage
}

// MassSendAll sends m to every follower or to a tag with POST
// message/mass/sendall. With API mass-send protection on, a send to all
// waits for the admin's confirmation (wechat-api.md §5.4). 45065 is
// answered as by MassSend.
func (c *Client) MassSendAll(ctx context.Context, ts TokenSource, f MassFilter, m *MassMessage) (MassResult, error) {
	if err := m.Validate(); err != nil {
		return MassResult{}, err
	}
	return c.massCall(ctx, ts, APIMassSendAll, &massSendAllRequest{Filter: f, MassMessage: m})
}

func (c *Client) massCall(ctx context.Context, ts TokenSource, api string, body any) (MassResult, error) {
	var a massAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = massAnswer{}
		return c.call(ctx, api, http.MethodPost, "/cgi-bin/"+api, "", tok, body, &a)
	})
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == 45065 {
		return MassResult{}, &MassDuplicateError{MsgID: a.MsgID, MsgDataID: a.MsgDataID, Err: ae}
	}
	if err != nil {
		return MassResult{}, err
	}
	return a.MassResult, nil
}

type massPreviewRequest struct {
	ToUser   string `json:"touser,omitempty"`
	ToWXName string `json:"towxname,omitempty"`
	*MassMessage
}

// MassPreview sends m to one user for review with POST
// message/mass/preview: by openid (toUser) or, when toUser is empty, by
// WeChat ID (toWXName; WeChat allows 100 of those a day).
func (c *Client) MassPreview(ctx context.Context, ts TokenSource, toUser, toWXName string, m *MassMessage) error {
	if (toUser == "") == (toWXName == "") {
		return errors.New("wechat: mass preview: set exactly one of touser and towxname")
	}
	if err := m.Validate(); err != nil {
		return err
	}
	return tokenCall(ctx, ts, func(tok string) error {
		var a envelope
		return c.call(ctx, APIMassPreview, http.MethodPost, "/cgi-bin/message/mass/preview", "", tok,
			&massPreviewRequest{ToUser: toUser, ToWXName: toWXName, MassMessage: m}, &a)
	})
}

type massIDRequest struct {
	MsgID      int64 `json:"msg_id"`
	ArticleIdx int   `json:"article_idx,omitempty"`
}

type massGetAnswer struct {
	envelope
	MsgID     int64  `json:"msg_id"`
	MsgStatus string `json:"msg_status"`
}

// MassGet returns the status of the job msgID (a MassStatus* value) from
// POST message/mass/get.
func (c *Client) MassGet(ctx context.Context, ts TokenSource, msgID int64) (string, error) {
	var a massGetAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = massGetAnswer{}
		return c.call(ctx, APIMassGet, http.MethodPost, "/cgi-bin/message/mass/get", "", tok, &massIDRequest{MsgID: msgID}, &a)
	})
	if err != nil {
		return "", err
	}
	return a.MsgStatus, nil
}

// MassDelete deletes the job msgID's article articleIdx (1-based) or, with
// articleIdx 0, all of it, with POST message/mass/delete.
func (c *Client) MassDelete(ctx context.Context, ts TokenSource, msgID int64, articleIdx int) error {
	return tokenCall(ctx, ts, func(tok string) error {
		var a envelope
		return c.call(ctx, APIMassDelete, http.MethodPost, "/cgi-bin/message/mass/delete", "", tok,
			&massIDRequest{MsgID: msgID, ArticleIdx: articleIdx}, &a)
	})
}

// MassSpeed is the mass-send speed: Speed 0 (fastest) to MassSpeedMax and
// RealSpeed in ten thousands (万) of users a minute: 80, 60, 45, 30, 10 for
// speeds 0 to 4 (wechat-api.md §5.4, D-SPEED table; the page's own example
// disagrees).
type MassSpeed struct {
	Speed     int `json:"speed"`
	RealSpeed int `json:"realspeed"`
}

type massSpeedAnswer struct {
	envelope
	MassSpeed
}

// MassSpeedGet returns the account's mass-send speed.
func (c *Client) MassSpeedGet(ctx context.Context, ts TokenSource) (MassSpeed, error) {
	var a massSpeedAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = massSpeedAnswer{}
		return c.call(ctx, APIMassSpeedGet, http.MethodPost, "/cgi-bin/message/mass/speed/get", "", tok, struct{}{}, &a)
	})
	if err != nil {
		return MassSpeed{}, err
	}
	return a.MassSpeed, nil
}

type massSpeedSetRequest struct {
	Speed int `json:"speed"`
}

// MassSpeedSet sets the account's mass-send speed level, 0 to MassSpeedMax
// (WeChat answers 45083 outside; the client does not check, so that the
// answer stays WeChat's).
func (c *Client) MassSpeedSet(ctx context.Context, ts TokenSource, speed int) error {
	return tokenCall(ctx, ts, func(tok string) error {
		var a envelope
		return c.call(ctx, APIMassSpeedSet, http.MethodPost, "/cgi-bin/message/mass/speed/set", "", tok, &massSpeedSetRequest{Speed: speed}, &a)
	})
}
