package campaigns_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
)

func newStore(t *testing.T) (*campaigns.Store, *rdb.RDB) {
	t.Helper()
	c := redistest.Client(t, redistest.DBDefault)
	r := rdb.New(c, redistest.Prefix(t, c))
	return campaigns.NewStore(r), r
}

func fileCampaign(vars ...string) *campaigns.Campaign {
	data := map[string]string{"thing1": "您的订单已发货"}
	if len(vars) > 0 {
		data["name2"] = "{{." + vars[0] + "}}"
	}
	return &campaigns.Campaign{
		Name: "orders", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL_ORDER_SHIPPED", Data: data},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile, Variables: vars},
	}
}

func TestStoreCreateGetStates(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	c := &campaigns.Campaign{
		Name: "inline", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oAAAAAAAAAAAAAAAAAAAAAAA0001", "oAAAAAAAAAAAAAAAAAAAAAAA0002"}},
	}
	require.NoError(t, s.Create(ctx, c))
	require.True(t, campaigns.ValidID(c.ID), c.ID)
	got, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateDraft, got.State)
	require.Equal(t, c.Template, got.Template)

	// Pausing a draft is refused and changes nothing.
	err = s.Pause(ctx, c.ID)
	var se *campaigns.StateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, campaigns.StateDraft, se.State)
	require.ErrorIs(t, err, campaigns.ErrBadTransition)

	run, err := s.StartRun(ctx, got)
	require.NoError(t, err)
	require.Equal(t, 1, run)
	rec, err := s.Run(ctx, c.ID, run)
	require.NoError(t, err)
	require.EqualValues(t, 2, rec.Size)
	require.NoError(t, s.Pause(ctx, c.ID))
	require.NoError(t, s.Resume(ctx, c.ID))
	stopped, run, err := s.Cancel(ctx, c.ID)
	require.NoError(t, err)
	require.True(t, stopped, "the live run stops")
	got, err = s.Get(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateStopping, got.State, "until its recipients have outcomes")
	require.ErrorIs(t, s.Pause(ctx, c.ID), campaigns.ErrBadTransition)
	res, err := s.SettleStopped(ctx, got, run)
	require.NoError(t, err)
	require.Equal(t, 2, res.New)
	require.Equal(t, string(campaigns.StateCancelled), res.Finished)
	got, err = s.Get(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateCancelled, got.State)
	require.ErrorIs(t, s.Resume(ctx, c.ID), campaigns.ErrBadTransition)

	_, err = s.Get(ctx, "c000000000000")
	require.ErrorIs(t, err, campaigns.ErrNotFound)
}

func TestStoreRejectsInvalidCampaign(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	c := fileCampaign()
	c.Template.Data["thing1"] = strings.Repeat("长", 21)
	err := s.Create(t.Context(), c)
	var ve *campaigns.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, err.Error(), "template.data.thing1")
	ids, n, err := r.ListCampaigns(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Zero(t, n, "nothing stored: %v", ids)
}

func TestUploadAudience(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	ctx := t.Context()
	c := fileCampaign("name")
	require.NoError(t, s.Create(ctx, c))

	f, err := os.Open("../testdata/audience/nasty.csv")
	require.NoError(t, err)
	defer f.Close()
	res, err := s.UploadAudience(ctx, c.ID, f, campaigns.FormatCSV)
	require.NoError(t, err)
	require.Equal(t, res.Report.Accepted, res.Stored)
	require.Positive(t, res.Stored)
	require.Positive(t, res.Report.Duplicates)
	require.Positive(t, res.Report.InvalidOpenIDs)
	for _, e := range res.Report.Errors {
		require.Positive(t, e.Line, "every problem names its line: %+v", e)
	}
	n, err := r.AudienceLen(ctx, c.ID)
	require.NoError(t, err)
	require.EqualValues(t, res.Stored, n)

	// A file without the variable's column is refused whole, and the
	// audience stored before is untouched.
	_, err = s.UploadAudience(ctx, c.ID, strings.NewReader("openid,nom\noAAAAAAAAAAAAAAAAAAAAAAA0009,x\n"), campaigns.FormatCSV)
	require.Error(t, err)
	require.Contains(t, err.Error(), "name")
	n2, err := r.AudienceLen(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, n, n2)

	// A second good upload replaces the first.
	res, err = s.UploadAudience(ctx, c.ID, strings.NewReader("\ufeffopenid,name\r\noAAAAAAAAAAAAAAAAAAAAAAA0009,Zoe\r\n"), campaigns.FormatCSV)
	require.NoError(t, err)
	require.Equal(t, 1, res.Stored)
	ids, err := r.AudienceRange(ctx, r.Keys().Audience(c.ID), 0, -1)
	require.NoError(t, err)
	require.Equal(t, []string{"oAAAAAAAAAAAAAAAAAAAAAAA0009"}, ids)

	// Once started, the audience is frozen.
	_, err = s.StartRun(ctx, c)
	require.NoError(t, err)
	_, err = s.UploadAudience(ctx, c.ID, strings.NewReader("openid,name\noAAAAAAAAAAAAAAAAAAAAAAA0010,Y\n"), campaigns.FormatCSV)
	require.ErrorIs(t, err, campaigns.ErrBadTransition)
}

func TestUploadAudienceChecksRenderedValues(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := fileCampaign("name")
	require.NoError(t, s.Create(t.Context(), c))
	long := strings.Repeat("长", 11) // a name keyword holds at most 10 Chinese characters
	res, err := s.UploadAudience(t.Context(), c.ID, strings.NewReader("openid,name\noAAAAAAAAAAAAAAAAAAAAAAA0001,"+long+"\noAAAAAAAAAAAAAAAAAAAAAAA0002,王芳\n"), campaigns.FormatCSV)
	require.NoError(t, err)
	require.Equal(t, 1, res.Stored)
	require.Len(t, res.Report.Errors, 1)
	require.Equal(t, 2, res.Report.Errors[0].Line)
	require.Contains(t, res.Report.Errors[0].Field, "name2")
}

func TestStartEmptyAudience(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := fileCampaign()
	require.NoError(t, s.Create(t.Context(), c))
	_, err := s.StartRun(t.Context(), c)
	require.ErrorIs(t, err, campaigns.ErrEmptyAudience)
}

// TestUploadNoValidRecipient: a file none of whose lines is a valid
// recipient (or with no line at all) is refused with its report, and the
// audience stored before stays whole.
func TestUploadNoValidRecipient(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	ctx := t.Context()
	c := fileCampaign("name")
	require.NoError(t, s.Create(ctx, c))
	good := []string{"oAAAAAAAAAAAAAAAAAAAAAAA0001", "oAAAAAAAAAAAAAAAAAAAAAAA0002"}
	_, err := s.UploadAudience(ctx, c.ID, strings.NewReader("openid,name\n"+good[0]+",Ann\n"+good[1]+",Bob\n"), campaigns.FormatCSV)
	require.NoError(t, err)

	for _, tt := range []struct {
		name, file string
		f          campaigns.Format
		msg        string
	}{
		{"all bad", "openid,name\nnot an openid,Ann\n" + good[0] + ",\n\n", campaigns.FormatCSV,
			"audience: none of the file's 3 lines is a valid recipient (1 invalid openids, 1 invalid, 1 blank; the report lists them)"},
		{"header only", "openid,name\n", campaigns.FormatCSV, "audience: the file holds no recipient"},
		{"empty jsonl", "\n\n", campaigns.FormatJSONL, "audience: the file holds no recipient"},
		{"bad jsonl", `{"openid":"x","name":"A"}` + "\n", campaigns.FormatJSONL, "none of the file's 1 lines is a valid recipient (1 invalid openids"},
	} {
		res, err := s.UploadAudience(ctx, c.ID, strings.NewReader(tt.file), tt.f)
		require.ErrorIs(t, err, campaigns.ErrNoRecipients, tt.name)
		var fe *campaigns.FileError
		require.ErrorAs(t, err, &fe)
		require.Contains(t, err.Error(), tt.msg, tt.name)
		require.Zero(t, res.Stored)
		require.Zero(t, res.Report.Accepted)
		ids, err := r.AudienceRange(ctx, r.Keys().Audience(c.ID), 0, -1)
		require.NoError(t, err)
		require.ElementsMatch(t, good, ids, "%s: the audience before is kept", tt.name)
	}
	run, err := s.StartRun(ctx, c)
	require.NoError(t, err)
	rec, err := s.Run(ctx, c.ID, run)
	require.NoError(t, err)
	require.EqualValues(t, 2, rec.Size, "the run sends to the audience uploaded first")
}
