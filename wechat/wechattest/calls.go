package wechattest

import (
	"net/http"
	"time"
)

// CallResult is what the fake did with a send call.
type CallResult string

// The results of a send call.
const (
	// ResultDelivered is a call that recorded a new delivery.
	ResultDelivered CallResult = "delivered"
	// ResultDeduped is a template send answered from the client_msg_id
	// window with the msgid of an earlier delivery; nothing was delivered.
	ResultDeduped CallResult = "deduped"
	// ResultRefused is a call answered with an errcode: -1 (the
	// SystemError fault), token errors, 45011 and 45009, validation and
	// terminal errcodes, a wrong method or an unreadable body. Nothing was
	// delivered.
	ResultRefused CallResult = "refused"
	// ResultHTTP5xx is a call answered with the HTTP5xx fault's 502 or 503.
	// Nothing was delivered.
	ResultHTTP5xx CallResult = "http_5xx"
)

// CallAnswer is how the answer of a send call went.
type CallAnswer string

// The answers of a send call. Only AnswerAnswered means the client can have
// read the answer; after AnswerDropped and AnswerAbandoned it cannot know
// whether the message went out.
const (
	// AnswerInFlight is a call the fake has not finished: it is being
	// handled, or waiting for its SlowDelay or Latency.
	AnswerInFlight CallAnswer = "in_flight"
	// AnswerAnswered is a call whose answer was written and flushed to the
	// connection without error. A client that gave up at that same instant
	// may still not have read it: the fake cannot see past its socket.
	AnswerAnswered CallAnswer = "answered"
	// AnswerDropped is a call whose connection the DropAfterRecord fault
	// closed instead of answering.
	AnswerDropped CallAnswer = "dropped"
	// AnswerAbandoned is a call whose client went away before the answer
	// could be written: the request's context ended during the Slow fault's
	// wait, the Latency wait or before the write (the client closed the
	// connection or the server shut down), or writing or flushing the answer
	// failed.
	AnswerAbandoned CallAnswer = "abandoned"
)

// Call is one call of a send API (template/send, custom/send,
// subscribe/bizsend) as the fake saw it: what it did with the call and
// whether the client can have read the answer. Server.Calls and
// GET /fake/calls list them.
type Call struct {
	// API is the send API, such as "message/template/send".
	API string `json:"api"`
	// AppID is the account of the call's access_token, or "" when the fake
	// refused (or, for calls refused before the token check, would refuse)
	// the token.
	AppID string `json:"app_id"`
	// OpenID is the body's touser, or "" when the body has none that could
	// be read (not a JSON object, touser missing or not a string, the body
	// too large or not read because the method was wrong). It need not be a
	// valid openid.
	OpenID string `json:"openid"`
	// Result is what the fake did with the call; "" while it is being
	// handled.
	Result CallResult `json:"result"`
	// Errcode is the errcode of a ResultRefused call, such as -1 or 45011.
	Errcode int `json:"errcode,omitempty"`
	// Status is the HTTP status (502 or 503) of a ResultHTTP5xx call.
	Status int `json:"status,omitempty"`
	// MsgID is the msgid answered by template/send (delivered or deduped);
	// 0 otherwise.
	MsgID int64 `json:"msgid,omitempty"`
	// ClientMsgID is the client_msg_id of a template send, if any.
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// Answer is how the answer went.
	Answer CallAnswer `json:"answer"`
	// Arrived is when the fake received the call, by its clock
	// (Config.NowFunc).
	Arrived time.Time `json:"arrived"`
	// Ended is when the fake answered, dropped or abandoned the call, by
	// its clock; zero while the call is in flight. On a ManualClock it
	// equals Arrived unless the test moved the clock meanwhile.
	Ended time.Time `json:"ended,omitzero"`
}

// callResult is CallResult in a record.
type callResult uint8

const (
	resultNone callResult = iota // not handled yet
	resultDelivered
	resultDeduped
	resultRefused
	resultHTTP5xx
)

func (r callResult) name() CallResult {
	switch r {
	case resultDelivered:
		return ResultDelivered
	case resultDeduped:
		return ResultDeduped
	case resultRefused:
		return ResultRefused
	case resultHTTP5xx:
		return ResultHTTP5xx
	}
	return ""
}

// answerKind is CallAnswer in a record.
type answerKind uint8

const (
	answerInFlight answerKind = iota
	answerAnswered
	answerDropped
	answerAbandoned
)

func (a answerKind) name() CallAnswer {
	switch a {
	case answerAnswered:
		return AnswerAnswered
	case answerDropped:
		return AnswerDropped
	case answerAbandoned:
		return AnswerAbandoned
	}
	return AnswerInFlight
}

// callRecord is the compact stored form of a Call. Its strings are the
// parser's copies, shared with the delivery record, never the pooled body.
type callRecord struct {
	api         apiID
	result      callResult
	answer      answerKind
	code        int      // errcode of resultRefused, HTTP status of resultHTTP5xx
	acct        *account // nil: token refused
	openid      string
	clientMsgID string
	msgid       int64
	arrived     time.Time
	ended       time.Time
}

func (c *callRecord) call() Call {
	out := Call{
		API:         c.api.name(),
		OpenID:      c.openid,
		Result:      c.result.name(),
		MsgID:       c.msgid,
		ClientMsgID: c.clientMsgID,
		Answer:      c.answer.name(),
		Arrived:     c.arrived,
		Ended:       c.ended,
	}
	if c.acct != nil {
		out.AppID = c.acct.AppID
	}
	switch c.result {
	case resultRefused:
		out.Errcode = c.code
	case resultHTTP5xx:
		out.Status = c.code
	}
	return out
}

// callState is what serveAPI learns about one call for the call log. It
// lives in the pooled exchange, so tracking a call allocates nothing but the
// record's place in the log.
type callState struct {
	slot    *callRecord // the call's record in Server.calls; nil for other APIs
	rec     callRecord  // the record as it stands, published to slot
	parsed  bool        // rec.openid and rec.clientMsgID are final
	checked bool        // the token was checked; rec.acct is nil if refused
}

// parsed notes that a send handler parsed the body and read touser and
// client_msg_id from it ("" when absent or unreadable), so that the call log
// need not parse it again.
func (x *exchange) parsed(touser, clientMsgID string) {
	x.call.parsed = true
	x.call.rec.openid = touser
	x.call.rec.clientMsgID = clientMsgID
}

// peekRecipient reads touser and, for template/send, client_msg_id from a
// body the handler did not parse: one refused before it (token, limits,
// faults) or refused by it before parsing (44002, 40033).
func peekRecipient(body []byte, api apiID) (touser, clientMsgID string) {
	root, err := parseJSON(body)
	if err != nil || root.kind != jsonObject {
		return "", ""
	}
	f := fieldReader{obj: &root}
	touser, _ = f.str("touser")
	if api == apiTemplateSend {
		clientMsgID, _ = f.str("client_msg_id")
	}
	return touser, clientMsgID
}

// beginCall adds an in-flight record for a send call that arrived at now.
func (s *Server) beginCall(x *exchange, id apiID, now time.Time) {
	x.call.rec = callRecord{api: id, arrived: now}
	x.call.slot = s.calls.add(x.call.rec)
}

// settleCall fills in a send call's record once the fake has decided its
// answer: out, or the HTTP status of the HTTP5xx fault when status is not 0.
// It publishes nothing; answer does.
func (s *Server) settleCall(x *exchange, r *http.Request, out *outcome, status int, now time.Time) {
	c := &x.call
	if c.slot == nil {
		return
	}
	if !c.checked {
		c.rec.acct, _ = s.tokens.check(queryValue(r.URL.RawQuery, "access_token"), now)
	}
	if !c.parsed && len(x.body) > 0 {
		c.rec.openid, c.rec.clientMsgID = peekRecipient(x.body, c.rec.api)
	}
	switch {
	case status != 0:
		c.rec.result, c.rec.code = resultHTTP5xx, status
	case out.code != 0:
		c.rec.result, c.rec.code = resultRefused, out.code
	case out.deduped:
		c.rec.result, c.rec.msgid = resultDeduped, out.msgid
	case out.accepted:
		c.rec.result, c.rec.msgid = resultDelivered, out.msgid
	}
}

// endCall counts how a call's answer went and, for a send call, publishes
// its final record.
func (s *Server) endCall(x *exchange, st *apiStats, a answerKind) {
	switch a {
	case answerAnswered:
		st.answered.Add(1)
	case answerDropped:
		st.dropped.Add(1)
	case answerAbandoned:
		st.abandoned.Add(1)
	}
	if c := &x.call; c.slot != nil {
		c.rec.answer = a
		c.rec.ended = s.set.now()
		s.calls.store(c.slot, &c.rec)
	}
}

// unanswer turns a call that endCall counted answered into an abandoned one:
// writing or flushing its answer failed.
func (s *Server) unanswer(x *exchange, st *apiStats) {
	st.answered.Add(-1)
	st.abandoned.Add(1)
	if c := &x.call; c.slot != nil {
		c.rec.answer = answerAbandoned
		c.rec.ended = s.set.now()
		s.calls.store(c.slot, &c.rec)
	}
}

// Calls returns a copy of the record of every send call received, in the
// order the calls arrived, including calls still in flight (Answer
// AnswerInFlight). A call's record is complete and final once its Answer is
// not AnswerInFlight, with one exception: a call is marked AnswerAnswered
// just before its answer is written, so that a client that has read its
// answer always finds the call answered, and turns AnswerAbandoned if that
// write fails.
func (s *Server) Calls() []Call {
	return s.callSlice(0, s.calls.len())
}

// callSlice returns calls [from, to) clipped to what exists.
func (s *Server) callSlice(from, to int) []Call {
	recs := s.calls.copyRange(from, to)
	if len(recs) == 0 {
		return nil
	}
	out := make([]Call, len(recs))
	for i := range recs {
		out[i] = recs[i].call()
	}
	return out
}
