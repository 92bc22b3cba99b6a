package account

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadProtection(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "s", "the-secret-value")
	path := writeFile(t, dir, "accounts.yaml", `
accounts:
  - id: shop
    appid: wx0123456789abcdef
    appsecret_file: s
    protection:
      caps:
        - {max: 2, per: 24h}
        - {max: 5, per: 7d}
      over_cap: skip
      quiet_hours: {from: "22:00", to: "08:00", time_zone: Asia/Shanghai}
      cs_window: {hours: 24, enforce: true}
  - appid: wxfedcba9876543210
    appsecret_file: s
`)
	specs, err := LoadFile(path, Defaults{Rate: 100}, nil)
	require.NoError(t, err)
	p := specs[0].Protection
	require.Equal(t, []Cap{{Max: 2, Per: 24 * time.Hour}, {Max: 5, Per: 7 * 24 * time.Hour}}, p.Caps)
	require.Equal(t, OverCapSkip, p.OverCap)
	require.Equal(t, "22:00-08:00 Asia/Shanghai", p.Quiet.String())
	require.Equal(t, CSWindow{Hours: 24, Messages: CSWindowMessagesDefault, Enforce: true}, p.CSWindow)

	def := specs[1].Protection
	require.Empty(t, def.Caps)
	require.Nil(t, def.Quiet)
	require.Equal(t, OverCapDefer, def.OverCap)
	require.Equal(t, CSWindow{Hours: 48, Messages: 5}, def.CSWindow)

	changed := specs[1]
	changed.Protection = p
	require.Equal(t, []string{"protection"}, Diff(specs[1:], []Spec{changed}).Changed[changed.ID])
}

func TestLoadRefusesBadProtection(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "s", "x")
	const head = "accounts:\n  - appid: wx0123456789abcdef\n    appsecret_file: s\n    protection:\n"
	cases := []struct{ name, body, want string }{
		{"cap max", "      caps: [{max: 0, per: 24h}]\n", "accounts[0].protection.caps[0].max: 0: want 1 to 1000"},
		{"cap per", "      caps: [{max: 2, per: day}]\n", `accounts[0].protection.caps[0].per: "day" is not a duration`},
		{"cap per short", "      caps: [{max: 2, per: 30m}]\n", `accounts[0].protection.caps[0].per: "30m": want 1h0m0s to 31d`},
		{"too many caps", "      caps: [{max: 1, per: 1h}, {max: 1, per: 1h}, {max: 1, per: 1h}, {max: 1, per: 1h}, {max: 1, per: 1h}]\n", "accounts[0].protection.caps: 5 caps, at most 4"},
		{"over cap", "      over_cap: later\n", `accounts[0].protection.over_cap: "later" is not defer or skip`},
		{"quiet from", "      quiet_hours: {from: \"25:00\", to: \"08:00\"}\n", `accounts[0].protection.quiet_hours.from: "25:00" is not a time of day`},
		{"quiet to", "      quiet_hours: {from: \"22:00\", to: \"8\"}\n", `accounts[0].protection.quiet_hours.to: "8" is not a time of day`},
		{"quiet empty", "      quiet_hours: {from: \"22:00\", to: \"22:00\"}\n", "accounts[0].protection.quiet_hours.to: \"22:00\" is the same time as from"},
		{"quiet zone", "      quiet_hours: {from: \"22:00\", to: \"08:00\", time_zone: Mars/Base}\n", `accounts[0].protection.quiet_hours.time_zone: "Mars/Base" is not a time zone`},
		{"window hours", "      cs_window: {hours: 0}\n", "accounts[0].protection.cs_window.hours: 0: want 1 to 168"},
		{"unknown field", "      quiet: {}\n", "field quiet not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "accounts.yaml", head+tc.body)
			_, err := LoadFile(path, Defaults{Rate: 100}, nil)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, path)
		})
	}
}

func TestQuietHoursActive(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	night, err := ParseQuietHours("22:00", "08:00", "")
	require.NoError(t, err)
	lunch, err := ParseQuietHours("12:00", "13:30", "Asia/Shanghai")
	require.NoError(t, err)
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, sh) }
	cases := []struct {
		q    *QuietHours
		t    time.Time
		on   bool
		ends time.Time
	}{
		{night, at(7, 21, 59), false, time.Time{}},
		{night, at(7, 22, 0), true, at(8, 8, 0)},
		{night, at(8, 3, 0), true, at(8, 8, 0)},
		{night, at(8, 7, 59), true, at(8, 8, 0)},
		{night, at(8, 8, 0), false, time.Time{}},
		{night, at(7, 14, 30).UTC(), false, time.Time{}},
		{night, time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC), true, at(8, 8, 0)}, // 23:00 in Shanghai
		{lunch, at(7, 12, 0), true, at(7, 13, 30)},
		{lunch, at(7, 13, 30), false, time.Time{}},
		{nil, at(7, 23, 0), false, time.Time{}},
	}
	for _, tc := range cases {
		on, ends := tc.q.Active(tc.t)
		require.Equal(t, tc.on, on, "%v at %v", tc.q, tc.t)
		require.True(t, tc.ends.Equal(ends), "%v at %v ends %v, want %v", tc.q, tc.t, ends, tc.ends)
	}
}
