package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
)

// scheduledCampaign is inlineCampaign with schedule, a JSON object.
func scheduledCampaign(schedule string) string {
	return strings.Replace(inlineCampaign, `"audience":`, `"schedule":`+schedule+`,"audience":`, 1)
}

// fireTimes decodes an answer's next_fires.
func fireTimes(t *testing.T, a answer) []time.Time {
	t.Helper()
	raw, ok := a.body["next_fires"].([]any)
	if !ok {
		require.NotContains(t, a.body, "next_fires", a.raw)
		return nil
	}
	out := make([]time.Time, len(raw))
	for i, v := range raw {
		s, _ := v.(string)
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err, "next_fires[%d] is an RFC 3339 time: %q", i, s)
		out[i] = tm
	}
	return out
}

func TestScheduleCron(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", scheduledCampaign(`{"cron":"0 9 * * 1"}`))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, map[string]any{"cron": "0 9 * * 1", "time_zone": "Asia/Shanghai", "missed": "skip"}, a.body["schedule"],
		"the defaults are shown")
	require.Empty(t, fireTimes(t, b.json(t, "GET", "/v1/campaigns/"+id, "")), "a draft does not fire")

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/schedule", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "scheduled", a.body["state"])
	fires := fireTimes(t, a)
	require.Len(t, fires, 5)
	require.True(t, fires[0].After(time.Now()))
	for i, f := range fires {
		require.Equal(t, "+08:00", f.Format("-07:00"), "in the schedule's time zone")
		require.Equal(t, time.Monday, f.Weekday())
		require.Equal(t, "09:00:00", f.Format(time.TimeOnly))
		if i > 0 {
			require.Equal(t, 7*24*time.Hour, f.Sub(fires[i-1]))
		}
	}
	got := b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, fires, fireTimes(t, got), "GET shows the same fire times")

	// Scheduling again is a retry: same answer.
	again := b.json(t, "POST", "/v1/campaigns/"+id+"/schedule", "")
	require.Equal(t, http.StatusOK, again.status, again.raw)
	require.Equal(t, fires, fireTimes(t, again))

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/unschedule", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "draft", a.body["state"])
	require.Empty(t, fireTimes(t, a))
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/unschedule", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeInvalidState, a.errCode())

	// Cancelled: off the schedule for good.
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/schedule", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/cancel", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Empty(t, fireTimes(t, a))
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/schedule", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, "cancelled", a.body["error"].(map[string]any)["state"])

	a = b.json(t, "GET", "/v1/campaigns/"+id+"/schedule", "", invalid, "another method")
	require.Equal(t, http.StatusMethodNotAllowed, a.status)
	require.Equal(t, "POST", a.header.Get("Allow"))
}

func TestScheduleOneOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Now().Add(time.Hour).Truncate(time.Second).In(time.FixedZone("", 8*3600))
	a := b.json(t, "POST", "/v1/campaigns", scheduledCampaign(`{"at":"`+at.Format(time.RFC3339)+`"}`))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/schedule", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	fires := fireTimes(t, a)
	require.Len(t, fires, 1, "a one-off fires once")
	require.True(t, fires[0].Equal(at))
	require.Equal(t, at.Format(time.RFC3339), fires[0].Format(time.RFC3339), "with the offset it was given")

	// Started by hand before its time: it will not fire.
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.Empty(t, fireTimes(t, b.json(t, "GET", "/v1/campaigns/"+id, "")))
}

func TestScheduleRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// Bad schedules fail at create, naming the field.
	// Some of them are outside the contract too; the others are beyond
	// what the OpenAPI document can say.
	for _, tc := range []struct{ schedule, field, msg, invalid string }{
		{`{"cron":"0 0 9 * * 1"}`, "schedule.cron", "seconds", ""},
		{`{"cron":"not cron"}`, "schedule.cron", "invalid cron expression", ""},
		{`{"cron":"0 9 * * 1","time_zone":"Mars/Base"}`, "schedule.time_zone", `schedule.time_zone: unknown time zone "Mars/Base"`, ""},
		{`{"cron":"0 9 * * 1","missed":"always"}`, "schedule.missed", "skip or once", "unknown policy"},
		{`{"at":"2020-01-01T09:00:00+08:00"}`, "schedule.at", "schedule.at: in the past", ""},
		{`{"at":"2099-01-01T09:00:00+08:00","cron":"0 9 * * 1"}`, "schedule", "schedule: set at or cron, not both", "both at and cron"},
	} {
		a := b.json(t, "POST", "/v1/campaigns", scheduledCampaign(tc.schedule), invalid, tc.invalid)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tc.schedule, a.raw)
		require.Equal(t, api.CodeInvalidCampaign, a.errCode())
		require.Equal(t, tc.field, a.errField(), tc.schedule)
		require.Contains(t, a.body["error"].(map[string]any)["message"], tc.msg)
	}
	a := b.json(t, "POST", "/v1/campaigns", scheduledCampaign(`{"at":"tomorrow"}`), invalid, "not a time")
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, api.CodeInvalidField, a.errCode(), "not an RFC 3339 time")
	require.Equal(t, "schedule.at", a.errField())
	require.Contains(t, a.body["error"].(map[string]any)["message"], `schedule.at: "tomorrow" is not an RFC 3339 time`)
	require.EqualValues(t, 0, b.total(t), "nothing was stored")

	// A campaign without a schedule.
	a = b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	a = b.json(t, "POST", "/v1/campaigns/"+a.body["id"].(string)+"/schedule", "")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "schedule", a.errField())

	// A file campaign with no audience uploaded yet.
	file := strings.Replace(templateCampaign, `"audience":`, `"schedule":{"cron":"@daily"},"audience":`, 1)
	a = b.json(t, "POST", "/v1/campaigns", file)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	a = b.json(t, "POST", "/v1/campaigns/"+a.body["id"].(string)+"/schedule", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeNoAudience, a.errCode())
	require.Equal(t, "audience", a.errField())

	require.Equal(t, http.StatusNotFound, b.json(t, "POST", "/v1/campaigns/cnothere00000/schedule", "").status)
	require.Equal(t, http.StatusNotFound, b.json(t, "POST", "/v1/campaigns/cnothere00000/unschedule", "").status)
}
