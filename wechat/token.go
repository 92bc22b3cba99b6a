package wechat

import (
	"context"
	"net/http"
	"time"

	"github.com/wxmass/wxmass/internal/secret"
)

// AccessToken is an answer of a token API. ExpiresIn is how long WeChat says
// the token stays valid from the moment of the answer.
type AccessToken struct {
	Token     string
	ExpiresIn time.Duration
}

type tokenAnswer struct {
	envelope
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (a *tokenAnswer) result(api string) (AccessToken, error) {
	if a.AccessToken == "" || a.ExpiresIn <= 0 {
		return AccessToken{}, &TransportError{API: api, Sent: true, Err: ErrBadAnswer}
	}
	return AccessToken{Token: a.AccessToken, ExpiresIn: time.Duration(a.ExpiresIn) * time.Second}, nil
}

type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// StableToken calls POST /cgi-bin/stable_token. In normal mode (force
// false) WeChat answers the same token until five minutes before it expires.
// Force mode invalidates the current token and is limited to 20 calls a day;
// use it only when a token has leaked.
func (c *Client) StableToken(ctx context.Context, appID string, appSecret secret.String, force bool) (AccessToken, error) {
	var a tokenAnswer
	in := &stableTokenRequest{GrantType: "client_credential", AppID: appID, Secret: appSecret.Reveal(), ForceRefresh: force}
	if err := c.call(ctx, APIStableToken, http.MethodPost, "/cgi-bin/stable_token", "", "", in, &a); err != nil {
		return AccessToken{}, err
	}
	return a.result(APIStableToken)
}

// PlainToken calls GET /cgi-bin/token. Every call issues a new token; the
// previous one keeps working for five minutes. The API allows 2,000 calls a
// day.
func (c *Client) PlainToken(ctx context.Context, appID string, appSecret secret.String) (AccessToken, error) {
	var a tokenAnswer
	if err := c.call(ctx, APIToken, http.MethodGet, "/cgi-bin/token", secretQuery(appID, appSecret), "", nil, &a); err != nil {
		return AccessToken{}, err
	}
	return a.result(APIToken)
}
