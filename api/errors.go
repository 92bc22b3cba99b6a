package api

import (
	"encoding/json"
	"errors"
	"fmt"
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
	CodeDuplicateField   = "duplicate_field"
	CodeInvalidCampaign  = "invalid_campaign"
	CodeInvalidAudience  = "invalid_audience"
	// CodeInvalidMedia: an uploaded file WeChat would refuse (type, size,
	// format), or a media upload's form without its file.
	CodeInvalidMedia     = "invalid_media"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInvalidState     = "invalid_state"
	CodeNoAudience       = "no_audience"
	CodeIdempotencyReuse = "idempotency_key_reused"
	CodeIdempotencyBusy  = "idempotency_key_in_use"
	CodeUnavailable      = "unavailable"
	CodeWeChat           = "wechat_error"
	CodeNothingToRetry   = "nothing_to_retry"
	CodeRunNotSettled    = "run_not_settled"
	// CodeTestRequired: a campaign with require_test has had no successful
	// test send since its message last changed (409).
	CodeTestRequired = "test_required"
	// CodeRecipientsExpired: a run's per-recipient data passed the
	// retention (410).
	CodeRecipientsExpired = "recipients_expired"
	// CodeAwaitingConfirmation: WeChat refused a change (errcode 89504 or
	// 89505) while a send to all of the account waits for its admin's
	// confirmation (409).
	CodeAwaitingConfirmation = "awaiting_confirmation"
	// CodeNotSuppressed: the user is not on the account's suppression
	// list (404).
	CodeNotSuppressed = "not_suppressed"
	CodeRateLimited   = "rate_limited"
	CodeInternal      = "internal"
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
	// ErrCode is WeChat's errcode, for CodeWeChat and
	// CodeAwaitingConfirmation answers to an errcode, and Meaning its
	// meaning by the errcode rules.
	ErrCode int    `json:"errcode,omitempty"`
	Meaning string `json:"meaning,omitempty"`

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
