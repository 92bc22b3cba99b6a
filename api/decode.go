package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeJSON reads a JSON request body of at most limit bytes and decodes
// it strictly into v (see decodeStrict): exact and known field names, each
// once, valid UTF-8 and the right JSON types, or an *Error naming the
// field.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) *Error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type", "send application/json, not %q", ct)
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return apiError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the body is larger than %d bytes", limit)
	case err != nil:
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "the body could not be read")
	}
	return decodeStrict(raw, v)
}

// decodeStrict decodes raw, one JSON value, into v, which points to a
// struct. It is stricter than encoding/json, whose rules would let a
// request mean something else than it says:
//
//   - field names are matched exactly ("NAME" is not "name") and unknown
//     fields are refused (CodeUnknownField);
//   - a field given twice is refused, wherever it is (CodeDuplicateField);
//   - invalid UTF-8, and \u escapes of lone surrogates, are refused rather
//     than turned into U+FFFD (CodeMalformedJSON);
//   - a value of the wrong JSON type is refused with a message that names
//     JSON types (object, array, string, number, boolean), never Go's
//     (CodeInvalidField).
//
// Every error names the field's path ("template.data.thing1",
// "audience.openids[3]"); the body as a whole has none. The rules are the
// defaults of encoding/json/v2 (through its mirror
// github.com/go-json-experiment/json, until Go ships it), plus
// RejectUnknownMembers.
func decodeStrict(raw []byte, v any) *Error {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if err := jsonv2.UnmarshalDecode(dec, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return strictError(err, raw, reflect.TypeOf(v))
	}
	switch _, err := dec.ReadToken(); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "the body holds more than one JSON value")
	default:
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON after the body's value: %s", syntaxMessage(err))
	}
}

// strictError turns an error of decodeStrict into the API's. raw is the
// body, t the type decoded into, whose fields give the error's path.
func strictError(err error, raw []byte, t reflect.Type) *Error {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.Is(err, io.EOF):
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "the body is empty")
	case errors.As(err, &syn):
		path := fieldPath(syn.JSONPointer, t)
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return apiError(http.StatusBadRequest, CodeDuplicateField, path, "%s appears more than once: give each field once", path)
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return apiError(http.StatusBadRequest, CodeMalformedJSON, path, "the body ends in the middle of a JSON value%s", in(path))
		}
		return apiError(http.StatusBadRequest, CodeMalformedJSON, path, "malformed JSON at byte %d%s: %s", syn.ByteOffset, in(path), syntaxMessage(syn.Err))
	case errors.As(err, &sem):
		return semanticError(sem, raw, t)
	}
	return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON: %s", err.Error())
}

// in is " in PATH", or nothing for the body itself.
func in(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// syntaxMessage is a syntax error's own words, without the package's
// prefix and the location the API's message gives.
func syntaxMessage(err error) string {
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) && syn.Err != nil {
		err = syn.Err
	}
	msg := strings.TrimPrefix(err.Error(), "jsontext: ")
	if msg == "invalid UTF-8" {
		msg = "invalid UTF-8 (a JSON body is UTF-8 text)"
	}
	return msg
}

// semanticError is a value that does not fit its field: an unknown field,
// a wrong JSON type, or a value out of its type's range.
func semanticError(sem *jsonv2.SemanticError, raw []byte, t reflect.Type) *Error {
	path := fieldPath(sem.JSONPointer, t)
	if errors.Is(sem.Err, jsonv2.ErrUnknownName) {
		name := sem.JSONPointer.LastToken()
		hint := ""
		if parent := typeAt(sem.JSONPointer.Parent(), t); parent != nil {
			names := jsonNames(parent)
			if i := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, name) }); i >= 0 {
				hint = fmt.Sprintf(": field names are exact, did you mean %q?", names[i])
			} else if len(names) > 0 {
				hint = fmt.Sprintf(" (the fields%s: %s)", in(fieldPath(sem.JSONPointer.Parent(), t)), strings.Join(names, ", "))
			}
		}
		return apiError(http.StatusBadRequest, CodeUnknownField, path, "unknown field %q%s", name, hint)
	}
	where := path
	if where == "" {
		where = "the body"
	}
	got := jsonKind(sem.JSONKind)
	want, wantDetail := jsonType(sem.GoType)
	switch {
	case got == "" || want == "":
		msg := strings.TrimPrefix(sem.Error(), "json: ")
		return apiError(http.StatusBadRequest, CodeInvalidField, path, "%s: %s", where, msg)
	case got == want:
		// The right JSON type, a value the field cannot hold.
		v := sem.JSONValue
		if len(v) == 0 && sem.ByteOffset >= 0 && sem.ByteOffset < int64(len(raw)) {
			// The value the error is about starts at its offset.
			v, _ = jsontext.NewDecoder(bytes.NewReader(raw[sem.ByteOffset:])).ReadValue()
		}
		return apiError(http.StatusBadRequest, CodeInvalidField, path, "%s: %s is not %s", where, shortValue(v), wantDetail)
	}
	return apiError(http.StatusBadRequest, CodeInvalidField, path, "%s: want JSON %s (%s), got JSON %s", where, want, wantDetail, got)
}

// shortValue shows a JSON value of a request in a message, at most 64
// bytes of it.
func shortValue(v jsontext.Value) string {
	if len(v) == 0 {
		return "the value"
	}
	s := string(v)
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// jsonKind names a JSON kind as JSON does.
func jsonKind(k jsontext.Kind) string {
	switch k {
	case '{', '}':
		return "object"
	case '[', ']':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return ""
}

var timeType = reflect.TypeFor[time.Time]()

// jsonType is the JSON type a Go type is written as, and what its values
// may be, in words.
func jsonType(t reflect.Type) (string, string) {
	if t == nil {
		return "", ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "string", "an RFC 3339 time such as 2026-12-01T09:00:00+08:00"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "object", "an object"
	case reflect.Map:
		return "object", "an object of " + plural(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string", "base64 text"
		}
		return "array", "an array of " + plural(t.Elem())
	case reflect.String:
		return "string", "a string"
	case reflect.Bool:
		return "boolean", "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return "number", fmt.Sprintf("a whole number from %d to %d", int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "number", fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "number", "a finite number"
	}
	return "", ""
}

// plural is what an array or object holds: "strings", "numbers"...
func plural(t reflect.Type) string {
	switch name, _ := jsonType(t); name {
	case "":
		return "values"
	case "object":
		return "objects"
	case "array":
		return "arrays"
	case "boolean":
		return "booleans"
	default:
		return name + "s"
	}
}

// fieldPath writes a JSON pointer into t as the API names fields:
// "template.data.thing1", "audience.openids[3]", `template.data["a.b"]`.
func fieldPath(p jsontext.Pointer, t reflect.Type) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		index := false
		switch {
		case t == nil:
			_, err := strconv.Atoi(tok)
			index = err == nil
		case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
			index = true
			t = t.Elem()
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			t = fieldType(t, tok)
		default:
			t = nil
		}
		switch {
		case index:
			b.WriteString("[" + tok + "]")
		case plainName(tok):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		default:
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	return b.String()
}

// plainName reports whether a field name can be written bare in a path.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// typeAt is the Go type at JSON pointer p inside t, or nil when it cannot
// be told.
func typeAt(p jsontext.Pointer, t reflect.Type) reflect.Type {
	for tok := range p.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t == nil:
			return nil
		case t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			t = fieldType(t, tok)
		default:
			return nil
		}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// structFields calls f with each JSON field of struct t: its name and
// type, embedded structs' fields included.
func structFields(t reflect.Type, f func(name string, ft reflect.Type) bool) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if !structFields(ft, f) {
					return false
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if !f(name, sf.Type) {
			return false
		}
	}
	return true
}

// fieldType is the type of struct t's JSON field name, or nil.
func fieldType(t reflect.Type, name string) reflect.Type {
	var out reflect.Type
	structFields(t, func(n string, ft reflect.Type) bool {
		if n == name {
			out = ft
			return false
		}
		return true
	})
	return out
}

// jsonNames are struct t's JSON field names, in order.
func jsonNames(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	structFields(t, func(n string, _ reflect.Type) bool {
		names = append(names, n)
		return true
	})
	return names
}
