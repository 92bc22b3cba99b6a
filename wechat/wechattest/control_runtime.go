package wechattest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the control endpoints that change how the fake treats
// users at run time: /fake/terminal, /fake/receipt-status and
// /fake/interact. Their bodies are read strictly, like /fake/templates:
// exactly one JSON object, keys matching exactly, no unknown or duplicate
// keys, and errors that name the field.

// controlObject is a control body's JSON object.
type controlObject struct{ obj *jsonValue }

// readControlObject reads body as one JSON object whose keys are among
// keys. what names the body in errors.
func readControlObject(body io.Reader, what string, keys ...string) (controlObject, error) {
	raw, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes))
	if err != nil {
		return controlObject{}, fmt.Errorf("read %s: %w", what, err)
	}
	if !utf8.Valid(raw) {
		return controlObject{}, fmt.Errorf("decode %s: invalid UTF-8", what)
	}
	root, err := parseJSON(raw)
	if err != nil {
		return controlObject{}, fmt.Errorf("decode %s: %w", what, err)
	}
	if root.kind != jsonObject {
		return controlObject{}, fmt.Errorf("decode %s: %s, not an object", what, root.kind)
	}
	for _, f := range root.fields {
		if !containsString(keys, f.key) {
			return controlObject{}, fmt.Errorf("decode %s: unknown field %q (want %s)", what, f.key, strings.Join(keys, ", "))
		}
	}
	return controlObject{obj: &root}, nil
}

// str returns the string member key; absent is an error when required.
func (c controlObject) str(key string, required bool) (string, error) {
	v := c.obj.field(key)
	switch {
	case v == nil && required:
		return "", fmt.Errorf("%s: missing", key)
	case v == nil:
		return "", nil
	case v.kind != jsonString:
		return "", fmt.Errorf("%s: %s, not a string", key, v.kind)
	}
	return v.s, nil
}

// openID returns the required openid member key.
func (c controlObject) openID(key string) (string, error) {
	s, err := c.str(key, true)
	if err == nil && !validOpenID(s) {
		err = fmt.Errorf("%s: %q is not an openid (o and 27 of [A-Za-z0-9_-])", key, s)
	}
	return s, err
}

// integer returns the required integer member key.
func (c controlObject) integer(key string) (int, error) {
	v := c.obj.field(key)
	switch {
	case v == nil:
		return 0, fmt.Errorf("%s: missing", key)
	case v.kind != jsonNumber:
		return 0, fmt.Errorf("%s: %s, not an integer", key, v.kind)
	}
	n, err := strconv.ParseInt(v.s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %s is not an errcode (an integer)", key, v.s)
	}
	return int(n), nil
}

// boolean returns the boolean member key; absent is false.
func (c controlObject) boolean(key string) (bool, error) {
	v := c.obj.field(key)
	switch {
	case v == nil:
		return false, nil
	case v.kind != jsonBool:
		return false, fmt.Errorf("%s: %s, not a boolean", key, v.kind)
	}
	return v.b, nil
}

func writeControlError(w http.ResponseWriter, status int, err error) {
	writeControlJSON(w, status, map[string]string{"error": err.Error()})
}

// serveSetTerminal serves POST /fake/terminal {"openid":"...","errcode":N}:
// SetTerminal; errcode 0 lifts the openid's code.
func (s *Server) serveSetTerminal(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		c, err := readControlObject(r.Body, "terminal", "openid", "errcode")
		if err != nil {
			return err
		}
		openid, err := c.openID("openid")
		if err != nil {
			return err
		}
		code, err := c.integer("errcode")
		if err != nil {
			return err
		}
		return s.SetTerminal(openid, code)
	}()
	if err != nil {
		writeControlError(w, http.StatusBadRequest, err)
		return
	}
	writeControlJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// serveSetReceiptStatus serves POST /fake/receipt-status
// {"openid":"...","status":"failed:user block"}: SetReceiptStatus; status
// "" restores the default.
func (s *Server) serveSetReceiptStatus(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		c, err := readControlObject(r.Body, "receipt status", "openid", "status")
		if err != nil {
			return err
		}
		openid, err := c.openID("openid")
		if err != nil {
			return err
		}
		status, err := c.str("status", true)
		if err != nil {
			return err
		}
		return s.SetReceiptStatus(openid, status)
	}()
	if err != nil {
		writeControlError(w, http.StatusBadRequest, err)
		return
	}
	writeControlJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// interactRequest is a checked body of POST /fake/interact.
type interactRequest struct {
	appID, openid string
	kind          Interaction
	at            time.Time // zero: now
	push          bool
}

// decodeInteract reads the body of POST /fake/interact.
func (s *Server) decodeInteract(body io.Reader) (interactRequest, error) {
	c, err := readControlObject(body, "interact", "app_id", "openid", "kind", "at", "push")
	if err != nil {
		return interactRequest{}, err
	}
	var q interactRequest
	if q.appID, err = c.str("app_id", false); err != nil {
		return q, err
	}
	if _, err := s.accountOf(q.appID); err != nil {
		return q, fmt.Errorf("app_id: %q is not an account of the fake", q.appID)
	}
	if q.openid, err = c.openID("openid"); err != nil {
		return q, err
	}
	kind, err := c.str("kind", true)
	if err != nil {
		return q, err
	}
	var ok bool
	if q.kind, ok = parseInteraction(kind); !ok {
		return q, fmt.Errorf("kind: %q is not one of %s", kind, strings.Join(interactionNames[1:], ", "))
	}
	at, err := c.str("at", false)
	if err != nil {
		return q, err
	}
	if at != "" {
		if q.at, err = time.Parse(time.RFC3339, at); err != nil {
			return q, fmt.Errorf("at: %q is not an RFC 3339 time such as 2026-03-10T09:00:00+08:00", at)
		}
	}
	if q.push, err = c.boolean("push"); err != nil {
		return q, err
	}
	if q.push && s.pusher == nil {
		return q, errors.New("push: true, but the fake has no Callback.URL to push to")
	}
	return q, nil
}

// serveInteract serves POST /fake/interact {"app_id":"...","openid":"...",
// "kind":"message|click|follow|scan|unfollow","at":"RFC 3339","push":true}:
// Interact, or PushInteraction with push. app_id defaults to the first
// account and at to now. A push the callback does not answer "success"
// answers 502; the interaction is recorded all the same.
func (s *Server) serveInteract(w http.ResponseWriter, r *http.Request) {
	q, err := s.decodeInteract(r.Body)
	if err == nil && !q.push {
		err = s.Interact(q.appID, q.openid, q.kind, q.at)
	}
	if err != nil {
		writeControlError(w, http.StatusBadRequest, err)
		return
	}
	if q.push {
		if err := s.PushInteraction(r.Context(), q.appID, q.openid, q.kind, q.at); err != nil {
			writeControlError(w, http.StatusBadGateway, err)
			return
		}
	}
	writeControlJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
