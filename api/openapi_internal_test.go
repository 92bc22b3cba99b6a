package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestYAMLToJSON: the document's YAML becomes JSON with its keys in order,
// and the YAML slips that would change it silently are refused by line.
func TestYAMLToJSON(t *testing.T) {
	t.Parallel()
	out, err := yamlToJSON([]byte("b: 1\na: [x, 'y', \"2\", 2.5, true, null]\nc: {d: \"{{.name}}\", e: '0 9 * * 1'}\n\"200\": &r {f: g}\n\"404\": *r\n"))
	require.NoError(t, err)
	require.JSONEq(t, `{"b":1,"a":["x","y","2",2.5,true,null],"c":{"d":"{{.name}}","e":"0 9 * * 1"},"200":{"f":"g"},"404":{"f":"g"}}`, string(out))
	require.Regexp(t, `(?s)^\{\s*"b".*"a".*"c".*"200".*"404"`, string(out), "keys keep their order")

	for _, tc := range []struct{ yaml, msg string }{
		{"a: 1\nb: 2\na: 3\n", `line 3: key "a" is repeated`},
		{"m: {description: one, two}\n", `line 1: key "two" has no value`},
		{"a: .inf\n", "line 1: .inf is not a JSON number"},
		{"a: !!binary aGk=\n", "line 1: tag !!binary has no JSON form"},
		{"a: [\n", "yaml:"},
	} {
		_, err := yamlToJSON([]byte(tc.yaml))
		require.ErrorContains(t, err, tc.msg, tc.yaml)
	}
}
