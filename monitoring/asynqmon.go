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
// shown with their openid masked. The caller puts it behind authentication
// and calls close when done.
func NewMonitor(opt asynq.RedisConnOpt, writable bool) (h http.Handler, close func() error) {
	m := asynqmon.New(asynqmon.Options{
		RootPath:         MonitorPath,
		RedisConnOpt:     opt,
		ReadOnly:         !writable,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(FormatPayload),
	})
	return m, m.Close
}

// FormatPayload shows a task's payload without raw openids: a send's
// recipient is masked as in logs; other payloads carry ids only.
func FormatPayload(taskType string, payload []byte) string {
	switch taskType {
	case task.TypeSendTemplate, task.TypeSendCustom, task.TypeSendSubscribe:
		s, err := task.DecodeSend(payload)
		if err != nil {
			return "(undecodable send payload)"
		}
		return "campaign " + s.Campaign + " run " + strconv.Itoa(s.Run.Run) + " openid " + MaskOpenID(s.OpenID)
	}
	return string(payload)
}
