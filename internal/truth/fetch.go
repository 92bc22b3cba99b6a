package truth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Snapshot is a fake WeChat's record read over HTTP from a running
// `wxmass fakewechat`: a Record for a fake in another process.
type Snapshot struct {
	deliveries []wechattest.Delivery
	calls      []wechattest.Call
}

// Deliveries implements Record.
func (s *Snapshot) Deliveries() []wechattest.Delivery { return s.deliveries }

// Calls implements Record.
func (s *Snapshot) Calls() []wechattest.Call { return s.calls }

// Fetch reads the record of the fake WeChat at base (such as
// "http://127.0.0.1:9010"): GET /fake/deliveries and GET /fake/calls.
func Fetch(ctx context.Context, base string) (*Snapshot, error) {
	var s Snapshot
	if err := fetchLines(ctx, strings.TrimRight(base, "/")+"/fake/deliveries", &s.deliveries); err != nil {
		return nil, err
	}
	if err := fetchLines(ctx, strings.TrimRight(base, "/")+"/fake/calls", &s.calls); err != nil {
		return nil, err
	}
	return &s, nil
}

// fetchLines decodes an NDJSON answer, one T a line.
func fetchLines[T any](ctx context.Context, url string, out *[]T) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("truth: GET %s: HTTP %d", url, res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("truth: GET %s: line %d: %w", url, n, err)
		}
		*out = append(*out, v)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("truth: GET %s: %w", url, err)
	}
	return nil
}
