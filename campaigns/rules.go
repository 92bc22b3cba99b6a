package campaigns

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The rules of an account's protection that a campaign's own choices use
// too: frequency caps, quiet hours and the customer-service window. The
// account (package account) configures them; a campaign may add quiet
// hours of its own, and choose what happens over a cap.

// What a send over a frequency cap does (an account's over_cap, a
// campaign's protection.over_cap).
const (
	OverCapDefer = "defer"
	OverCapSkip  = "skip"
)

// Cap is one frequency cap: at most Max messages in any window of Per.
type Cap struct {
	Max int
	Per time.Duration
}

// String is "2/24h0m0s"-like: max/per.
func (c Cap) String() string { return strconv.Itoa(c.Max) + "/" + c.Per.String() }

// Bounds of a Cap.
const (
	CapsMax = 4
	// CapPerMin is the shortest cap window: longer than WeChat's
	// client_msg_id window, so that a send's place outlives any retry of
	// it that may repeat its call.
	CapPerMin = time.Hour
	CapPerMax = 31 * 24 * time.Hour
	CapMaxMax = 1000
)

// QuietHours is a daily do-not-disturb window in a time zone: sends wait
// from From until To (minutes after midnight). From > To spans midnight
// (22:00 to 08:00).
type QuietHours struct {
	From, To int // minutes after midnight, 0 to 1439
	Location *time.Location
	// Transactional makes transactional sends wait too.
	Transactional bool
}

// ParseQuietHours builds quiet hours from "HH:MM" times and an IANA time
// zone ("" is Asia/Shanghai). The error names which part is wrong.
func ParseQuietHours(from, to, zone string) (*QuietHours, error) {
	f, ok := parseClock(from)
	if !ok {
		return nil, quietHoursError("from", "%q is not a time of day HH:MM (00:00 to 23:59)", from)
	}
	t, ok := parseClock(to)
	if !ok {
		return nil, quietHoursError("to", "%q is not a time of day HH:MM (00:00 to 23:59)", to)
	}
	if f == t {
		return nil, quietHoursError("to", "%q is the same time as from: the window would be empty", to)
	}
	if zone == "" {
		zone = "Asia/Shanghai"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, quietHoursError("time_zone", "%q is not a time zone (%v)", zone, err)
	}
	return &QuietHours{From: f, To: t, Location: loc}, nil
}

// QuietHoursError is ParseQuietHours's error: which part (from, to,
// time_zone) is wrong, and why.
type QuietHoursError struct {
	Field string
	Msg   string
	// reason is Msg as a format and its arguments, for the validation's
	// FieldError.
	reason reason
}

func quietHoursError(field, format string, args ...any) *QuietHoursError {
	return &QuietHoursError{Field: field, Msg: fmt.Sprintf(format, args...), reason: reasonf(format, args...)}
}

// Error is "field: msg".
func (e *QuietHoursError) Error() string { return e.Field + ": " + e.Msg }

func parseClock(s string) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(h) != 2 || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, false
	}
	return hh*60 + mm, true
}

// String is "22:00-08:00 Asia/Shanghai".
func (q *QuietHours) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d %s", q.From/60, q.From%60, q.To/60, q.To%60, q.Location)
}

// Active reports whether t falls in the window, and if so when the window
// ends (the first To after t).
func (q *QuietHours) Active(t time.Time) (bool, time.Time) {
	if q == nil {
		return false, time.Time{}
	}
	lt := t.In(q.Location)
	y, mo, d := lt.Date()
	midnight := time.Date(y, mo, d, 0, 0, 0, 0, q.Location)
	at := func(day, min int) time.Time {
		return time.Date(y, mo, d+day, min/60, min%60, 0, 0, q.Location)
	}
	mins := int(lt.Sub(midnight) / time.Minute)
	if q.From < q.To {
		if mins >= q.From && mins < q.To {
			return true, at(0, q.To)
		}
		return false, time.Time{}
	}
	// Spans midnight: [From, 24:00) and [00:00, To).
	if mins >= q.From {
		return true, at(1, q.To)
	}
	if mins < q.To {
		return true, at(0, q.To)
	}
	return false, time.Time{}
}

// CSWindow is the customer-service window (wechat-api.md §3.1): a user's
// message opens Hours hours in which the account may send Messages
// customer-service messages. Enforce makes every custom campaign of the
// account skip users outside their window (or with its messages used)
// before any call; without it only campaigns that ask do.
type CSWindow struct {
	Hours    int
	Messages int
	Enforce  bool
}

// WeChat's customer-service window since 2021-06-01 (wechat-api.md §3.1),
// and the shorter one a menu click, a follow or a scan opens.
const (
	CSWindowHoursDefault    = 48
	CSWindowMessagesDefault = 5
	CSEventWindow           = time.Minute
	CSEventMessages         = 3
)

// Window is the window's length.
func (w CSWindow) Window() time.Duration { return time.Duration(w.Hours) * time.Hour }

// ParsePer parses a cap's window: a Go duration ("24h", "90m") or a number
// of days ("7d").
func ParsePer(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%q is not a number of days such as 7d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 24h or 7d", s)
		}
	}
	if d < CapPerMin || d > CapPerMax {
		return 0, fmt.Errorf("%q: want %v to %v", s, CapPerMin, "31d")
	}
	return d, nil
}
