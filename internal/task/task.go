// Package task holds the asynq task types of wxmass, their payloads and
// their deterministic ids, shared by the producer (which enqueues) and the
// worker (which handles).
//
// Task ids are deterministic so that enqueueing again after a crash never
// queues a second copy while the first is still in Redis:
//
//	launch:{campaign}:{run}
//	expand:{campaign}:{run}:{chunk}
//	send:{campaign}:{run}:{openid}
//	settle:{campaign}:{run}
//	send:{campaign}:{run}:{openid}:rescue   (a send whose worker died)
//
// Payloads carry ids only; message bodies live once, in the campaign.
package task

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Task types, colon hierarchies for prefix routing.
const (
	TypeLaunch = "campaign:launch"
	TypeExpand = "campaign:expand"
	// TypeSettle gives the recipients of a stopped run their outcomes
	// (payload: Run).
	TypeSettle        = "campaign:settle"
	TypeSendTemplate  = "wechat:template:send"
	TypeSendCustom    = "wechat:custom:send"
	TypeSendSubscribe = "wechat:subscribe:send"
	// TypeSendMass sends one batch of a mass run (payload: Send, its
	// OpenID the batch's key) and awaits the job's result.
	TypeSendMass = "wechat:mass:send"
)

// Queues. Transactional sends have their own queue with the highest weight,
// so they are never stuck behind a bulk campaign; launch and expand tasks
// have theirs so that a full bulk queue never starves expansion.
const (
	QueueTransactional = "wxmass_tx"
	QueueControl       = "wxmass_control"
	QueueBulk          = "wxmass_bulk"
)

// Run names one run of a campaign.
type Run struct {
	Campaign string `json:"c"`
	Run      int    `json:"r"`
}

// Expand is the payload of an expand task: chunk Chunk of the run's
// audience.
type Expand struct {
	Run
	Chunk int `json:"k"`
}

// Send is the payload of a send task: one recipient of a run.
type Send struct {
	Run
	OpenID string `json:"o"`
}

// LaunchID is the id of a run's launch task.
func LaunchID(campaign string, run int) string {
	return "launch:" + campaign + ":" + strconv.Itoa(run)
}

// SettleID is the id of the settle task of a stopped run.
func SettleID(campaign string, run int) string {
	return "settle:" + campaign + ":" + strconv.Itoa(run)
}

// ExpandID is the id of the expand task of a chunk.
func ExpandID(campaign string, run, chunk int) string {
	return "expand:" + campaign + ":" + strconv.Itoa(run) + ":" + strconv.Itoa(chunk)
}

// IsSend reports whether typ is the type of a send task.
func IsSend(typ string) bool {
	return typ == TypeSendTemplate || typ == TypeSendCustom || typ == TypeSendSubscribe || typ == TypeSendMass
}

// RescueID is the id of the task that replaces the send task id, whose
// worker died while it was active (worker's rescue of orphaned sends).
func RescueID(id string) string { return id + ":rescue" }

// SendID is the id of the send task of one recipient.
func SendID(campaign string, run int, openid string) string {
	return "send:" + campaign + ":" + strconv.Itoa(run) + ":" + openid
}

// Encode marshals a payload.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Payloads are plain structs of strings and ints.
		panic(fmt.Sprintf("task: encode %T: %v", v, err))
	}
	return b
}

// DecodeRun decodes a launch payload.
func DecodeRun(b []byte) (Run, error) {
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return Run{}, fmt.Errorf("task: decode run: %w", err)
	}
	if r.Campaign == "" || r.Run <= 0 {
		return Run{}, fmt.Errorf("task: decode run: campaign %q run %d", r.Campaign, r.Run)
	}
	return r, nil
}

// DecodeExpand decodes an expand payload.
func DecodeExpand(b []byte) (Expand, error) {
	var e Expand
	if err := json.Unmarshal(b, &e); err != nil {
		return Expand{}, fmt.Errorf("task: decode expand: %w", err)
	}
	if e.Campaign == "" || e.Run.Run <= 0 || e.Chunk < 0 {
		return Expand{}, fmt.Errorf("task: decode expand: campaign %q run %d chunk %d", e.Campaign, e.Run.Run, e.Chunk)
	}
	return e, nil
}

// EncodeSend writes a send payload as "campaign run openid": send tasks
// are the most numerous, so their payload is decoded without JSON. Campaign
// ids and openids never contain a space.
func EncodeSend(s Send) []byte {
	b := make([]byte, 0, len(s.Campaign)+len(s.OpenID)+8)
	b = append(b, s.Campaign...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s.Run.Run), 10)
	b = append(b, ' ')
	return append(b, s.OpenID...)
}

// DecodeSend decodes a send payload, as EncodeSend writes it or as JSON
// (the form of earlier versions, still found in queues after an upgrade).
func DecodeSend(b []byte) (Send, error) {
	var s Send
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &s); err != nil {
			return Send{}, fmt.Errorf("task: decode send: %w", err)
		}
	} else {
		c, rest, ok1 := strings.Cut(string(b), " ")
		r, o, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 {
			return Send{}, fmt.Errorf("task: decode send: want \"campaign run openid\", got %d bytes", len(b))
		}
		run, err := strconv.Atoi(r)
		if err != nil {
			return Send{}, fmt.Errorf("task: decode send: run %q is not a number", r)
		}
		s = Send{Run: Run{Campaign: c, Run: run}, OpenID: o}
	}
	if s.Campaign == "" || s.Run.Run <= 0 || s.OpenID == "" || strings.ContainsRune(s.Campaign, ' ') || strings.ContainsRune(s.OpenID, ' ') {
		return Send{}, fmt.Errorf("task: decode send: campaign %q run %d openid empty=%t", s.Campaign, s.Run.Run, s.OpenID == "")
	}
	return s, nil
}
