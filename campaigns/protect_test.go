package campaigns

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

func TestValidateProtection(t *testing.T) {
	t.Parallel()
	yes := true
	cases := []struct {
		name  string
		make  func() *Campaign
		field string
		msg   string
	}{
		{"over cap", func() *Campaign {
			c := templateCampaign()
			c.Protection = &ProtectionSpec{OverCap: "later"}
			return c
		}, "protection.over_cap", `"later" is not defer or skip`},
		{"quiet hours", func() *Campaign {
			c := templateCampaign()
			c.Protection = &ProtectionSpec{QuietHours: &QuietHoursSpec{From: "22:00", To: "8:00"}}
			return c
		}, "protection.quiet_hours.to", `"8:00" is not a time of day`},
		{"quiet zone", func() *Campaign {
			c := templateCampaign()
			c.Protection = &ProtectionSpec{QuietHours: &QuietHoursSpec{From: "22:00", To: "08:00", TimeZone: "Nowhere"}}
			return c
		}, "protection.quiet_hours.time_zone", `"Nowhere" is not a time zone`},
		{"ignore blocked", func() *Campaign {
			c := subscribeCampaign()
			c.Protection = &ProtectionSpec{IgnoreSuppression: []string{"blocked"}}
			return c
		}, "protection.ignore_suppression[0]", `"blocked" cannot be ignored`},
		{"ignore refused on a template", func() *Campaign {
			c := templateCampaign()
			c.Protection = &ProtectionSpec{IgnoreSuppression: []string{"refused"}}
			return c
		}, "protection.ignore_suppression[0]", "only a subscribe campaign"},
		{"window on a template", func() *Campaign {
			c := templateCampaign()
			c.Protection = &ProtectionSpec{CSWindow: &yes}
			return c
		}, "protection.cs_window", "only a custom campaign"},
		{"window audience on a template", func() *Campaign {
			c := templateCampaign()
			c.Template.Data = map[string]string{"thing1": "static"}
			c.Audience = AudienceSpec{Source: SourceWindow}
			return c
		}, "audience.source", "only a custom campaign"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make().Validate()
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			found := false
			for _, fe := range ve.Errors {
				if fe.Field == tc.field && strings.Contains(fe.Message, tc.msg) {
					found = true
				}
			}
			require.True(t, found, "want %s: %s in %v", tc.field, tc.msg, ve.Errors)
		})
	}

	ok := subscribeCampaign()
	ok.Protection = &ProtectionSpec{OverCap: "skip", IgnoreSuppression: []string{"refused"},
		QuietHours: &QuietHoursSpec{From: "21:00", To: "09:00", TimeZone: "Asia/Shanghai"}}
	require.NoError(t, ok.Validate())
	require.Equal(t, []string{SuppressUnfollowed, SuppressBlocked, SuppressInvalid, SuppressManual}, ok.Blocking())
	require.Equal(t, OverCapSkip, ok.OverCap(OverCapDefer))
	require.Equal(t, "21:00-09:00 Asia/Shanghai", ok.Quiet().String())

	w := customCampaign(wechat.MsgTypeText)
	w.Custom.Text.Content = "hello"
	w.Audience = AudienceSpec{Source: SourceWindow}
	require.NoError(t, w.Validate())
	require.True(t, w.NeedsCSWindow(false))
	c := customCampaign(wechat.MsgTypeText)
	require.False(t, c.NeedsCSWindow(false))
	require.True(t, c.NeedsCSWindow(true))
	no := false
	c.Protection = &ProtectionSpec{CSWindow: &no}
	require.False(t, c.NeedsCSWindow(true))
	require.Len(t, templateCampaign().Blocking(), 5)
}
