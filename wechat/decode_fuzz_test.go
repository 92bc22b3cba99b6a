package wechat

import (
	"encoding/json"
	"errors"
	"testing"
)

// Seeds: real answers of each API, and near misses.
var answerSeeds = []string{
	`{"errcode":0,"errmsg":"ok","msgid":3717005636572528642}`,
	`{"errcode":0,"errmsg":"ok","msgid":200228332}`,
	`{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest rid: 64dd8871-484ffffb-57f8d5ab"}`,
	`{"access_token":"ACCESS_TOKEN","expires_in":7200}`,
	`{"total":2,"count":2,"data":{"openid":["OPENID1","OPENID2"]},"next_openid":"NEXT_OPENID"}`,
	`{"count":0,"next_openid":""}`,
	`{"errcode":0,"errmsg":"ok","quota":{"daily_limit":100000,"used":1,"remain":99999},"rate_limit":{"call_count":600,"refresh_second":60},"component_rate_limit":{"call_count":0,"refresh_second":0}}`,
	`{"errcode":-1,"errmsg":"system error"}`,
	`<html><body>502 Bad Gateway</body></html>`,
	``,
	`{"msgid":1e30}`,
	`{"msgid":"123"}`,
	`{"errcode":"40001"}`,
	`{"count":3,"data":{"openid":["a"]}}`,
	`[]`,
	`{"errcode":0`,
}

// FuzzDecodeAnswers feeds arbitrary bytes to the decoder of every answer
// type. It must never panic, and whatever it accepts must be self-consistent:
// an APIError for a non-zero errcode, and paging counts that match.
func FuzzDecodeAnswers(f *testing.F) {
	for _, s := range answerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		answers := []answer{&envelope{}, &sendAnswer{}, &tokenAnswer{}, &followersAnswer{}, &quotaAnswer{}}
		for _, a := range answers {
			err := decode(b, a)
			if err != nil {
				if !errors.Is(err, ErrBadAnswer) {
					t.Fatalf("decode error %v does not wrap ErrBadAnswer", err)
				}
				continue
			}
			var env envelope
			if json.Unmarshal(b, &env) == nil {
				aerr := a.apiErr("x")
				var ae *APIError
				if (env.ErrCode != 0) != errors.As(aerr, &ae) {
					t.Fatalf("errcode %d but apiErr %v", env.ErrCode, aerr)
				}
				if ae != nil && ae.Code != env.ErrCode {
					t.Fatalf("code %d != %d", ae.Code, env.ErrCode)
				}
			}
			if fa, ok := a.(*followersAnswer); ok {
				p, err := fa.page("x")
				if err == nil && len(p.OpenIDs) != fa.Count {
					t.Fatalf("page of %d openids accepted with count %d", len(p.OpenIDs), fa.Count)
				}
			}
			if ta, ok := a.(*tokenAnswer); ok {
				at, err := ta.result("x")
				if err == nil && (at.Token == "" || at.ExpiresIn <= 0) {
					t.Fatalf("token answer %q accepted", b)
				}
			}
		}
	})
}

// FuzzParseErrmsg: splitting the rid off never loses or invents text.
func FuzzParseErrmsg(f *testing.F) {
	for _, s := range []string{"ok", "system error rid: 1-2-3", "x hint: [abc]", " rid: ", "hint: [", "a rid: b rid: c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg, rid := parseErrmsg(s)
		if len(msg)+len(rid) > len(s) {
			t.Fatalf("parseErrmsg(%q) = %q, %q: longer than the input", s, msg, rid)
		}
	})
}
