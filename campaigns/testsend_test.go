package campaigns

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMessageDigest: the digest follows the message (account, kind, spec)
// and nothing else, and TestCurrent compares it with the recorded one.
func TestMessageDigest(t *testing.T) {
	t.Parallel()
	c := &Campaign{Name: "a", Account: "shop", Kind: KindTemplate,
		Template: &TemplateSpec{TemplateID: "T", Data: map[string]string{"thing1": "x", "thing2": "y"}},
		Audience: AudienceSpec{Source: SourceFollowers}}
	d := c.MessageDigest()
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, d)

	same := *c
	same.Name, same.Rate, same.Priority, same.RequireTest = "b", 5, 7, true
	same.Audience = AudienceSpec{Source: SourceTag, TagID: 2}
	same.Schedule = &Schedule{Cron: "@daily"}
	require.Equal(t, d, same.MessageDigest(), "name, audience, schedule, rate and priority are not the message")

	other := *c
	other.Template = &TemplateSpec{TemplateID: "T", Data: map[string]string{"thing1": "x", "thing2": "z"}}
	require.NotEqual(t, d, other.MessageDigest())
	other = *c
	other.Account = "news"
	require.NotEqual(t, d, other.MessageDigest())

	require.False(t, c.TestCurrent(), "never tested")
	now := time.Now()
	c.TestedAt, c.TestedDigest = &now, d
	require.True(t, c.TestCurrent())
	require.NoError(t, c.checkTested())
	other.TestedAt, other.TestedDigest, other.RequireTest = &now, d, true
	require.False(t, other.TestCurrent())
	require.ErrorIs(t, other.checkTested(), ErrTestRequired)
	c.RequireTest = false
	c.TestedAt = nil
	require.NoError(t, c.checkTested(), "no test needed without require_test")
}
