package wechat

import (
	"context"
	"fmt"
	"net/http"
)

type sendAnswer struct {
	envelope
	MsgID int64 `json:"msgid"`
}

// SendTemplate sends a template message and returns WeChat's msgid, which
// TEMPLATESENDJOBFINISH receipts quote. Set m.ClientMsgID: WeChat sends only
// one message per (touser, client_msg_id) within ten minutes, so a retry after
// an ambiguous failure cannot deliver twice.
func (c *Client) SendTemplate(ctx context.Context, ts TokenSource, m *TemplateMessage) (int64, error) {
	var a sendAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = sendAnswer{}
		return c.call(ctx, APITemplateSend, http.MethodPost, "/cgi-bin/message/template/send", "", tok, m, &a)
	})
	if err != nil {
		return 0, err
	}
	return a.MsgID, nil
}

// SendCustom sends a customer-service message. WeChat accepts it only inside
// the user's interaction window and gives it no id and no dedupe key.
func (c *Client) SendCustom(ctx context.Context, ts TokenSource, m *CustomMessage) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return tokenCall(ctx, ts, func(tok string) error {
		var a envelope
		return c.call(ctx, APICustomSend, http.MethodPost, "/cgi-bin/message/custom/send", "", tok, m, &a)
	})
}

// SendSubscribe sends a subscribe notification (bizsend) to a user who
// subscribed to the template.
func (c *Client) SendSubscribe(ctx context.Context, ts TokenSource, m *SubscribeMessage) error {
	return tokenCall(ctx, ts, func(tok string) error {
		var a envelope
		return c.call(ctx, APIBizSend, http.MethodPost, "/cgi-bin/message/subscribe/bizsend", "", tok, m, &a)
	})
}

// Validate reports whether MsgType names a supported type and exactly its
// payload is set.
func (m *CustomMessage) Validate() error {
	payloads := [...]struct {
		msgType string
		set     bool
	}{
		{MsgTypeText, m.Text != nil},
		{MsgTypeImage, m.Image != nil},
		{MsgTypeNews, m.News != nil},
		{MsgTypeMPNews, m.MPNews != nil},
		{MsgTypeMPNewsArticle, m.MPNewsArticle != nil},
		{MsgTypeMiniProgramPage, m.MiniProgramPage != nil},
		{MsgTypeMenu, m.MsgMenu != nil},
	}
	known := false
	for _, p := range payloads {
		switch {
		case p.msgType == m.MsgType && !p.set:
			return fmt.Errorf("wechat: custom message: msgtype %q without its %s field", m.MsgType, m.MsgType)
		case p.msgType == m.MsgType:
			known = true
		case p.set:
			return fmt.Errorf("wechat: custom message: field %s set on a %q message", p.msgType, m.MsgType)
		}
	}
	if !known {
		return fmt.Errorf("wechat: custom message: msgtype %q is not supported", m.MsgType)
	}
	return nil
}
