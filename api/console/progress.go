package console

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/httpserve"
)

// runProgress streams a run's progress to its page as server-sent events:
// an event "progress" with the progress box's HTML every
// Config.ProgressEvery while the run is live, and a last one, which also
// removes the page's connection (an out-of-band swap), once it finished.
func (c *Console) runProgress(w http.ResponseWriter, r *http.Request) {
	v := c.newView(r)
	id := r.PathValue("id")
	run, err := strconv.Atoi(r.PathValue("run"))
	if err != nil || run <= 0 {
		http.Error(w, "run: a positive whole number", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	path := "/v1/campaigns/" + url.PathEscape(id) + "/runs/" + strconv.Itoa(run)
	tick := time.NewTicker(c.cfg.ProgressEvery)
	defer tick.Stop()
	for {
		var rs runStatus
		if err := c.get(r, path, nil, &rs); err != nil {
			c.log.Debug("console: progress", zap.Error(err))
			return
		}
		v.loc = c.location(rs.Account)
		var b bytes.Buffer
		if err := c.pages.partial(&b, "progress", map[string]any{"V": v, "R": &rs}); err != nil {
			c.log.Error("console: render progress", zap.Error(err))
			return
		}
		done := rs.Finished != nil
		if done {
			// The run's end changes the campaign's state and actions: they
			// are swapped in beside the progress, and the stream ends.
			if err := c.campaignSwaps(r, v, id, &b); err != nil {
				c.log.Debug("console: progress: campaign", zap.Error(err))
			}
			b.WriteString(`<div id="progress-stream" hx-swap-oob="true"></div>`)
		}
		if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", strings.ReplaceAll(strings.TrimSpace(b.String()), "\n", "\ndata: ")); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		httpserve.Progress(r.Context())
		if done {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// campaignSwaps writes the campaign's state and actions as out-of-band
// swaps, for a page whose run just finished.
func (c *Console) campaignSwaps(r *http.Request, v *view, id string, b *bytes.Buffer) error {
	var cr campaignRow
	if err := c.get(r, "/v1/campaigns/"+url.PathEscape(id), nil, &cr); err != nil {
		return err
	}
	for _, name := range []string{"campaign_state", "campaign_actions"} {
		if err := c.pages.partial(b, name, map[string]any{"V": v, "C": cr, "Actions": actionsFor(cr.State), "OOB": true}); err != nil {
			return err
		}
	}
	return nil
}
