package wechat

import (
	"context"
	"net/http"
)

type callbackIPAnswer struct {
	envelope
	IPList []string `json:"ip_list"`
}

// CallbackIPs returns the addresses WeChat pushes callbacks from, from GET
// /cgi-bin/getcallbackip (wechat-api.md §7.5). It is WeChat's cheapest
// call with an access_token, and serves as a probe of whether WeChat is
// reachable: any answer (an *APIError included) says it is; a
// *TransportError says it is not. It returns when WeChat has answered, or
// with an error wrapping ctx.Err().
func (c *Client) CallbackIPs(ctx context.Context, ts TokenSource) ([]string, error) {
	var a callbackIPAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = callbackIPAnswer{}
		return c.call(ctx, APICallbackIP, http.MethodGet, "/cgi-bin/getcallbackip", "", tok, nil, &a)
	})
	if err != nil {
		return nil, err
	}
	return a.IPList, nil
}
