package wechat

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

type followersAnswer struct {
	envelope
	Total int64 `json:"total"`
	Count int   `json:"count"`
	Data  struct {
		OpenID []string `json:"openid"`
	} `json:"data"`
	NextOpenID string `json:"next_openid"`
}

func (a *followersAnswer) page(api string) (FollowerPage, error) {
	if a.Count != len(a.Data.OpenID) {
		return FollowerPage{}, &TransportError{API: api, Sent: true,
			Err: fmt.Errorf("%w: count %d but %d openids", ErrBadAnswer, a.Count, len(a.Data.OpenID))}
	}
	return FollowerPage{Total: a.Total, OpenIDs: a.Data.OpenID, NextOpenID: a.NextOpenID}, nil
}

// Followers returns one page (up to 10,000) of the account's followers from
// GET /cgi-bin/user/get, starting after next ("" for the first page).
func (c *Client) Followers(ctx context.Context, ts TokenSource, next string) (FollowerPage, error) {
	q := ""
	if next != "" {
		q = "next_openid=" + url.QueryEscape(next)
	}
	var a followersAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = followersAnswer{}
		return c.call(ctx, APIUserGet, http.MethodGet, "/cgi-bin/user/get", q, tok, nil, &a)
	})
	if err != nil {
		return FollowerPage{}, err
	}
	return a.page(APIUserGet)
}

type tagRequest struct {
	TagID      int64  `json:"tagid"`
	NextOpenID string `json:"next_openid"`
}

// TagMembers returns one page of the members of tag tagID from POST
// /cgi-bin/user/tag/get, starting after next ("" for the first page).
func (c *Client) TagMembers(ctx context.Context, ts TokenSource, tagID int64, next string) (FollowerPage, error) {
	var a followersAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = followersAnswer{}
		return c.call(ctx, APITagGet, http.MethodPost, "/cgi-bin/user/tag/get", "", tok, &tagRequest{TagID: tagID, NextOpenID: next}, &a)
	})
	if err != nil {
		return FollowerPage{}, err
	}
	return a.page(APITagGet)
}

// PageFunc fetches the page after next.
type PageFunc func(ctx context.Context, next string) (FollowerPage, error)

// MaxPagesDefault bounds a paging loop: 10,000 pages of 10,000 openids is
// more followers than any account has.
const MaxPagesDefault = 10000

// EachPage calls fetch from the first page on and fn with each page's
// openids, until a page is empty or has no next_openid. It stops with an
// error if WeChat answers the same next_openid twice in a row, which would
// otherwise loop forever. user/tag/get answers the last openid as next_openid
// even on the last page, so its loop ends on the following empty page.
func EachPage(ctx context.Context, fetch PageFunc, fn func(openids []string) error) error {
	next := ""
	for pages := 0; ; pages++ {
		if pages == MaxPagesDefault {
			return fmt.Errorf("wechat: paging: more than %d pages", MaxPagesDefault)
		}
		p, err := fetch(ctx, next)
		if err != nil {
			return err
		}
		if len(p.OpenIDs) > 0 {
			if err := fn(p.OpenIDs); err != nil {
				return err
			}
		}
		if len(p.OpenIDs) == 0 || p.NextOpenID == "" {
			return nil
		}
		if p.NextOpenID == next {
			return fmt.Errorf("wechat: paging: next_openid did not advance past %q", next)
		}
		next = p.NextOpenID
	}
}
