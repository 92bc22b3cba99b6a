package wechattest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

const (
	massCallbackToken = "mass-callback-token"
	massCallbackKey   = "Zq8XrT3vLmN0pWd5YbK2sHc7JfG4aE9uQiR1oVxMn6B"
)

// freshTokens is a TokenSource that asks the fake's stable_token each
// time, so that tests may move the fake's clock past a token's life.
type freshTokens struct {
	client *wechat.Client
	appID  string
	secret string
}

func (f freshTokens) Token(ctx context.Context) (string, error) {
	at, err := f.client.StableToken(ctx, f.appID, secret.New(f.secret), false)
	return at.Token, err
}

func (f freshTokens) Invalidate(context.Context, string) error { return nil }

// massBundle is a fake on a manual clock, a client, and a callback
// receiver that passes MASSSENDJOBFINISH events to pushes.
type massBundle struct {
	fake   *wechattest.Server
	clk    *wechattest.ManualClock
	client *wechat.Client
	ts     wechat.TokenSource
	pushes chan callback.Event
}

// massStart is the time tests start at: 10:00 on 2026-12-10, Asia/Shanghai.
var massStart = time.Date(2026, 12, 10, 2, 0, 0, 0, time.UTC)

func massSetup(t *testing.T, cfg wechattest.Config, mode string) *massBundle {
	t.Helper()
	b := &massBundle{clk: wechattest.NewManualClock(massStart), pushes: make(chan callback.Event, 64)}
	if mode != "" {
		h, err := callback.NewHandler(callback.Config{
			Token: massCallbackToken, AESKey: secret.New(massCallbackKey), AppID: wechattest.AppIDDefault, Mode: mode,
			// The fake signs with its manual clock, days from the real one.
			TimestampWindow: -1,
			OnEvent: func(ctx context.Context, e callback.Event) error {
				if e.Event == callback.EventMassSendJobFinish {
					b.pushes <- e
				}
				return nil
			},
		})
		require.NoError(t, err)
		recv := httptest.NewServer(h)
		t.Cleanup(recv.Close)
		cfg.Callback = wechattest.Callback{URL: recv.URL + "/cb", Token: massCallbackToken, AESKey: massCallbackKey, Mode: mode}
		if mode == callback.ModePlain {
			cfg.Callback.AESKey = ""
		}
	}
	cfg.NowFunc = b.clk.Now
	b.fake = wechattest.Start(t, cfg)
	b.client = wechat.New(wechat.WithBaseURLs(b.fake.URL()), wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(4)}))
	t.Cleanup(b.client.CloseIdleConnections)
	b.ts = freshTokens{client: b.client, appID: wechattest.AppIDDefault, secret: wechattest.SecretDefault}
	return b
}

// push waits for the next MASSSENDJOBFINISH.
func (b *massBundle) push(t *testing.T) callback.Event {
	t.Helper()
	select {
	case e := <-b.pushes:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no MASSSENDJOBFINISH push within 10s")
		return callback.Event{}
	}
}

// pushesByID waits for n pushes, which may arrive in any order.
func (b *massBundle) pushesByID(t *testing.T, n int) map[int64]callback.Event {
	t.Helper()
	out := make(map[int64]callback.Event, n)
	for range n {
		e := b.push(t)
		out[e.MsgID] = e
	}
	require.Len(t, out, n)
	return out
}

// finish moves the clock past the sending time and returns the jobs.
func (b *massBundle) finish(t *testing.T) []wechattest.MassJob {
	t.Helper()
	b.clk.Advance(wechattest.MassSendingDefault)
	return b.fake.MassJobs()
}

func job(t *testing.T, jobs []wechattest.MassJob, msgID int64) wechattest.MassJob {
	t.Helper()
	for _, j := range jobs {
		if j.MsgID == msgID {
			return j
		}
	}
	t.Fatalf("no mass job %d", msgID)
	return wechattest.MassJob{}
}

func massOpenID(i int) string { return fmt.Sprintf("oMASS%023d", i) }

func text(content, cmid string) *wechat.MassMessage {
	return &wechat.MassMessage{MsgType: wechat.MassTypeText, Text: &wechat.Text{Content: content}, ClientMsgID: cmid}
}

// requirePushMatches checks a push against the fake's record of the job.
func requirePushMatches(t *testing.T, e callback.Event, j wechattest.MassJob) {
	t.Helper()
	require.Equal(t, j.MsgID, e.MsgID)
	require.Equal(t, j.PushStatus, e.Status)
	require.EqualValues(t, j.Total, e.Mass.TotalCount)
	require.EqualValues(t, len(j.Delivered)+len(j.Errors), e.Mass.FilterCount)
	require.EqualValues(t, len(j.Delivered), e.Mass.SentCount)
	require.EqualValues(t, len(j.Errors), e.Mass.ErrorCount)
}

// TestMassSendBatchesRetryAfterDrop: 25,000 openids go out as 3 batches
// with distinct clientmsgids; the second batch's answer is lost (the fake
// drops the connection after accepting it), its retry is answered 45065
// with the same msg_id, and the record holds every openid exactly once.
func TestMassSendBatchesRetryAfterDrop(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, callback.ModePlain)
	ctx := t.Context()
	all := make([]string, 25000)
	for i := range all {
		all[i] = massOpenID(i)
	}
	var ids []int64
	for n, batch := range slices.Collect(slices.Chunk(all, wechat.MassOpenIDsMax)) {
		m := text("本周活动", fmt.Sprintf("camp-7:batch-%d", n))
		if n == 1 {
			b.fake.DropNextMass(wechat.APIMassSend, 1)
			_, err := b.client.MassSend(ctx, b.ts, batch, m)
			var te *wechat.TransportError
			require.ErrorAs(t, err, &te)
			require.True(t, te.Sent, "the request reached the fake")
		}
		res, err := b.client.MassSend(ctx, b.ts, batch, m)
		if n == 1 {
			require.ErrorIs(t, err, wechat.ErrMassDuplicate)
			var de *wechat.MassDuplicateError
			require.ErrorAs(t, err, &de)
			res.MsgID = de.MsgID
		} else {
			require.NoError(t, err)
		}
		require.NotZero(t, res.MsgID)
		ids = append(ids, res.MsgID)
	}
	jobs := b.finish(t)
	require.Len(t, jobs, 3, "the retry made no second job")
	pushes := b.pushesByID(t, 3)
	got := map[string]int{}
	for n, id := range ids {
		j := job(t, jobs, id)
		require.Equal(t, fmt.Sprintf("camp-7:batch-%d", n), j.ClientMsgID)
		require.Equal(t, wechattest.MassSuccess, j.Status)
		require.Empty(t, j.Filtered)
		for _, o := range j.Delivered {
			got[o]++
		}
		requirePushMatches(t, pushes[id], j)
	}
	require.Len(t, got, len(all))
	for _, o := range all {
		require.Equal(t, 1, got[o], "openid %s delivered once", o)
	}
	require.EqualValues(t, 4, b.fake.MassCalls()[wechat.APIMassSend])
}

// TestMassSendListSizeRefusedBeforeCall: 1 and 10,001 openids never reach
// the fake, nor a clientmsgid over 64 bytes.
func TestMassSendListSizeRefusedBeforeCall(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, "")
	for _, n := range []int{0, 1, wechat.MassOpenIDsMax + 1} {
		list := make([]string, n)
		for i := range list {
			list[i] = massOpenID(i)
		}
		_, err := b.client.MassSend(t.Context(), b.ts, list, text("x", "c"))
		require.ErrorContains(t, err, fmt.Sprintf("%d openids", n))
	}
	_, err := b.client.MassSend(t.Context(), b.ts, []string{massOpenID(1), massOpenID(2)}, text("x", string(make([]byte, 65))))
	require.ErrorContains(t, err, "clientmsgid is 65 bytes")
	require.Zero(t, b.fake.MassCalls()[wechat.APIMassSend])
}

// TestMassClientMsgID45066: a job that failed review may be sent again
// with its clientmsgid only a minute after it failed (45066 before); a job
// that stands answers 45065.
func TestMassClientMsgID45066(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{Mass: wechattest.MassConfig{ReviewFailures: map[string]int{"禁词": 20001}}}, callback.ModePlain)
	ctx := t.Context()
	users := []string{massOpenID(1), massOpenID(2)}
	bad, err := b.client.MassSend(ctx, b.ts, users, text("含禁词的内容", "c:review"))
	require.NoError(t, err)
	j := job(t, b.finish(t), bad.MsgID)
	require.Equal(t, wechattest.MassFail, j.Status)
	require.Equal(t, "err(20001)", j.PushStatus)
	require.Empty(t, j.Delivered, "review failure delivers nothing")
	e := b.push(t)
	requirePushMatches(t, e, j)
	require.Equal(t, callback.MassReviewFailed, e.Mass.Result)
	require.Equal(t, 20001, e.Mass.ReviewCode)
	require.Equal(t, "suspected politics", callback.ReviewMeaning(e.Mass.ReviewCode))

	// Same clientmsgid 30 s after the failure: too fast.
	b.clk.Advance(30 * time.Second)
	_, err = b.client.MassSend(ctx, b.ts, users, text("改好的内容", "c:review"))
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 45066, ae.Code)
	// A minute after that refused retry: a new job.
	b.clk.Advance(time.Minute)
	good, err := b.client.MassSend(ctx, b.ts, users, text("改好的内容", "c:review"))
	require.NoError(t, err)
	require.NotEqual(t, bad.MsgID, good.MsgID)
	// The same clientmsgid again: the job stands, 45065 with its msg_id.
	_, err = b.client.MassSend(ctx, b.ts, users, text("改好的内容", "c:review"))
	var de *wechat.MassDuplicateError
	require.ErrorAs(t, err, &de)
	require.Equal(t, good.MsgID, de.MsgID)
	jobs := b.finish(t)
	require.ElementsMatch(t, users, job(t, jobs, good.MsgID).Delivered)
	requirePushMatches(t, b.push(t), job(t, jobs, good.MsgID))
}

// TestMassPerMinuteLimit: the 61st mass call of a minute answers 45011;
// a minute later calls pass again.
func TestMassPerMinuteLimit(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, "")
	ctx := t.Context()
	for range wechattest.MassPerMinuteDefault {
		_, err := b.client.MassSpeedGet(ctx, b.ts)
		require.NoError(t, err)
	}
	_, err := b.client.MassSpeedGet(ctx, b.ts)
	require.ErrorIs(t, err, wechat.ErrMinuteQuota)
	b.clk.Advance(time.Minute + time.Second)
	_, err = b.client.MassSpeedGet(ctx, b.ts)
	require.NoError(t, err)
}

// TestMassMonthlyCap: on a service account a user who got 4 mass messages
// this month (Asia/Shanghai) is filtered from the 5th, which the push's
// FilterCount and SentCount show; next month he gets it again.
func TestMassMonthlyCap(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, callback.ModeSafe)
	ctx := t.Context()
	capped := massOpenID(0)
	for i := range wechattest.MassMonthlyPerUser {
		res, err := b.client.MassSend(ctx, b.ts, []string{capped, massOpenID(100 + i)}, text("月报", fmt.Sprintf("m:%d", i)))
		require.NoError(t, err)
		j := job(t, b.finish(t), res.MsgID)
		require.Len(t, j.Delivered, 2)
		requirePushMatches(t, b.push(t), j)
	}
	fresh := massOpenID(200)
	res, err := b.client.MassSend(ctx, b.ts, []string{capped, fresh}, text("月报", "m:5"))
	require.NoError(t, err)
	j := job(t, b.finish(t), res.MsgID)
	require.Equal(t, []string{fresh}, j.Delivered)
	require.Equal(t, []string{capped}, j.Filtered)
	e := b.push(t)
	requirePushMatches(t, e, j)
	require.EqualValues(t, 2, e.Mass.TotalCount)
	require.EqualValues(t, 1, e.Mass.FilterCount)
	require.EqualValues(t, 1, e.Mass.SentCount)
	require.Equal(t, callback.MassSent, e.Mass.Result)

	// 2027-01-01 00:00 in Asia/Shanghai is 2026-12-31 16:00 UTC.
	b.clk.Set(time.Date(2026, 12, 31, 16, 0, 1, 0, time.UTC))
	res, err = b.client.MassSend(ctx, b.ts, []string{capped, fresh}, text("月报", "m:6"))
	require.NoError(t, err)
	require.ElementsMatch(t, []string{capped, fresh}, job(t, b.finish(t), res.MsgID).Delivered)
}

// TestMassSubscriptionAccount: a subscription account may not send by
// openid list (48001), and each user gets one mass message a day.
func TestMassSubscriptionAccount(t *testing.T) {
	t.Parallel()
	members := []string{massOpenID(1), massOpenID(2), massOpenID(3)}
	b := massSetup(t, wechattest.Config{
		Tags: map[int64][]string{7: members},
		Mass: wechattest.MassConfig{AccountTypes: map[string]string{wechattest.AppIDDefault: wechattest.AccountSubscription}},
	}, callback.ModePlain)
	ctx := t.Context()
	_, err := b.client.MassSend(ctx, b.ts, members, text("x", "s:0"))
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 48001, ae.Code)

	first, err := b.client.MassSendAll(ctx, b.ts, wechat.MassFilter{TagID: 7}, text("日报", "s:1"))
	require.NoError(t, err)
	second, err := b.client.MassSendAll(ctx, b.ts, wechat.MassFilter{TagID: 7}, text("日报二", "s:2"))
	require.NoError(t, err)
	jobs := b.finish(t)
	require.ElementsMatch(t, members, job(t, jobs, first.MsgID).Delivered)
	j2 := job(t, jobs, second.MsgID)
	require.Empty(t, j2.Delivered)
	require.ElementsMatch(t, members, j2.Filtered)
	for id, e := range b.pushesByID(t, 2) {
		requirePushMatches(t, e, job(t, jobs, id))
	}
	// The next day (Asia/Shanghai) they get one again.
	b.clk.Advance(24 * time.Hour)
	third, err := b.client.MassSendAll(ctx, b.ts, wechat.MassFilter{TagID: 7}, text("日报三", "s:3"))
	require.NoError(t, err)
	require.ElementsMatch(t, members, job(t, b.finish(t), third.MsgID).Delivered)
}

// TestMassAdminConfirmation: with mass-send protection a send to all waits
// (SENDING, nobody gets it, speed/set answers 89504) until confirmed; an
// unconfirmed one fails after 30 minutes and its push says "send fail".
func TestMassAdminConfirmation(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{
		Followers: 5,
		Mass:      wechattest.MassConfig{Protected: []string{wechattest.AppIDDefault}},
	}, callback.ModeSafe)
	ctx := t.Context()
	res, err := b.client.MassSendAll(ctx, b.ts, wechat.MassFilter{IsToAll: true}, text("全员通知", "a:1"))
	require.NoError(t, err)
	st, err := b.client.MassGet(ctx, b.ts, res.MsgID)
	require.NoError(t, err)
	require.Equal(t, wechat.MassStatusSending, st)
	err = b.client.MassSpeedSet(ctx, b.ts, 2)
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 89504, ae.Code)
	b.clk.Advance(10 * time.Minute)
	require.Empty(t, job(t, b.fake.MassJobs(), res.MsgID).Delivered, "nothing is sent before the admin confirms")

	require.NoError(t, b.fake.ConfirmMass(res.MsgID, true))
	jobs := b.finish(t)
	j := job(t, jobs, res.MsgID)
	require.Equal(t, wechattest.MassSuccess, j.Status)
	require.ElementsMatch(t, b.fake.FollowerOpenIDs(), j.Delivered)
	requirePushMatches(t, b.push(t), j)

	late, err := b.client.MassSendAll(ctx, b.ts, wechat.MassFilter{IsToAll: true}, text("第二次", "a:2"))
	require.NoError(t, err)
	b.clk.Advance(wechattest.MassConfirmTimeout - time.Second)
	require.Equal(t, wechattest.MassWaiting, job(t, b.fake.MassJobs(), late.MsgID).Status)
	b.clk.Advance(time.Second)
	st, err = b.client.MassGet(ctx, b.ts, late.MsgID)
	require.NoError(t, err)
	require.Equal(t, wechat.MassStatusFail, st)
	e := b.push(t)
	j = job(t, b.fake.MassJobs(), late.MsgID)
	requirePushMatches(t, e, j)
	require.Equal(t, "send fail", e.Status)
	require.Equal(t, callback.MassFailed, e.Mass.Result)
	require.Empty(t, j.Delivered)
	require.Error(t, b.fake.ConfirmMass(late.MsgID, true), "too late to confirm")
}

// TestMassGetDeleteSpeed: mass/get answers SENDING, then SEND_SUCCESS,
// then DELETE after mass/delete; unknown msg_ids answer 40059; speed/set
// keeps 0-4 and answers 45083 outside.
func TestMassGetDeleteSpeed(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, "")
	ctx := t.Context()
	res, err := b.client.MassSend(ctx, b.ts, []string{massOpenID(1), massOpenID(2)}, text("x", "g:1"))
	require.NoError(t, err)
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{{0, wechat.MassStatusSending}, {wechattest.MassSendingDefault, wechat.MassStatusSuccess}} {
		b.clk.Advance(step.advance)
		st, err := b.client.MassGet(ctx, b.ts, res.MsgID)
		require.NoError(t, err)
		require.Equal(t, step.want, st)
	}
	require.NoError(t, b.client.MassDelete(ctx, b.ts, res.MsgID, 0))
	st, err := b.client.MassGet(ctx, b.ts, res.MsgID)
	require.NoError(t, err)
	require.Equal(t, wechat.MassStatusDelete, st)
	var ae *wechat.APIError
	_, err = b.client.MassGet(ctx, b.ts, res.MsgID+1000)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 40059, ae.Code)
	require.ErrorAs(t, b.client.MassDelete(ctx, b.ts, res.MsgID+1000, 1), &ae)
	require.Equal(t, 40059, ae.Code)

	sp, err := b.client.MassSpeedGet(ctx, b.ts)
	require.NoError(t, err)
	require.Equal(t, wechat.MassSpeed{Speed: 0, RealSpeed: 80}, sp)
	require.NoError(t, b.client.MassSpeedSet(ctx, b.ts, 3))
	sp, err = b.client.MassSpeedGet(ctx, b.ts)
	require.NoError(t, err)
	require.Equal(t, wechat.MassSpeed{Speed: 3, RealSpeed: 30}, sp)
	require.ErrorAs(t, b.client.MassSpeedSet(ctx, b.ts, 5), &ae)
	require.Equal(t, 45083, ae.Code)
}

// TestMassMedia: uploaded media are usable by their kind until temporary
// ones expire after 3 days (40007); a permanent image thumbnails a draft
// whose media_id an mpnews sends; files too large or of the wrong type are
// refused by the client before any call.
func TestMassMedia(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, "")
	ctx := t.Context()
	users := []string{massOpenID(1), massOpenID(2)}

	img, err := b.client.UploadMedia(ctx, b.ts, wechat.MediaImage, "poster.jpg", []byte("jpeg bytes"))
	require.NoError(t, err)
	require.Equal(t, wechat.MediaImage, img.Type)
	require.Equal(t, massStart.Unix(), img.CreatedAt)
	images := &wechat.MassMessage{MsgType: wechat.MassTypeImage, Images: &wechat.MassImages{MediaIDs: []string{img.MediaID}, Recommend: "看图", NeedOpenComment: 1}, ClientMsgID: "i:1"}
	_, err = b.client.MassSend(ctx, b.ts, users, images)
	require.NoError(t, err)
	voice := &wechat.MassMessage{MsgType: wechat.MassTypeVoice, Voice: &wechat.Media{MediaID: img.MediaID}, ClientMsgID: "v:1"}
	_, err = b.client.MassSend(ctx, b.ts, users, voice)
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae, "an image is not a voice")
	require.Equal(t, 40007, ae.Code)

	b.clk.Advance(wechattest.MediaExpiry)
	images.ClientMsgID = "i:2"
	_, err = b.client.MassSend(ctx, b.ts, users, images)
	require.ErrorAs(t, err, &ae, "expired after 3 days")
	require.Equal(t, 40007, ae.Code)

	thumb, err := b.client.AddMaterial(ctx, b.ts, wechat.MediaImage, "cover.png", []byte("png bytes"), nil)
	require.NoError(t, err)
	require.NotEmpty(t, thumb.URL)
	url, err := b.client.UploadImg(ctx, b.ts, "inline.jpg", []byte("jpeg"))
	require.NoError(t, err)
	require.NotEmpty(t, url)
	draft, err := b.client.AddDraft(ctx, b.ts, []wechat.DraftArticle{{Title: "周刊", Content: `<p><img src="` + url + `"></p>`, ThumbMediaID: thumb.MediaID}})
	require.NoError(t, err)
	b.clk.Advance(30 * 24 * time.Hour)
	res, err := b.client.MassSend(ctx, b.ts, users, &wechat.MassMessage{MsgType: wechat.MassTypeMPNews, MPNews: &wechat.Media{MediaID: draft}, ClientMsgID: "n:1"})
	require.NoError(t, err, "drafts and permanent material do not expire")
	require.NotZero(t, res.MsgDataID, "mpnews answers msg_data_id")
	_, err = b.client.AddDraft(ctx, b.ts, []wechat.DraftArticle{{Title: "t", Content: "c", ThumbMediaID: img.MediaID}})
	require.ErrorAs(t, err, &ae, "an expired temporary image is no thumbnail")
	require.Equal(t, 40007, ae.Code)

	before := b.fake.MassCalls()
	for _, c := range []struct {
		kind, name string
		size       int
		want       string
	}{
		{wechat.MediaImage, "big.jpg", 10<<20 + 1, "over the 10485760-byte limit"},
		{wechat.MediaThumb, "thumb.jpg", 64<<10 + 1, "over the 65536-byte limit"},
		{wechat.MediaVoice, "talk.wav", 10, `type "wav"`},
		{wechat.MediaVideo, "clip.avi", 10, `type "avi"`},
	} {
		_, err := b.client.UploadMedia(ctx, b.ts, c.kind, c.name, make([]byte, c.size))
		var le *wechat.MediaLimitError
		require.ErrorAs(t, err, &le, c.name)
		require.ErrorContains(t, err, c.name)
		require.ErrorContains(t, err, c.want)
	}
	_, err = b.client.UploadImg(ctx, b.ts, "inline.gif", []byte("gif"))
	require.ErrorContains(t, err, `type "gif"`)
	require.Equal(t, before, b.fake.MassCalls(), "the fake saw no call")
}

// TestMassPreview: previews go to an openid or a WeChat ID, 100 a day by
// WeChat ID (45009 after), and make no job.
func TestMassPreview(t *testing.T) {
	t.Parallel()
	b := massSetup(t, wechattest.Config{}, "")
	ctx := t.Context()
	require.NoError(t, b.client.MassPreview(ctx, b.ts, massOpenID(1), "", text("预览", "")))
	for range wechattest.PreviewByNameDaily {
		b.clk.Advance(time.Second) // stay under 60 calls a minute
		require.NoError(t, b.client.MassPreview(ctx, b.ts, "", "editor_wx", text("预览", "")))
	}
	b.clk.Advance(time.Second)
	err := b.client.MassPreview(ctx, b.ts, "", "editor_wx", text("预览", ""))
	require.ErrorIs(t, err, wechat.ErrDailyQuota)
	require.Error(t, b.client.MassPreview(ctx, b.ts, "", "", text("预览", "")), "one of touser and towxname")
	pv := b.fake.MassPreviews()
	require.Len(t, pv, 1+wechattest.PreviewByNameDaily)
	require.Equal(t, massOpenID(1), pv[0].ToUser)
	require.Equal(t, "editor_wx", pv[1].ToWXName)
	require.Empty(t, b.fake.MassJobs())
}
