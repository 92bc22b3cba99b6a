package callback

import (
	"fmt"
	"strconv"
	"strings"
)

// Normalised results of a MASSSENDJOBFINISH Status.
const (
	// MassSent: Status "send success". Some users may still have failed
	// (ErrorCount).
	MassSent = "sent"
	// MassFailed: Status "send fail" (such as an unconfirmed send to all).
	MassFailed = "failed"
	// MassReviewFailed: Status "err(NNNNN)": the content failed review;
	// MassOutcome.ReviewCode holds NNNNN.
	MassReviewFailed = "review_failed"
	// MassUnknown: a Status WeChat does not document.
	MassUnknown = "unknown"
)

// MassOutcome is a MASSSENDJOBFINISH event's result (wechat-api.md §5.6).
// In principle FilterCount = SentCount + ErrorCount.
type MassOutcome struct {
	// Result is one of MassSent, MassFailed, MassReviewFailed, MassUnknown.
	Result string
	// ReviewCode is the NNNNN of "err(NNNNN)"; 0 otherwise.
	ReviewCode int
	// TotalCount is the number of users in the tag or openid list.
	TotalCount int64
	// FilterCount is the number left after filtering (users over their
	// monthly mass quota, users who refuse messages, filters).
	FilterCount int64
	// SentCount is the number sent successfully.
	SentCount int64
	// ErrorCount is the number that failed.
	ErrorCount int64
}

// ReviewMeaning explains the review errcodes of "err(NNNNN)" statuses
// (wechat-api.md §5.6, from silenceper/wechat's comment on the event; not
// in the official page): "" for others.
func ReviewMeaning(code int) string {
	switch code {
	case 10001:
		return "suspected advertising"
	case 20001:
		return "suspected politics"
	case 20002:
		return "suspected pornography"
	case 20004:
		return "suspected society"
	case 20006:
		return "suspected crime"
	case 20008:
		return "suspected fraud"
	case 20013:
		return "suspected copyright infringement"
	case 21000:
		return "suspected other"
	case 22000:
		return "suspected mutual promotion"
	}
	return ""
}

// NormalizeMassStatus maps a MASSSENDJOBFINISH Status to its result and,
// for "err(NNNNN)", the review errcode.
func NormalizeMassStatus(status string) (string, int) {
	s := strings.ToLower(strings.TrimSpace(status))
	switch s {
	case "send success", "sendsuccess":
		return MassSent, 0
	case "send fail", "sendfail":
		return MassFailed, 0
	}
	if inner, ok := strings.CutPrefix(s, "err("); ok {
		if num, ok := strings.CutSuffix(inner, ")"); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 && n < 1_000_000 {
				return MassReviewFailed, n
			}
		}
	}
	return MassUnknown, 0
}

// massOutcome validates the counts of a MASSSENDJOBFINISH push.
func (p push) massOutcome() (MassOutcome, error) {
	if strings.TrimSpace(p.Status) == "" {
		return MassOutcome{}, fmt.Errorf("%w: %s without <Status>", ErrMalformed, EventMassSendJobFinish)
	}
	var m MassOutcome
	m.Result, m.ReviewCode = NormalizeMassStatus(p.Status)
	var err error
	for _, f := range []struct {
		name string
		v    string
		dst  *int64
	}{
		{"TotalCount", p.TotalCount, &m.TotalCount},
		{"FilterCount", p.FilterCount, &m.FilterCount},
		{"SentCount", p.SentCount, &m.SentCount},
		{"ErrorCount", p.ErrorCount, &m.ErrorCount},
	} {
		if *f.dst, err = parseInt(f.name, f.v, false); err != nil {
			return MassOutcome{}, err
		}
	}
	// The counts are not cross-checked: "in principle" FilterCount =
	// SentCount + ErrorCount (§5.6), and refusing a real push over it
	// would lose the outcome.
	return m, nil
}
