package wechattest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestParseJSON(t *testing.T) {
	t.Parallel()
	v, err := parseJSON([]byte(` {"b":[1,-2.5e3,true,false,null],"a":{"s":"x\"\\\/\b\f\n\r\t\u4e2d\ud83d\ude00\ud800"},"z":""} `))
	require.NoError(t, err)
	require.Equal(t, jsonObject, v.kind)
	require.Equal(t, []string{"b", "a", "z"}, []string{v.fields[0].key, v.fields[1].key, v.fields[2].key})
	arr := v.field("b")
	require.Equal(t, jsonArray, arr.kind)
	require.Equal(t, "-2.5e3", arr.elems[1].s)
	require.True(t, arr.elems[2].b)
	require.Equal(t, jsonNull, arr.elems[4].kind)
	require.Equal(t, "x\"\\/\b\f\n\r\t中😀\ufffd", v.field("a").field("s").s)
	require.Nil(t, v.field("B"), "keys match case-sensitively")
	require.Nil(t, arr.field("b"))

	for _, bad := range []string{
		``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a":1}x`, `{} {}`, `'a'`, `{a:1}`,
		`01`, `1.`, `.5`, `1e`, `-`, `+1`, `tru`, `nul`, `"\x"`, `"\u12"`, `"a` + "\n" + `"`, `"abc`,
		`{"a":1,"a":2}`, strings.Repeat("[", jsonMaxDepth+1) + strings.Repeat("]", jsonMaxDepth+1),
	} {
		_, err := parseJSON([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
	_, err = parseJSON([]byte(`{"k":1,"k":2}`))
	require.ErrorIs(t, err, errJSONDuplicateKey)

	// Large objects switch to a map for duplicate detection.
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 40 {
		sb.WriteString(`"k` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1,`)
	}
	sb.WriteString(`"kaa":2}`)
	_, err = parseJSON([]byte(sb.String()))
	require.ErrorIs(t, err, errJSONDuplicateKey)

	_, err = parseJSON([]byte(strings.Repeat("[", jsonMaxDepth) + strings.Repeat("]", jsonMaxDepth)))
	require.NoError(t, err)
}

// FuzzJSONParse checks the parser against encoding/json: on valid UTF-8 they
// accept the same documents, except that duplicate keys and deep nesting are
// refused here.
func FuzzJSONParse(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2,{"b":null}]}`, `"\u00e9"`, `-0.0e+1`, `{"a":1,"a":2}`, `[1,]`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseJSON(data)
		if !utf8.Valid(data) {
			return
		}
		valid := json.Valid(data)
		switch {
		case err == nil && !valid:
			t.Fatalf("accepted invalid JSON %q", data)
		case err != nil && valid && !errors.Is(err, errJSONDuplicateKey) && !strings.Contains(err.Error(), "nested deeper"):
			t.Fatalf("refused valid JSON %q: %v", data, err)
		}
	})
}
