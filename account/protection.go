package account

import (
	"errors"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/campaigns"
)

// Protection is an account's audience protection (the accounts file's
// protection: section): frequency caps, quiet hours and the
// customer-service window. The suppression list needs no configuration:
// it is always on.
type Protection struct {
	// Caps are the frequency caps: each user gets at most Max bulk
	// messages (of every kind together, campaigns of every kind) in any
	// window of Per. None: no cap.
	Caps []Cap
	// OverCap is what a send over a cap does by default: OverCapDefer
	// (wait until the cap allows) or OverCapSkip. A campaign may choose.
	OverCap string
	// CapTransactional makes transactional sends (POST /v1/messages) count
	// toward the caps and wait for them, as bulk sends do.
	CapTransactional bool
	// Quiet is the account's quiet hours (do not disturb), or nil.
	Quiet *QuietHours
	// CSWindow is the customer-service window's rule.
	CSWindow CSWindow
}

// WithDefaults fills what p leaves zero: OverCapDefer, WeChat's
// customer-service window.
func (p Protection) WithDefaults() Protection {
	if p.OverCap == "" {
		p.OverCap = OverCapDefer
	}
	if p.CSWindow.Hours == 0 {
		p.CSWindow.Hours = CSWindowHoursDefault
	}
	if p.CSWindow.Messages == 0 {
		p.CSWindow.Messages = CSWindowMessagesDefault
	}
	return p
}

// The rules' types live in campaigns, whose campaigns choose among them
// too; these are their names here.
type (
	// Cap is one frequency cap (campaigns.Cap).
	Cap = campaigns.Cap
	// QuietHours is a daily do-not-disturb window (campaigns.QuietHours).
	QuietHours = campaigns.QuietHours
	// CSWindow is the customer-service window's rule (campaigns.CSWindow).
	CSWindow = campaigns.CSWindow
)

// Values of Protection.OverCap, and the bounds of the rules (campaigns').
const (
	OverCapDefer            = campaigns.OverCapDefer
	OverCapSkip             = campaigns.OverCapSkip
	CapsMax                 = campaigns.CapsMax
	CapPerMin               = campaigns.CapPerMin
	CapPerMax               = campaigns.CapPerMax
	CapMaxMax               = campaigns.CapMaxMax
	CSWindowHoursDefault    = campaigns.CSWindowHoursDefault
	CSWindowMessagesDefault = campaigns.CSWindowMessagesDefault
	CSEventWindow           = campaigns.CSEventWindow
	CSEventMessages         = campaigns.CSEventMessages
)

// ParseQuietHours is campaigns.ParseQuietHours.
func ParseQuietHours(from, to, zone string) (*QuietHours, error) {
	return campaigns.ParseQuietHours(from, to, zone)
}

// ParsePer is campaigns.ParsePer.
func ParsePer(s string) (time.Duration, error) { return campaigns.ParsePer(s) }

// fileProtection is the protection: section as written.
type fileProtection struct {
	Caps             []fileCap   `yaml:"caps"`
	OverCap          string      `yaml:"over_cap"`
	CapTransactional bool        `yaml:"cap_transactional"`
	QuietHours       *fileQuiet  `yaml:"quiet_hours"`
	CSWindow         *fileWindow `yaml:"cs_window"`
}

type fileCap struct {
	Max int    `yaml:"max"`
	Per string `yaml:"per"`
}

type fileQuiet struct {
	From          string `yaml:"from"`
	To            string `yaml:"to"`
	TimeZone      string `yaml:"time_zone"`
	Transactional bool   `yaml:"transactional"`
}

type fileWindow struct {
	Hours    *int `yaml:"hours"`
	Messages *int `yaml:"messages"`
	Enforce  bool `yaml:"enforce"`
}

// protection validates fp; field is its path in the file.
func (fp *fileProtection) protection(field string) (Protection, error) {
	p := Protection{}.WithDefaults()
	if fp == nil {
		return p, nil
	}
	fail := func(f, format string, args ...any) error {
		return &ConfigError{Field: field + "." + f, Msg: fmt.Sprintf(format, args...)}
	}
	if len(fp.Caps) > CapsMax {
		return p, fail("caps", "%d caps, at most %d", len(fp.Caps), CapsMax)
	}
	for i, c := range fp.Caps {
		f := fmt.Sprintf("caps[%d]", i)
		if c.Max < 1 || c.Max > CapMaxMax {
			return p, fail(f+".max", "%d: want 1 to %d messages", c.Max, CapMaxMax)
		}
		per, err := ParsePer(c.Per)
		if err != nil {
			return p, fail(f+".per", "%v", err)
		}
		p.Caps = append(p.Caps, Cap{Max: c.Max, Per: per})
	}
	switch fp.OverCap {
	case "":
	case OverCapDefer, OverCapSkip:
		p.OverCap = fp.OverCap
	default:
		return p, fail("over_cap", "%q is not %s or %s", fp.OverCap, OverCapDefer, OverCapSkip)
	}
	p.CapTransactional = fp.CapTransactional
	if q := fp.QuietHours; q != nil {
		qh, err := ParseQuietHours(q.From, q.To, q.TimeZone)
		var qe *campaigns.QuietHoursError
		if errors.As(err, &qe) {
			return p, fail("quiet_hours."+qe.Field, "%s", qe.Msg)
		}
		qh.Transactional = q.Transactional
		p.Quiet = qh
	}
	if w := fp.CSWindow; w != nil {
		if w.Hours != nil {
			if *w.Hours < 1 || *w.Hours > 168 {
				return p, fail("cs_window.hours", "%d: want 1 to 168", *w.Hours)
			}
			p.CSWindow.Hours = *w.Hours
		}
		if w.Messages != nil {
			if *w.Messages < 1 || *w.Messages > 100 {
				return p, fail("cs_window.messages", "%d: want 1 to 100", *w.Messages)
			}
			p.CSWindow.Messages = *w.Messages
		}
		p.CSWindow.Enforce = w.Enforce
	}
	return p, nil
}
