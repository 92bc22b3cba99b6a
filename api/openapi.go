package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the contract of the API, the one source of truth: the
// tests validate every request and answer against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is openAPIYAML as JSON, made once when the program starts: a
// document that does not convert is a bug of the build, caught by the
// tests, so it panics.
var openAPIJSON = mustYAMLToJSON(openAPIYAML)

// OpenAPI returns the OpenAPI 3.1 description of the API, as JSON: what
// GET /v1/openapi.json answers. The caller may keep and change the slice.
func OpenAPI() []byte { return bytes.Clone(openAPIJSON) }

// serveOpenAPI answers the OpenAPI document, with no API key needed: it
// holds no secret, and clients need it before they have one.
func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIJSON)
}

func mustYAMLToJSON(src []byte) []byte {
	out, err := yamlToJSON(src)
	if err != nil {
		panic("api: openapi.yaml: " + err.Error())
	}
	return out
}

// yamlToJSON converts a YAML document to indented JSON, keeping the order
// of mapping keys (a map would sort them). It takes the JSON-compatible
// subset of YAML: mappings with scalar keys, sequences, strings, numbers,
// booleans, null and aliases; a duplicate key or a merge key is an error
// naming its line.
func yamlToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writeJSONNode(&b, &doc); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func writeJSONNode(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one document", n.Line)
		}
		return writeJSONNode(b, n.Content[0])
	case yaml.AliasNode:
		return writeJSONNode(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("line %d: a key must be a plain scalar", k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("line %d: key %q is repeated", k.Line, k.Value)
			}
			seen[k.Value] = true
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" && v.Value == "" {
				// "{description: a, b}" is a key "b" with no value: a
				// comma in a flow mapping, not a null meant as one.
				return fmt.Errorf("line %d: key %q has no value (write null, or quote a text with commas)", k.Line, k.Value)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k.Value)
			b.WriteByte(':')
			if err := writeJSONNode(b, v); err != nil {
				return err
			}
		}
		b.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, v := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSONNode(b, v); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		return writeJSONScalar(b, n)
	}
	return fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func writeJSONScalar(b *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!str":
		writeJSONString(b, n.Value)
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		b.WriteString(strconv.FormatInt(v, 10))
	case "!!float":
		var v float64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	default:
		return fmt.Errorf("line %d: tag %s has no JSON form", n.Line, n.ShortTag())
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}
