package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
)

// strictViolation tells which strict rule raw breaks for a value of type t
// (invalid UTF-8, a lone surrogate, a name given twice, a name that is not
// exactly one of a struct's fields), or "" if none. It walks encoding/json's
// tokens, independently of the decoder under test.
func strictViolation(raw []byte, t reflect.Type) string {
	if !utf8.Valid(raw) {
		return "invalid UTF-8"
	}
	// encoding/json turns a lone surrogate escape into U+FFFD; one that
	// the body spells out itself is no lone surrogate.
	genuine := bytes.Contains(raw, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
	lone := func(s string) bool { return !genuine && strings.ContainsRune(s, utf8.RuneError) }
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var walk func(t reflect.Type) string
	walk = func(t reflect.Type) string {
		tok, err := dec.Token()
		if err != nil {
			return "syntax: " + err.Error()
		}
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' {
				seen := map[string]bool{}
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return "syntax: " + err.Error()
					}
					name := k.(string)
					if seen[name] {
						return "duplicate " + name
					}
					seen[name] = true
					if lone(name) {
						return "lone surrogate"
					}
					var ft reflect.Type
					switch {
					case t == nil:
					case t.Kind() == reflect.Map:
						ft = t.Elem()
					case t.Kind() == reflect.Struct:
						if ft = fieldType(t, name); ft == nil {
							return "unknown field " + name
						}
					}
					if v := walk(ft); v != "" {
						return v
					}
				}
			} else {
				var et reflect.Type
				if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
					et = t.Elem()
				}
				for dec.More() {
					if v := walk(et); v != "" {
						return v
					}
				}
			}
			if _, err := dec.Token(); err != nil {
				return "syntax: " + err.Error()
			}
		case string:
			if lone(tok) {
				return "lone surrogate"
			}
		}
		return ""
	}
	return walk(t)
}

// goTypeName is a Go type in a message, which the API never shows.
var goTypeName = regexp.MustCompile(`Go (campaigns|wechat|time|\[\]|map\[|u?int|string|float|bool|struct)`)

// FuzzDecodeStrict: no body panics the API's JSON decoder; what it accepts
// breaks none of the strict rules and decodes to what encoding/json makes
// of it; what it refuses gets a 4xx that names JSON types, never Go's.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","account":"wx1","kind":"template","template":{"template_id":"T","data":{"thing1":"{{.name}}"}},"audience":{"source":"file","variables":["name"]}}`,
		`{"name":"x","kind":"custom","custom":{"msgtype":"news","news":{"articles":[{"title":"t","url":"https://x"}]}},"audience":{"source":"inline","openids":["o1","o2"]}}`,
		`{"name":"x","schedule":{"at":"2026-12-01T09:00:00+08:00"},"rate":1.5,"audience":{"source":"tag","tag_id":7}}`,
		`{"statuses":["failed","cancelled"],"errcodes":[45015,-1],"classes":["recipient"]}`,
		`{"NAME":"x"}`, `{"name":"a","name":"b"}`, "{\"name\":\"\xff\"}", `{"name":"\ud800"}`, `{"name":"\ufffd"}`,
		`[]`, `{"audience":{"openids":{}}}`, `{"audience":{"tag_id":1.5}}`, `{} {}`, `{"template":{"data":{"a":"1","a":"2"}}}`,
		`{"schedule":{"at":"tomorrow"}}`, `null`, `"x"`, ``, `{"rate":1e999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range []func() any{
			func() any { return new(campaigns.Campaign) },
			func() any { return new(campaigns.RetryFilter) },
		} {
			v := target()
			e := decodeStrict(body, v)
			typ := reflect.TypeOf(v)
			if e == nil {
				require.Empty(t, strictViolation(body, typ), "accepted %q", body)
				want := target()
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				require.NoError(t, dec.Decode(want), "encoding/json refuses what was accepted: %q", body)
				require.Equal(t, want, v, "decoded differently from encoding/json: %q", body)
				continue
			}
			require.Equal(t, http.StatusBadRequest, e.status, "%q: %v", body, e)
			require.Contains(t, []string{CodeMalformedJSON, CodeInvalidField, CodeUnknownField, CodeDuplicateField}, e.Code)
			require.NotEmpty(t, e.Message)
			if !bytes.Contains(body, []byte("Go ")) {
				require.NotRegexp(t, goTypeName, e.Message, "%q", body)
			}
		}
	})
}

// TestDecodeStrictDecodesAsBefore: every field of the campaign types
// decodes as encoding/json decodes it (the store reads campaigns back with
// encoding/json).
func TestDecodeStrictDecodesAsBefore(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"name":"会员日","account":"wx1","kind":"template","rate":12.5,
		  "template":{"template_id":"T","url":"https://example.com/?a=1&b=2","miniprogram":{"appid":"wxm","pagepath":"p/i"},"data":{"thing1":"{{.name}}的会员日","time2":"2026"}},
		  "audience":{"source":"file","variables":["name"]},"schedule":{"cron":"0 9 * * 1","time_zone":"Asia/Shanghai","missed":"once"}}`,
		`{"name":"cs","kind":"custom","custom":{"msgtype":"msgmenu","kf_account":"a@b","msgmenu":{"head_content":"h","list":[{"id":"1","content":"c"}],"tail_content":"t"},
		  "text":{"content":"x"},"image":{"media_id":"m"},"news":{"articles":[{"title":"t","description":"d","url":"u","picurl":"p"}]},"mpnews":{"media_id":"m"},
		  "mpnewsarticle":{"article_id":"a"},"miniprogrampage":{"title":"t","appid":"a","pagepath":"p","thumb_media_id":"m"}},
		  "audience":{"source":"inline","openids":["oTX0000000000000000000000001"]},"schedule":{"at":"2026-12-01T09:00:00.5+08:00"}}`,
		`{"name":"s","kind":"subscribe","subscribe":{"template_id":"T","page":"https://x","miniprogram":{"appid":"a"},"data":{"k":"v"}},"audience":{"source":"tag","tag_id":9007199254740993},
		  "template":null,"custom":null,"schedule":null,"id":"","state":"","created_at":"0001-01-01T00:00:00Z","updated_at":"2026-01-02T03:04:05Z"}`,
	} {
		var strict, loose campaigns.Campaign
		require.Nil(t, decodeStrict([]byte(body), &strict))
		require.NoError(t, json.Unmarshal([]byte(body), &loose))
		require.Equal(t, loose, strict)
	}
	var strict, loose campaigns.RetryFilter
	body := `{"statuses":["failed","unknown"],"errcodes":[45015,-1],"classes":["recipient","exhausted"]}`
	require.Nil(t, decodeStrict([]byte(body), &strict))
	require.NoError(t, json.Unmarshal([]byte(body), &loose))
	require.Equal(t, loose, strict)
}
