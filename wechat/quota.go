package wechat

import (
	"context"
	"net/http"
)

type quotaRequest struct {
	CGIPath string `json:"cgi_path"`
}

type quotaAnswer struct {
	envelope
	QuotaInfo
}

// QuotaGet returns today's quota and the rate limit of the API at cgiPath
// (such as "/cgi-bin/message/template/send") from POST
// /cgi-bin/openapi/quota/get.
func (c *Client) QuotaGet(ctx context.Context, ts TokenSource, cgiPath string) (QuotaInfo, error) {
	var a quotaAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = quotaAnswer{}
		return c.call(ctx, APIQuotaGet, http.MethodPost, "/cgi-bin/openapi/quota/get", "", tok, &quotaRequest{CGIPath: cgiPath}, &a)
	})
	if err != nil {
		return QuotaInfo{}, err
	}
	return a.QuotaInfo, nil
}
