package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wxmass/wxmass/campaigns"
)

// Error codes of the API's error answers.
const (
	CodeUnauthorized     = "unauthorized"
	CodeCrossOrigin      = "cross_origin"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeMalformedJSON    = "malformed_json"
	CodeInvalidField     = "invalid_field"
	CodeUnknownField     = "unknown_field"
	CodeInvalidCampaign  = "invalid_campaign"
	CodeInvalidAudience  = "invalid_audience"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInvalidState     = "invalid_state"
	CodeIdempotencyReuse = "idempotency_key_reused"
	CodeIdempotencyBusy  = "idempotency_key_in_use"
	CodeUnavailable      = "unavailable"
	CodeWeChat           = "wechat_error"
	CodeNothingToRetry   = "nothing_to_retry"
	CodeRunNotSettled    = "run_not_settled"
	CodeInternal         = "internal"
)

// Error is the body of every error answer: {"error": Error}.
type Error struct {
	// Code is a machine-readable code, one of the Code constants.
	Code string `json:"code"`
	// Message says what is wrong, for a person.
	Message string `json:"message"`
	// Field is the JSON path of the offending field, or the query
	// parameter or header, when there is one.
	Field string `json:"field,omitempty"`
	// Errors lists every problem of a campaign that failed validation.
	Errors []campaigns.FieldError `json:"errors,omitempty"`
	// State is the campaign's current state, for CodeInvalidState.
	State string `json:"state,omitempty"`

	status int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiError(status int, code, field, format string, args ...any) *Error {
	return &Error{status: status, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.status, map[string]*Error{"error": e})
}

// decodeJSON decodes one JSON object of at most limit bytes into v,
// refusing unknown fields, trailing data and wrong types with an *Error
// naming the field or the offset.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) *Error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type", "send application/json, not %q", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err, limit)
		}
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "the body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error, limit int64) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return apiError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the body is larger than %d bytes", limit)
	case errors.As(err, &syn):
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		return apiError(http.StatusBadRequest, CodeInvalidField, field, "%s: want %s, got JSON %s", field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "the body ends in the middle of a JSON value")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return apiError(http.StatusBadRequest, CodeUnknownField, name, "unknown field %q", name)
	}
	return apiError(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON: %s", err.Error())
}

// validationError turns a campaign's validation error into the API's.
func validationError(err error) *Error {
	var ve *campaigns.ValidationError
	if errors.As(err, &ve) {
		e := apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, "", "%s", strings.TrimPrefix(ve.Error(), "campaigns: "))
		e.Errors = ve.Errors
		if len(ve.Errors) > 0 {
			e.Field = ve.Errors[0].Field
		}
		return e
	}
	return nil
}
