package monitoring

import (
	"net/http"
	"strconv"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/wxmass/wxmass/internal/task"
)

// MonitorPath is where the asynqmon UI is mounted.
const MonitorPath = "/monitoring"

// NewMonitor returns asynqmon's UI and API rooted at MonitorPath, on the
// Redis of opt. It is read-only unless writable: an operator can look at
// queues and tasks but not delete, run or archive them. Send payloads are
// shown with their openid masked. Every answer carries security headers:
// nosniff, X-Frame-Options DENY, Referrer-Policy no-referrer, and the
// Content-Security-Policy of MonitorCSP. The caller puts it behind
// authentication and a CSRF defence, and calls close when done.
func NewMonitor(opt asynq.RedisConnOpt, writable bool) (h http.Handler, close func() error) {
	m := asynqmon.New(asynqmon.Options{
		RootPath:         MonitorPath,
		RedisConnOpt:     opt,
		ReadOnly:         !writable,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(FormatPayload),
	})
	csp := MonitorCSP(m)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		m.ServeHTTP(w, r)
	}), m.Close
}

// FormatPayload shows a task's payload without raw openids: a send's
// recipient is masked as in logs; other payloads carry ids only.
func FormatPayload(taskType string, payload []byte) string {
	switch taskType {
	case task.TypeSendTemplate, task.TypeSendCustom, task.TypeSendSubscribe, task.TypeSendMass:
		s, err := task.DecodeSend(payload)
		if err != nil {
			return "(undecodable send payload)"
		}
		return "campaign " + s.Campaign + " run " + strconv.Itoa(s.Run.Run) + " openid " + MaskOpenID(s.OpenID)
	}
	return string(payload)
}
