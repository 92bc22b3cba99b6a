package wechattest

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The fake parses request bodies with this small JSON parser instead of
// encoding/json. encoding/json matches keys case-insensitively, keeps the
// last of duplicate keys and hides JSON types behind Go types; WeChat's
// parser does none of that, and a fake that shares the client's decoding
// (or its structs) would agree with the client's bugs. The parser keeps
// object members in document order, so errors name the first bad key.

// jsonKind is the JSON type of a jsonValue.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	switch k {
	case jsonNull:
		return "null"
	case jsonBool:
		return "boolean"
	case jsonNumber:
		return "number"
	case jsonString:
		return "string"
	case jsonArray:
		return "array"
	case jsonObject:
		return "object"
	}
	return "invalid"
}

// jsonValue is one parsed JSON value.
type jsonValue struct {
	kind   jsonKind
	s      string      // jsonString: the decoded text; jsonNumber: the literal
	b      bool        // jsonBool
	elems  []jsonValue // jsonArray
	fields []jsonField // jsonObject, in document order
}

// jsonField is one member of a JSON object.
type jsonField struct {
	key string
	val jsonValue
}

// jsonMaxDepth bounds nesting so that hostile bodies cannot exhaust the stack.
const jsonMaxDepth = 64

// errJSONDuplicateKey is the parse error of an object with a repeated key.
// JSON allows it in theory; WeChat's answer is undocumented and no correct
// client sends it, so the fake refuses it.
var errJSONDuplicateKey = errors.New("duplicate object key")

// field returns the member key of object v, or nil when absent or when v is
// not an object.
func (v *jsonValue) field(key string) *jsonValue {
	if v == nil || v.kind != jsonObject {
		return nil
	}
	for i := range v.fields {
		if v.fields[i].key == key {
			return &v.fields[i].val
		}
	}
	return nil
}

// parseJSON parses data as exactly one JSON value (RFC 8259) surrounded by
// optional whitespace. It does not check that strings are valid UTF-8: the
// callers refuse invalid UTF-8 before parsing.
func parseJSON(data []byte) (jsonValue, error) {
	p := jsonParser{data: data}
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return jsonValue{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return jsonValue{}, p.errorf("data after the top-level value")
	}
	return v, nil
}

type jsonParser struct {
	data  []byte
	pos   int
	depth int
	// stack collects the members of the objects being parsed; each object
	// then gets one exactly sized slice.
	stack []jsonField
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("json offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (jsonValue, error) {
	if p.pos >= len(p.data) {
		return jsonValue{}, p.errorf("unexpected end of data")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		return jsonValue{kind: jsonString, s: s}, err
	case c == 't':
		return jsonValue{kind: jsonBool, b: true}, p.literal("true")
	case c == 'f':
		return jsonValue{kind: jsonBool}, p.literal("false")
	case c == 'n':
		return jsonValue{kind: jsonNull}, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return jsonValue{}, p.errorf("unexpected byte %q", c)
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("invalid literal")
	}
	p.pos += len(word)
	return nil
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > jsonMaxDepth {
		return p.errorf("nested deeper than %d", jsonMaxDepth)
	}
	return nil
}

func (p *jsonParser) object() (jsonValue, error) {
	if err := p.enter(); err != nil {
		return jsonValue{}, err
	}
	p.pos++ // '{'
	v := jsonValue{kind: jsonObject}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return v, nil
	}
	base := len(p.stack)
	defer func() { p.stack = p.stack[:base] }()
	var seen map[string]struct{} // used once an object grows past a few keys
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return jsonValue{}, p.errorf("object key must be a string")
		}
		key, err := p.key()
		if err != nil {
			return jsonValue{}, err
		}
		members := p.stack[base:]
		if seen == nil && len(members) >= 16 {
			seen = make(map[string]struct{}, 2*len(members))
			for _, f := range members {
				seen[f.key] = struct{}{}
			}
		}
		if seen != nil {
			if _, dup := seen[key]; dup {
				return jsonValue{}, fmt.Errorf("json key %q: %w", key, errJSONDuplicateKey)
			}
			seen[key] = struct{}{}
		} else {
			for _, f := range members {
				if f.key == key {
					return jsonValue{}, fmt.Errorf("json key %q: %w", key, errJSONDuplicateKey)
				}
			}
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return jsonValue{}, p.errorf("missing ':' after object key")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return jsonValue{}, err
		}
		p.stack = append(p.stack, jsonField{key: key, val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return jsonValue{}, p.errorf("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.depth--
			v.fields = append([]jsonField(nil), p.stack[base:]...)
			return v, nil
		default:
			return jsonValue{}, p.errorf("expected ',' or '}' in object")
		}
	}
}

func (p *jsonParser) array() (jsonValue, error) {
	if err := p.enter(); err != nil {
		return jsonValue{}, err
	}
	p.pos++ // '['
	v := jsonValue{kind: jsonArray}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return v, nil
	}
	for {
		p.skipSpace()
		elem, err := p.value()
		if err != nil {
			return jsonValue{}, err
		}
		v.elems = append(v.elems, elem)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return jsonValue{}, p.errorf("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return v, nil
		default:
			return jsonValue{}, p.errorf("expected ',' or ']' in array")
		}
	}
}

// str parses a string starting at the opening quote.
func (p *jsonParser) str() (string, error) {
	p.pos++ // '"'
	start := p.pos
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '"':
			s := string(p.data[start:p.pos])
			p.pos++
			return s, nil
		case c == '\\':
			return p.strEscaped(start)
		case c < 0x20:
			return "", p.errorf("control character in string")
		default:
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

// key parses an object key. Keys the send APIs use are returned as
// constants, saving an allocation each.
func (p *jsonParser) key() (string, error) {
	start := p.pos + 1
	for i := start; i < len(p.data); i++ {
		c := p.data[i]
		if c == '\\' || c < 0x20 {
			break
		}
		if c == '"' {
			p.pos = i + 1
			return internKey(p.data[start:i]), nil
		}
	}
	return p.str()
}

// internKey returns b as a string, without allocating for common keys.
func internKey(b []byte) string {
	switch string(b) {
	case "touser":
		return "touser"
	case "template_id":
		return "template_id"
	case "client_msg_id":
		return "client_msg_id"
	case "url":
		return "url"
	case "miniprogram":
		return "miniprogram"
	case "appid":
		return "appid"
	case "pagepath":
		return "pagepath"
	case "data":
		return "data"
	case "value":
		return "value"
	case "msgtype":
		return "msgtype"
	case "text":
		return "text"
	case "content":
		return "content"
	case "media_id":
		return "media_id"
	case "page":
		return "page"
	}
	return string(b)
}

// strEscaped finishes a string that contains escapes; p.pos is at the first
// backslash.
func (p *jsonParser) strEscaped(start int) (string, error) {
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.data) {
			return "", p.errorf("unterminated escape")
		}
		e := p.data[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A surrogate pair is two escapes; a lone half decodes to
				// U+FFFD, as in encoding/json.
				if r2, ok := p.lowSurrogate(); ok {
					r = utf16.DecodeRune(r, r2)
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape %q", e)
		}
	}
	return "", p.errorf("unterminated string")
}

// hex4 reads the four hex digits of a \u escape.
func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// lowSurrogate consumes a following \uDC00-\uDFFF escape if there is one.
func (p *jsonParser) lowSurrogate() (rune, bool) {
	save := p.pos
	if len(p.data)-p.pos >= 6 && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
		p.pos += 2
		if r, ok := p.hex4(); ok && r >= 0xDC00 && r <= 0xDFFF {
			return r, true
		}
	}
	p.pos = save
	return 0, false
}

func (p *jsonParser) number() (jsonValue, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && p.data[p.pos] >= '1' && p.data[p.pos] <= '9':
		p.digits()
	default:
		return jsonValue{}, p.errorf("invalid number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return jsonValue{}, p.errorf("invalid number fraction")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return jsonValue{}, p.errorf("invalid number exponent")
		}
	}
	return jsonValue{kind: jsonNumber, s: string(p.data[start:p.pos])}, nil
}

func (p *jsonParser) digits() int {
	n := 0
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// fieldReader reads typed members of a JSON object and remembers whether any
// member had the wrong JSON type. A member that is absent reads as the zero
// value; a member that is null has the wrong type (WeChat's parser does not
// treat null as absent, and well-behaved clients omit empty fields).
type fieldReader struct {
	obj *jsonValue
	bad bool
	// badKey is the first member whose type was wrong.
	badKey string
}

func (f *fieldReader) mismatch(key string) {
	if !f.bad {
		f.bad, f.badKey = true, key
	}
}

// str returns the string member key.
func (f *fieldReader) str(key string) (string, bool) {
	v := f.obj.field(key)
	if v == nil {
		return "", false
	}
	if v.kind != jsonString {
		f.mismatch(key)
		return "", false
	}
	return v.s, true
}

// object returns the object member key, or nil.
func (f *fieldReader) object(key string) *jsonValue {
	v := f.obj.field(key)
	if v == nil {
		return nil
	}
	if v.kind != jsonObject {
		f.mismatch(key)
		return nil
	}
	return v
}

// array returns the array member key, or nil.
func (f *fieldReader) array(key string) *jsonValue {
	v := f.obj.field(key)
	if v == nil {
		return nil
	}
	if v.kind != jsonArray {
		f.mismatch(key)
		return nil
	}
	return v
}

// boolean returns the boolean member key.
func (f *fieldReader) boolean(key string) bool {
	v := f.obj.field(key)
	if v == nil {
		return false
	}
	if v.kind != jsonBool {
		f.mismatch(key)
		return false
	}
	return v.b
}
