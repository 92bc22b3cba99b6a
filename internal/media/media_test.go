package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

const secondApp = "wx00000000000fake2"

// bundle is a fake WeChat and a Redis prefix that "processes" share.
type bundle struct {
	fake   *wechattest.Server
	prefix string
	now    func() time.Time
	cfg    media.CacheConfig
}

func setup(t *testing.T, clk *wechattest.ManualClock) *bundle {
	t.Helper()
	cfg := wechattest.Config{Accounts: []wechattest.Account{
		{AppID: wechattest.AppIDDefault, Secret: wechattest.SecretDefault},
		{AppID: secondApp, Secret: wechattest.SecretDefault},
	}}
	b := &bundle{now: time.Now}
	if clk != nil {
		cfg.NowFunc, b.now = clk.Now, clk.Now
	}
	b.fake = wechattest.Start(t, cfg)
	c := redistest.Client(t, redistest.DBDefault)
	b.prefix = redistest.Prefix(t, c)
	return b
}

// proc is one process: its own Redis client, store, WeChat client, token
// caches and media cache.
type proc struct {
	store *media.Store
	cache *media.Cache
	wc    *wechat.Client
	accts map[string]*account.Account
	rc    *redis.Client
}

func (b *bundle) process(t *testing.T) *proc {
	t.Helper()
	rc := redistest.Client(t, redistest.DBDefault)
	r := rdb.New(rc, b.prefix)
	wc := wechat.New(wechat.WithBaseURLs(b.fake.URL()), wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(16)}))
	t.Cleanup(wc.CloseIdleConnections)
	p := &proc{store: media.NewStore(r), wc: wc, accts: map[string]*account.Account{}, rc: rc}
	for _, appID := range []string{wechattest.AppIDDefault, secondApp} {
		tokens, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{AppID: appID, Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
			return wc.StableToken(ctx, appID, secret.New(wechattest.SecretDefault), false)
		}})
		require.NoError(t, err)
		p.accts[appID] = &account.Account{AppID: appID, Tokens: tokens, Default: ratelimit.Limit{Rate: 100, Burst: 10}}
	}
	cfg := b.cfg
	cfg.NowFunc = b.now
	p.cache = media.NewCache(p.store, wc, cfg)
	return p
}

// png returns n bytes that make a distinct file per seed.
func png(seed string, n int) []byte {
	return bytes.Repeat([]byte(seed), n/len(seed)+1)[:n]
}

func storeFile(t *testing.T, p *proc, name, mediaType string, data []byte) media.File {
	t.Helper()
	f, created, err := p.store.Put(t.Context(), name, mediaType, data)
	require.NoError(t, err)
	require.True(t, created)
	return f
}

func imageFile(f media.File, purpose campaigns.MediaPurpose) campaigns.MediaFile {
	return campaigns.MediaFile{Field: "custom.image.file", File: f.ID, Type: wechat.MediaImage, Purpose: purpose}
}

// TestResolveOnceAcrossProcesses: three processes, sharing only Redis and
// WeChat, resolve the same file for the same account at once: one upload,
// one media_id for all. Another account gets its own upload; permanent
// material is another upload again, once.
func TestResolveOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	procs := []*proc{b.process(t), b.process(t), b.process(t)}
	f := storeFile(t, procs[0], "cat.png", wechat.MediaImage, png("cat", 3000))

	resolveAll := func(appID string, purpose campaigns.MediaPurpose) []string {
		start := make(chan struct{})
		ids := make([]string, len(procs))
		errs := make([]error, len(procs))
		var wg sync.WaitGroup
		for i, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ids[i], _, errs[i] = p.cache.Resolve(t.Context(), p.accts[appID], imageFile(f, purpose))
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		return ids
	}
	ids := resolveAll(wechattest.AppIDDefault, campaigns.MediaTemporary)
	require.NotEmpty(t, ids[0])
	require.Equal(t, []string{ids[0], ids[0], ids[0]}, ids, "every process got the one upload's media_id")
	require.Equal(t, int64(1), b.fake.MassCalls()["media/upload"], "one upload across 3 processes")

	other := resolveAll(secondApp, campaigns.MediaTemporary)
	require.Equal(t, []string{other[0], other[0], other[0]}, other)
	require.NotEqual(t, ids[0], other[0], "another account has its own media_id")
	require.Equal(t, int64(2), b.fake.MassCalls()["media/upload"], "the second account uploaded once")

	perm := resolveAll(wechattest.AppIDDefault, campaigns.MediaPermanent)
	require.Equal(t, []string{perm[0], perm[0], perm[0]}, perm)
	require.Equal(t, int64(1), b.fake.MassCalls()["material/add_material"], "permanent material is its own upload, once")
	require.Equal(t, int64(2), b.fake.MassCalls()["media/upload"])

	// Again, cached: no more calls.
	again := resolveAll(wechattest.AppIDDefault, campaigns.MediaTemporary)
	require.Equal(t, ids, again)
	require.Equal(t, int64(2), b.fake.MassCalls()["media/upload"])
}

// TestReuploadAfterExpiry: temporary media lives 3 days at WeChat. Over 80
// hours of the fake's clock, an image is resolved and sent every hour to a
// new user: every send is accepted (never 40007), because the cache
// uploaded it again when less than the margin (1 h) was left, once.
func TestReuploadAfterExpiry(t *testing.T) {
	t.Parallel()
	clk := wechattest.NewManualClock(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	b := setup(t, clk)
	p := b.process(t)
	acct := p.accts[wechattest.AppIDDefault]
	f := imageFile(storeFile(t, p, "dog.jpg", wechat.MediaImage, png("dog", 2000)), campaigns.MediaTemporary)

	var first, last string
	for h := 0; h <= 80; h++ {
		id, until, err := p.cache.Resolve(t.Context(), acct, f)
		require.NoError(t, err)
		require.True(t, clk.Now().Before(until), "hour %d: the media_id is usable until %s", h, until)
		if first == "" {
			first = id
		}
		last = id
		openid := fmt.Sprintf("oMEDIA%022d", h)
		err = p.wc.SendCustom(t.Context(), acct.Tokens, &wechat.CustomMessage{ToUser: openid, MsgType: wechat.MsgTypeImage, Image: &wechat.Media{MediaID: id}})
		require.NoError(t, err, "hour %d: a send with the cached media_id", h)
		clk.Advance(time.Hour)
	}
	require.NotEqual(t, first, last, "uploaded again before the first expired")
	require.Equal(t, int64(2), b.fake.MassCalls()["media/upload"], "one upload, then one before its expiry")
	sent := 0
	for _, d := range b.fake.Deliveries() {
		if d.MsgType == wechat.MsgTypeImage {
			require.Contains(t, []string{first, last}, d.MediaID)
			sent++
		}
	}
	require.Equal(t, 81, sent)
}

// TestReuploadAfter40007: WeChat drops the media early (40007 to a send);
// Invalidate drops the cache entry and the next Resolve uploads again.
func TestReuploadAfter40007(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := b.process(t)
	acct := p.accts[wechattest.AppIDDefault]
	f := imageFile(storeFile(t, p, "bird.gif", wechat.MediaImage, png("bird", 1500)), campaigns.MediaTemporary)
	id, _, err := p.cache.Resolve(t.Context(), acct, f)
	require.NoError(t, err)
	require.Equal(t, 1, b.fake.ExpireMedia(id))
	msg := func(id string) *wechat.CustomMessage {
		return &wechat.CustomMessage{ToUser: "oMEDIA0000000000000000040007", MsgType: wechat.MsgTypeImage, Image: &wechat.Media{MediaID: id}}
	}
	err = p.wc.SendCustom(t.Context(), acct.Tokens, msg(id))
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 40007, ae.Code)

	same, _, err := p.cache.Resolve(t.Context(), acct, f)
	require.NoError(t, err)
	require.Equal(t, id, same, "cached until invalidated")
	require.NoError(t, p.cache.Invalidate(t.Context(), acct.AppID, id))
	fresh, _, err := p.cache.Resolve(t.Context(), acct, f)
	require.NoError(t, err)
	require.NotEqual(t, id, fresh)
	require.Equal(t, int64(2), b.fake.MassCalls()["media/upload"])
	require.NoError(t, p.wc.SendCustom(t.Context(), acct.Tokens, msg(fresh)))
	// Invalidating an id no longer cached changes nothing.
	require.NoError(t, p.cache.Invalidate(t.Context(), acct.AppID, id))
	again, _, err := p.cache.Resolve(t.Context(), acct, f)
	require.NoError(t, err)
	require.Equal(t, fresh, again)
}

// TestLockHolderDies: a process took the upload lock and died without
// releasing it. Another waits for the lock's TTL to pass, then uploads.
func TestLockHolderDies(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.cfg = media.CacheConfig{LockTTL: 600 * time.Millisecond, PollMax: 50 * time.Millisecond}
	p := b.process(t)
	acct := p.accts[wechattest.AppIDDefault]
	mf := storeFile(t, p, "fish.png", wechat.MediaImage, png("fish", 999))
	hexID := strings.TrimPrefix(mf.ID, campaigns.FileIDPrefix)
	// The dead process's lock.
	dead := rdb.New(p.rc, b.prefix)
	got, err := dead.AcquireMediaLock(t.Context(), acct.AppID, string(campaigns.MediaTemporary), hexID, "dead-process", b.cfg.LockTTL)
	require.NoError(t, err)
	require.True(t, got)

	start := time.Now()
	id, _, err := p.cache.Resolve(t.Context(), acct, imageFile(mf, campaigns.MediaTemporary))
	require.NoError(t, err)
	require.NotEmpty(t, id)
	require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "it waited for the dead holder's lock to lapse")
	require.Equal(t, int64(1), b.fake.MassCalls()["media/upload"])

	// A waiter is bounded by its context.
	mf2 := storeFile(t, p, "fish2.png", wechat.MediaImage, png("fish2", 999))
	_, err = dead.AcquireMediaLock(t.Context(), acct.AppID, string(campaigns.MediaTemporary), strings.TrimPrefix(mf2.ID, campaigns.FileIDPrefix), "dead-again", time.Minute)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, _, err = p.cache.Resolve(ctx, acct, imageFile(mf2, campaigns.MediaTemporary))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, int64(1), b.fake.MassCalls()["media/upload"])
}

// TestBadFileRefusedBeforeAnyCall: a file too large, of the wrong type,
// empty or without a type is refused with the field and the limit named,
// before it is stored and before any call to WeChat.
func TestBadFileRefusedBeforeAnyCall(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := b.process(t)
	cases := []struct {
		name, file, mediaType string
		size                  int
		field, want           string
	}{
		{"voice too large", "voice.wav", wechat.MediaVoice, 3250586, "file", "voice.wav is 3.1 MB, voice files are at most 2 MB (temporary media)"},
		{"image too large", "big.png", wechat.MediaImage, 10<<20 + 1, "file", "big.png is 10 MB, image files are at most 10 MB (temporary media)"},
		{"thumb too large", "t.jpg", wechat.MediaThumb, 65 << 10, "file", "t.jpg is 65 KB, thumb files are at most 64 KB"},
		{"wrong extension", "song.ogg", wechat.MediaVoice, 100, "file", `song.ogg: voice files are amr, mp3, not "ogg" (temporary media take only those; permanent material also wma, wav)`},
		{"video not mp4", "clip.mov", wechat.MediaVideo, 100, "file", `clip.mov: video files are mp4, not "mov"`},
		{"empty", "empty.png", wechat.MediaImage, 0, "file", "empty.png is empty"},
		{"no name", "", wechat.MediaImage, 10, "file", "the file has no name"},
		{"unknown type", "a.png", "picture", 10, "type", `"picture" is not one of image, voice, video, thumb`},
		{"no type", "a.png", "", 10, "type", "required: one of image, voice, video, thumb"},
	}
	for _, c := range cases {
		_, _, err := p.store.Put(t.Context(), c.file, c.mediaType, make([]byte, c.size))
		var le *media.LimitError
		require.ErrorAs(t, err, &le, c.name)
		require.Equal(t, c.field, le.Field, c.name)
		require.Contains(t, le.Error(), c.want, c.name)
	}
	files, total, err := p.store.List(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Zero(t, total, "nothing was stored")
	require.Empty(t, files)
	// The wechat client refuses them too, before any call.
	acct := p.accts[wechattest.AppIDDefault]
	_, err = p.wc.UploadMedia(t.Context(), acct.Tokens, wechat.MediaVoice, "voice.wav", make([]byte, 100))
	var mle *wechat.MediaLimitError
	require.True(t, errors.As(err, &mle))
	// A file id that names no stored file fails to resolve, without a call.
	_, _, err = p.cache.Resolve(t.Context(), acct, campaigns.MediaFile{Field: "custom.image.file", File: campaigns.FileIDPrefix + strings.Repeat("0", 64), Type: wechat.MediaImage, Purpose: campaigns.MediaTemporary})
	require.ErrorIs(t, err, media.ErrNotFound)
	require.Empty(t, b.fake.MassCalls(), "no call reached WeChat")
}

// TestStorePutSameBytes: the same bytes are stored once, under one id;
// Get and List show them.
func TestStorePutSameBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := b.process(t)
	data := png("same", 500)
	f, created, err := p.store.Put(t.Context(), "a.png", wechat.MediaImage, data)
	require.NoError(t, err)
	require.True(t, created)
	require.True(t, campaigns.ValidFileID(f.ID))
	g, created, err := p.store.Put(t.Context(), "b.png", wechat.MediaImage, data)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, f.ID, g.ID)
	require.Equal(t, "a.png", g.Name, "the first name is kept")
	got, err := p.store.Get(t.Context(), f.ID)
	require.NoError(t, err)
	require.Equal(t, int64(500), got.Size)
	all, total, err := p.store.List(t.Context(), 0, 10)
	require.NoError(t, err)
	require.Equal(t, int64(1), total)
	require.Len(t, all, 1)
	_, err = p.store.Get(t.Context(), campaigns.FileIDPrefix+strings.Repeat("a", 64))
	require.ErrorIs(t, err, media.ErrNotFound)
}

// TestResolveDraft: an mpnews made of articles becomes a draft: the cover
// added as permanent image material, then draft/add, once; the draft's
// media_id is cached.
func TestResolveDraft(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := b.process(t)
	acct := p.accts[wechattest.AppIDDefault]
	cover := storeFile(t, p, "cover.jpg", wechat.MediaImage, png("cover", 800))
	c := &campaigns.Campaign{Name: "spring news", Account: "a", Kind: campaigns.KindMass, Mass: &campaigns.MassSpec{MsgType: "mpnews",
		MPNews: &campaigns.MassNewsSpec{Articles: []campaigns.ArticleSpec{{Title: "Spring", Content: "<p>hello</p>", CoverFile: cover.ID}}}}}
	msg, err := c.Compile()
	require.NoError(t, err)
	files := msg.MediaFiles()
	require.Len(t, files, 1)
	id, until, err := p.cache.Resolve(t.Context(), acct, files[0])
	require.NoError(t, err)
	require.True(t, until.IsZero(), "a draft does not expire")
	again, _, err := p.cache.Resolve(t.Context(), acct, files[0])
	require.NoError(t, err)
	require.Equal(t, id, again)
	calls := b.fake.MassCalls()
	require.Equal(t, int64(1), calls["material/add_material"])
	require.Equal(t, int64(1), calls["draft/add"])
	resolved, err := msg.WithMedia(map[string]string{files[0].Field: id})
	require.NoError(t, err)
	m, err := resolved.RenderMass("cmid")
	require.NoError(t, err)
	require.Equal(t, id, m.MPNews.MediaID)
}
