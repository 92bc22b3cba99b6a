package console

import "time"

// timeLayout is how the console shows a time: in the account's zone, with
// the zone's abbreviation.
const timeLayout = "2006-01-02 15:04:05 MST"

// TimeIn shows t in account's time zone (the accounts file's time_zone),
// "" for the zero time: the pages that list several accounts' campaigns
// show each in its own.
func (v *view) TimeIn(account string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if v.zone == nil {
		return v.Time(t)
	}
	return t.In(v.zone(account)).Format(timeLayout)
}
