package wechattest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"
)

// controlPrefix is the path prefix of the fake's own endpoints.
const controlPrefix = "/fake/"

// deliveriesChunk is how many deliveries /fake/deliveries (or calls
// /fake/calls) copies under the log's lock at a time.
const deliveriesChunk = 4096

// serveControl serves the /fake/ endpoints listed in the package doc. They
// answer JSON; errors are HTTP 400 or 405 with {"error":"..."}.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.URL.Path[len(controlPrefix):]
	switch route {
	case "stats":
		if allow(w, r, http.MethodGet) {
			writeControlJSON(w, http.StatusOK, s.Stats())
		}
	case "deliveries":
		if !allow(w, r, http.MethodGet) {
			return
		}
		q := r.URL.Query()
		if !q.Has("openid") {
			writeNDJSON(w, s.rec.count(), s.rec.slice)
			return
		}
		openid := q.Get("openid")
		if !validOpenID(openid) {
			writeControlJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("openid: %q is not an openid", openid)})
			return
		}
		ds := s.DeliveriesTo(openid)
		writeNDJSON(w, len(ds), func(from, to int) []Delivery { return ds[from:to] })
	case "terminal":
		if allow(w, r, http.MethodPost) {
			s.serveSetTerminal(w, r)
		}
	case "receipt-status":
		if allow(w, r, http.MethodPost) {
			s.serveSetReceiptStatus(w, r)
		}
	case "interact":
		if allow(w, r, http.MethodPost) {
			s.serveInteract(w, r)
		}
	case "calls":
		if allow(w, r, http.MethodGet) {
			writeNDJSON(w, s.calls.len(), s.callSlice)
		}
	case "mass-jobs":
		if allow(w, r, http.MethodGet) {
			writeControlJSON(w, http.StatusOK, s.MassJobs())
		}
	case "mass-confirm":
		if allow(w, r, http.MethodPost) {
			var q struct {
				MsgID   int64 `json:"msg_id"`
				Confirm bool  `json:"confirm"`
			}
			err := json.NewDecoder(io.LimitReader(r.Body, MaxBodyBytes)).Decode(&q)
			if err == nil {
				err = s.ConfirmMass(q.MsgID, q.Confirm)
			}
			if err != nil {
				writeControlJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			writeControlJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}
	case "invalidate-tokens":
		if allow(w, r, http.MethodPost) {
			s.InvalidateTokens()
			writeControlJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}
	case "reset-quotas":
		if allow(w, r, http.MethodPost) {
			s.ResetQuotas()
			writeControlJSON(w, http.StatusOK, map[string]bool{"ok": true})
		}
	case "faults":
		switch r.Method {
		case http.MethodGet:
			writeControlJSON(w, http.StatusOK, s.Faults())
		case http.MethodPost:
			f, err := decodeFaults(r.Body)
			if err == nil {
				err = s.SetFaults(f)
			}
			if err != nil {
				writeControlJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			writeControlJSON(w, http.StatusOK, s.Faults())
		default:
			w.Header().Set("Allow", "GET, POST")
			writeControlJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		}
	case "templates":
		switch r.Method {
		case http.MethodGet:
			writeControlJSON(w, http.StatusOK, templatesBody{TemplateIDs: s.TemplateIDs()})
		case http.MethodPost:
			ids, err := decodeTemplateIDs(r.Body)
			if err == nil {
				err = s.SetTemplateIDs(ids)
			}
			if err != nil {
				writeControlJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			writeControlJSON(w, http.StatusOK, templatesBody{TemplateIDs: s.TemplateIDs()})
		default:
			w.Header().Set("Allow", "GET, POST")
			writeControlJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		}
	default:
		http.NotFound(w, r)
	}
}

// templatesBody is the JSON of /fake/templates.
type templatesBody struct {
	TemplateIDs []string `json:"template_ids"`
}

// decodeTemplateIDs decodes exactly one {"template_ids":[...]} object with
// the package's strict parser: keys match exactly, unknown and duplicate
// keys are errors and every id must be a non-empty string, unique. Errors
// name the field, such as template_ids[2].
func decodeTemplateIDs(body io.Reader) ([]string, error) {
	raw, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("decode templates: invalid UTF-8")
	}
	root, err := parseJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("decode templates: %w", err)
	}
	if root.kind != jsonObject {
		return nil, fmt.Errorf("decode templates: %s, not an object", root.kind)
	}
	for _, f := range root.fields {
		if f.key != "template_ids" {
			return nil, fmt.Errorf("decode templates: unknown field %q", f.key)
		}
	}
	list := root.field("template_ids")
	switch {
	case list == nil:
		return nil, errors.New("template_ids: missing")
	case list.kind != jsonArray:
		return nil, fmt.Errorf("template_ids: %s, not an array", list.kind)
	case len(list.elems) == 0:
		return nil, errors.New("template_ids: empty list")
	}
	ids := make([]string, len(list.elems))
	for i, v := range list.elems {
		if v.kind != jsonString {
			return nil, fmt.Errorf("template_ids[%d]: %s, not a string", i, v.kind)
		}
		ids[i] = v.s
	}
	if i, reason := badID(ids); i >= 0 {
		return nil, fmt.Errorf("template_ids[%d]: %s", i, reason)
	}
	return ids, nil
}

// allow answers 405 and returns false unless r uses method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeControlJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
	return false
}

// decodeFaults decodes exactly one JSON Faults object from body.
func decodeFaults(body io.Reader) (Faults, error) {
	raw, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes))
	if err != nil {
		return Faults{}, fmt.Errorf("read faults: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var f Faults
	if err := dec.Decode(&f); err != nil {
		return Faults{}, fmt.Errorf("decode faults: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Faults{}, errors.New("decode faults: data after the object")
	}
	return f, nil
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeNDJSON streams the first n elements of a log as NDJSON, copying them
// with slice in chunks so that senders are not blocked for long.
func writeNDJSON[T any](w http.ResponseWriter, n int, slice func(from, to int) []T) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for from := 0; from < n; from += deliveriesChunk {
		for _, v := range slice(from, min(from+deliveriesChunk, n)) {
			if err := enc.Encode(v); err != nil {
				return // The client went away.
			}
		}
	}
	_ = bw.Flush() // As above: nobody is left to tell.
}
