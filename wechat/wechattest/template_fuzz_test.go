package wechattest

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzTemplateBody feeds arbitrary bodies to the three send handlers. They
// must never panic, must answer an errcode the API documents, and on
// success must write a valid success body.
func FuzzTemplateBody(f *testing.F) {
	seeds := []string{
		`{"touser":"oia2TjuEGTNoeX76QEjQNrcURxG8","template_id":"TPL_ORDER_SHIPPED","client_msg_id":"c1","data":{"thing1":{"value":"已发货"},"time2":{"value":"2026-03-10 09:00"}}}`,
		`{"touser":"oia2TjuEGTNoeX76QEjQNrcURxG8","template_id":"SUB_ORDER_SHIPPED","data":{"phrase1":{"value":"已发货"}}}`,
		`{"touser":"oia2TjuEGTNoeX76QEjQNrcURxG8","msgtype":"news","news":{"articles":[{"title":"t","url":"u"}]}}`,
		`{"touser":"oia2TjuEGTNoeX76QEjQNrcURxG8","msgtype":"msgmenu","msgmenu":{"list":[{"id":"1","content":"x"}]}}`,
		`{"data":[]}`, `{"data":{"thing1":1}}`, `{"touser":null}`, `[`, ``, `\u0000`, `{"a":"\\u"}`, "\xff",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	s, err := New(Config{MediaIDs: []string{"M"}})
	if err != nil {
		f.Fatal(err)
	}
	acct := s.accounts[AppIDDefault]
	documented := map[int]bool{
		0: true, 40003: true, 40007: true, 40008: true, 40033: true, 40036: true, 40037: true, 44002: true,
		45002: true, 45008: true, 45067: true, 45098: true, 45099: true, 47001: true, 47003: true, 61452: true,
	}
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		handlers := map[string]func(*exchange, *account, time.Time) outcome{
			nameTemplateSend: s.templateSend,
			nameCustomSend:   s.customSend,
			nameBizSend:      s.bizSend,
		}
		for name, h := range handlers {
			x := &exchange{body: body}
			out := h(x, acct, now)
			if !documented[out.code] {
				t.Fatalf("%s answered errcode %d for %q", name, out.code, body)
			}
			if out.code == 0 && !json.Valid(x.out) {
				t.Fatalf("%s wrote invalid JSON %q for %q", name, x.out, body)
			}
			if out.code != 0 && len(x.out) != 0 {
				t.Fatalf("%s wrote a body with errcode %d", name, out.code)
			}
			if out.code != 0 {
				errBody := s.appendError(nil, out.code, out.msg, now)
				if !json.Valid(errBody) {
					t.Fatalf("invalid error body %q", errBody)
				}
			}
		}
	})
}
