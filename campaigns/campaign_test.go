package campaigns

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

var allStates = []State{StateDraft, StateScheduled, StateRunning, StatePaused, StateCompleted, StateCancelled, StateFailed}

func TestStateCanTransition(t *testing.T) {
	t.Parallel()

	// The table of the State doc comment, written out again so that a
	// change to either fails this test.
	allowed := map[State][]State{
		StateDraft:     {StateScheduled, StateRunning, StateCancelled},
		StateScheduled: {StateRunning, StateCancelled, StateDraft},
		StateRunning:   {StatePaused, StateCompleted, StateStopping},
		StatePaused:    {StateRunning, StateStopping},
		StateStopping:  {StateCancelled, StateFailed},
		StateCompleted: {StateRunning, StateCancelled},
		StateCancelled: {StateRunning}, // a retry run
		StateFailed:    {StateRunning}, // a retry run
	}
	for _, from := range allStates {
		for _, to := range allStates {
			want := false
			for _, a := range allowed[from] {
				want = want || a == to
			}
			require.Equal(t, want, from.CanTransition(to), "%s → %s", from, to)
		}
		require.Equal(t, from == StateCancelled, from.Terminal(), "terminal %s", from)
		require.True(t, from.Valid())
		require.False(t, from.CanTransition("bogus"))
	}
	require.False(t, State("").CanTransition(StateRunning))
	require.False(t, State("bogus").Valid())
}

func TestCampaignTransition(t *testing.T) {
	t.Parallel()

	created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := created.Add(time.Hour)

	c := &Campaign{State: StateDraft, CreatedAt: created, UpdatedAt: created}
	require.NoError(t, c.Transition(StateRunning, now))
	require.Equal(t, StateRunning, c.State)
	require.Equal(t, now, c.UpdatedAt)

	err := c.Transition(StateDraft, now.Add(time.Hour))
	require.ErrorIs(t, err, ErrBadTransition)
	require.EqualError(t, err, `campaigns: bad state transition: "running" to "draft"`)
	require.Equal(t, StateRunning, c.State, "a refused transition changes nothing")
	require.Equal(t, now, c.UpdatedAt)

	require.NoError(t, c.Transition(StateCompleted, now))
	require.NoError(t, c.Transition(StateRunning, now), "a recurring campaign's next run")
	require.NoError(t, c.Transition(StateStopping, now), "a fatal errcode")
	require.NoError(t, c.Transition(StateFailed, now), "once its recipients have outcomes")
	for _, to := range allStates {
		if to != StateRunning {
			require.True(t, errors.Is(c.Transition(to, now), ErrBadTransition), "failed leads only to a retry run")
		}
	}
	require.NoError(t, c.Transition(StateRunning, now), "a retry run")
	require.NoError(t, c.Transition(StateStopping, now))
	require.NoError(t, c.Transition(StateCancelled, now))
	for _, to := range allStates {
		if to != StateRunning {
			require.True(t, errors.Is(c.Transition(to, now), ErrBadTransition), "cancelled leads only to a retry run")
		}
	}
	require.NoError(t, c.Transition(StateRunning, now), "a retry run of the cancelled recipients")
}

func TestCampaignJSON(t *testing.T) {
	t.Parallel()

	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := Campaign{
		ID: "c1", Name: "shipped", Account: "wx00000000000fake1", Kind: KindTemplate,
		Template: &TemplateSpec{
			TemplateID:  "TPL_ORDER_SHIPPED",
			URL:         "https://example.com/o?id=1&x=2",
			MiniProgram: &wechat.MiniProgram{AppID: "wx1234567890abcdef", PagePath: "pages/o?id=1"},
			Data:        map[string]string{"thing1": "{{.name}}，您的订单已发货"},
		},
		Audience:  AudienceSpec{Source: SourceFile, Variables: []string{"name"}},
		Rate:      50,
		State:     StateDraft,
		CreatedAt: at,
		UpdatedAt: at,
	}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"id": "c1", "name": "shipped", "account": "wx00000000000fake1", "kind": "template",
		"template": {
			"template_id": "TPL_ORDER_SHIPPED", "url": "https://example.com/o?id=1\u0026x=2",
			"miniprogram": {"appid": "wx1234567890abcdef", "pagepath": "pages/o?id=1"},
			"data": {"thing1": "{{.name}}，您的订单已发货"}
		},
		"audience": {"source": "file", "variables": ["name"]},
		"rate": 50, "state": "draft",
		"created_at": "2026-03-01T09:00:00Z", "updated_at": "2026-03-01T09:00:00Z"
	}`, string(b))

	var back Campaign
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, c, back)

	custom := Campaign{Kind: KindCustom, Custom: &CustomSpec{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "hi"}, KFAccount: "a@b"},
		Audience: AudienceSpec{Source: SourceTag, TagID: 134}}
	b, err = json.Marshal(custom)
	require.NoError(t, err)
	require.Contains(t, string(b), `"custom":{"msgtype":"text","text":{"content":"hi"},"kf_account":"a@b"}`)
	require.Contains(t, string(b), `"audience":{"source":"tag","tag_id":134}`)
}
