package wechattest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The mass-send and media APIs the fake serves (wechat-api.md §5.1). They
// are served apart from the template/custom/subscribe send pipeline: they
// are not in Stats().APIs, Deliveries() or the faults; MassJobs, MassCalls
// and /fake/mass-jobs report them.
const (
	nameMassSend     = "message/mass/send"
	nameMassSendAll  = "message/mass/sendall"
	nameMassPreview  = "message/mass/preview"
	nameMassGet      = "message/mass/get"
	nameMassDelete   = "message/mass/delete"
	nameMassSpeedGet = "message/mass/speed/get"
	nameMassSpeedSet = "message/mass/speed/set"
	nameMediaUpload  = "media/upload"
	nameMaterialAdd  = "material/add_material"
	nameDraftAdd     = "draft/add"
	nameUploadImg    = "media/uploadimg"
)

// massAPIs are the APIs under the per-minute mass limit; mediaAPIs are not.
var (
	massAPIs  = []string{nameMassSend, nameMassSendAll, nameMassPreview, nameMassGet, nameMassDelete, nameMassSpeedGet, nameMassSpeedSet}
	mediaAPIs = []string{nameMediaUpload, nameMaterialAdd, nameDraftAdd, nameUploadImg}
)

// Mass facts not in MassConfig.
const (
	// MassOpenIDsMin and MassOpenIDsMax bound the touser list of mass/send
	// (40130 below, 45019 above; §5.2).
	MassOpenIDsMin = 2
	MassOpenIDsMax = 10000
	// MassDailyCalls is the daily number of accepted mass/send and sendall
	// jobs per account ("高级群发接口 100/day", D-LIMITS); further ones answer
	// 45028 until midnight of Config.QuotaLocation.
	MassDailyCalls = 100
	// massIDBase is the first msg_id; WeChat's are about ten digits.
	massIDBase = 1_000_000_000
	// mediaUploadMax bounds a multipart body the fake reads.
	mediaUploadMax = 12 << 20
)

// Statuses of mass/get and MassJob.Status (§5.5).
const (
	MassSending = "SENDING"
	MassSuccess = "SEND_SUCCESS"
	MassFail    = "SEND_FAIL"
	MassDeleted = "DELETE"
	// MassWaiting is the fake's own Status of a send to all that waits for
	// the admin's confirmation; mass/get answers it as SENDING.
	MassWaiting = "WAITING_CONFIRMATION"
)

// MassJob is one accepted mass/send or mass/sendall job, as the fake
// recorded it. Delivered, Filtered and Errors list openids: the users who
// got it, those over their monthly (daily on a subscription account) quota
// and those who could not get it (Config.Terminal, RequireFollower).
type MassJob struct {
	MsgID       int64     `json:"msg_id"`
	MsgDataID   int64     `json:"msg_data_id,omitempty"`
	AppID       string    `json:"app_id"`
	API         string    `json:"api"`
	ClientMsgID string    `json:"clientmsgid,omitempty"`
	MsgType     string    `json:"msgtype"`
	ToAll       bool      `json:"to_all,omitempty"`
	TagID       int64     `json:"tag_id,omitempty"`
	Status      string    `json:"status"`
	PushStatus  string    `json:"push_status,omitempty"` // the MASSSENDJOBFINISH Status, once finished
	Total       int       `json:"total"`
	Delivered   []string  `json:"delivered"`
	Filtered    []string  `json:"filtered"`
	Errors      []string  `json:"errors"`
	Created     time.Time `json:"created"`
	Finished    time.Time `json:"finished,omitzero"`

	audience []string // resolved at submission
	review   int      // review errcode the content fails, or 0
	started  time.Time
}

// MassPreviewRecord is one accepted mass/preview.
type MassPreviewRecord struct {
	AppID    string    `json:"app_id"`
	ToUser   string    `json:"touser,omitempty"`
	ToWXName string    `json:"towxname,omitempty"`
	MsgType  string    `json:"msgtype"`
	Time     time.Time `json:"time"`
}

// massFinish is a MASSSENDJOBFINISH to push.
type massFinish struct {
	status                      string
	total, filter, sent, errors int
}

type mediaEntry struct {
	appID   string
	kind    string    // image, voice, video, thumb, draft
	expires time.Time // zero: permanent
	text    string    // a draft's titles and contents, for review markers
}

type cmidEntry struct {
	job      *MassJob
	at       time.Time
	lastCall time.Time
}

type countKey struct{ appID, openid string }

type periodCount struct {
	period string
	n      int
}

// take counts one more in period, starting the count afresh when the
// period changed, unless limit is reached; it reports whether it counted.
func (c *periodCount) take(period string, limit int) bool {
	if c.period != period {
		*c = periodCount{period: period}
	}
	if c.n >= limit {
		return false
	}
	c.n++
	return true
}

// massState is the mass and media APIs' state, under one lock: the APIs
// allow 60 calls a minute, so contention does not matter.
type massState struct {
	mu       sync.Mutex
	jobs     []*MassJob
	byID     map[int64]*MassJob
	cmids    map[string]*cmidEntry // appID + "\x00" + clientmsgid (or content digest)
	received map[countKey]periodCount
	minute   map[string][]time.Time // appID -> accepted mass calls in the last minute
	daily    map[string]periodCount // appID -> accepted jobs today
	byName   map[string]periodCount // appID -> previews by WeChat ID today
	previews []MassPreviewRecord
	media    map[string]*mediaEntry
	speeds   map[string]int
	calls    map[string]int64
	drop     map[string]int
	seq      int64
	mediaSeq int64
}

// massTickAfter finishes the jobs whose time has come d from now, when
// pushes are on, so that their MASSSENDJOBFINISH pushes come on time even
// if nobody calls the fake. (A fake on a manual clock finishes them when
// it is next called.)
func (s *Server) massTickAfter(d time.Duration) {
	if s.pusher == nil || s.pusher.isStopped() {
		return
	}
	time.AfterFunc(d+time.Millisecond, func() { s.massTick(s.set.now()) })
}

func newMassState() *massState {
	return &massState{
		byID:     make(map[int64]*MassJob),
		cmids:    make(map[string]*cmidEntry),
		received: make(map[countKey]periodCount),
		minute:   make(map[string][]time.Time),
		daily:    make(map[string]periodCount),
		byName:   make(map[string]periodCount),
		media:    make(map[string]*mediaEntry),
		speeds:   make(map[string]int),
		calls:    make(map[string]int64),
		drop:     make(map[string]int),
	}
}

// isMassPath reports whether path is one of the mass or media APIs and
// returns its name.
func isMassPath(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, cgiPrefix)
	if !ok {
		return "", false
	}
	if slices.Contains(massAPIs, name) || slices.Contains(mediaAPIs, name) {
		return name, true
	}
	return "", false
}

// massErrmsg is WeChat's errmsg of the mass and media errcodes (§5, §8;
// the media ones from WeChat's global errcode page, UNCONFIRMED wording).
func massErrmsg(code int) string {
	switch code {
	case 40004:
		return "invalid media type"
	case 40005:
		return "invalid file type"
	case 40007:
		return "invalid media_id"
	case 40008:
		return "invalid message type"
	case 40009:
		return "invalid image size"
	case 40010:
		return "invalid voice size"
	case 40011:
		return "invalid video size"
	case 40012:
		return "invalid thumb size"
	case 40059:
		return "invalid msg id"
	case 40130:
		return "invalid openid list size, at least two openid"
	case 41005:
		return "media data missing"
	case 44004:
		return "empty content"
	case 45019:
		return "too many openid, please input less"
	case 45028:
		return "has no masssend quota"
	case 45065:
		return "clientmsgid exist"
	case 45066:
		return "same clientmsgid retry too fast"
	case 45083:
		return "the speed out of range"
	case 45084:
		return "No speed message"
	case 89504:
		return "waiting for the admin's confirmation"
	}
	return errmsg(code)
}

// DropNextMass makes the next n calls of the mass or media API name (such
// as "message/mass/send") be handled in full and then answered by closing
// the connection, as when the network fails after WeChat accepted a job.
func (s *Server) DropNextMass(name string, n int) {
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	s.mass.drop[name] += n
}

// ExpireMedia makes the media items ids (from media/upload,
// material/add_material or draft/add) expire now, by the fake's clock, as
// WeChat drops temporary media after 3 days: a message naming one is then
// answered 40007. It returns how many of ids it knew.
func (s *Server) ExpireMedia(ids ...string) int {
	now := s.set.now()
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	n := 0
	for _, id := range ids {
		if e := s.mass.media[id]; e != nil {
			e.expires = now
			n++
		}
	}
	return n
}

// MassCalls returns how many calls each mass or media API got, refused ones
// included, by API name.
func (s *Server) MassCalls() map[string]int64 {
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	out := make(map[string]int64, len(s.mass.calls))
	for k, v := range s.mass.calls {
		out[k] = v
	}
	return out
}

// MassJobs returns a copy of every mass job in submission order, after
// finishing the jobs whose time has come by the fake's clock (which queues
// their MASSSENDJOBFINISH pushes).
func (s *Server) MassJobs() []MassJob {
	s.massTick(s.set.now())
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	out := make([]MassJob, len(s.mass.jobs))
	for i, j := range s.mass.jobs {
		out[i] = *j
		out[i].Delivered = slices.Clone(j.Delivered)
		out[i].Filtered = slices.Clone(j.Filtered)
		out[i].Errors = slices.Clone(j.Errors)
		out[i].audience = nil
	}
	return out
}

// MassPreviews returns a copy of every accepted preview.
func (s *Server) MassPreviews() []MassPreviewRecord {
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	return slices.Clone(s.mass.previews)
}

// ConfirmMass confirms (ok) or rejects a send to all that waits for the
// admin's confirmation, as the admin does in the WeChat app. A confirmed
// job starts sending; a rejected one fails at once and its push says "send
// fail". It returns an error when msgID is not a waiting job.
func (s *Server) ConfirmMass(msgID int64, ok bool) error {
	now := s.set.now()
	s.massTick(now)
	m := s.mass
	m.mu.Lock()
	j := m.byID[msgID]
	if j == nil || j.Status != MassWaiting {
		m.mu.Unlock()
		return fmt.Errorf("wechattest: mass job %d is not waiting for confirmation", msgID)
	}
	var push *massFinish
	if ok {
		s.startJob(j, now)
	} else {
		push = s.failJob(j, now)
	}
	m.mu.Unlock()
	s.pushMass(j.AppID, msgID, push)
	return nil
}

// massTick finishes the jobs whose time has come: sending jobs after
// MassConfig.Sending, waiting ones after the confirmation timeout.
func (s *Server) massTick(now time.Time) {
	type due struct {
		appID string
		msgID int64
		f     *massFinish
	}
	var pushes []due
	m := s.mass
	m.mu.Lock()
	for _, j := range m.jobs {
		switch {
		case j.Status == MassSending && !now.Before(j.started.Add(s.set.mass.sending)):
			pushes = append(pushes, due{j.AppID, j.MsgID, s.finishJob(j, now)})
		case j.Status == MassWaiting && !now.Before(j.Created.Add(s.set.mass.confirmTimeout)):
			pushes = append(pushes, due{j.AppID, j.MsgID, s.failJob(j, now)})
		}
	}
	m.mu.Unlock()
	for _, p := range pushes {
		s.pushMass(p.appID, p.msgID, p.f)
	}
}

// startJob resolves who gets job j (caps, terminal users) and records the
// deliveries. Call with s.mass.mu held.
func (s *Server) startJob(j *MassJob, now time.Time) {
	j.Status, j.started = MassSending, now
	s.massTickAfter(s.set.mass.sending)
	if j.review != 0 {
		// Content review fails before anyone gets it.
		return
	}
	subscription := s.set.mass.types[j.AppID] == AccountSubscription
	period, limit := now.In(s.set.loc).Format("2006-01"), MassMonthlyPerUser
	if subscription {
		period, limit = now.In(s.set.loc).Format("2006-01-02"), MassDailyPerUserSubscription
	}
	for _, openid := range j.audience {
		if code := s.recipientCode(s.accounts[j.AppID], openid, 43004); code != 0 {
			j.Errors = append(j.Errors, openid)
			continue
		}
		k := countKey{j.AppID, openid}
		c := s.mass.received[k]
		if !c.take(period, limit) {
			j.Filtered = append(j.Filtered, openid)
			continue
		}
		s.mass.received[k] = c
		j.Delivered = append(j.Delivered, openid)
	}
	j.audience = nil
}

// finishJob ends a sending job. Call with s.mass.mu held.
func (s *Server) finishJob(j *MassJob, now time.Time) *massFinish {
	j.Finished = now
	if j.review != 0 {
		j.Status, j.PushStatus = MassFail, "err("+strconv.Itoa(j.review)+")"
	} else {
		j.Status, j.PushStatus = MassSuccess, "send success"
	}
	return j.finish()
}

// failJob fails a job that was not confirmed. Call with s.mass.mu held.
func (s *Server) failJob(j *MassJob, now time.Time) *massFinish {
	j.Status, j.PushStatus, j.Finished = MassFail, "send fail", now
	j.audience = nil
	return j.finish()
}

// finish is j's MASSSENDJOBFINISH counts: FilterCount is who was left
// after filtering, SentCount + ErrorCount of them (§5.6).
func (j *MassJob) finish() *massFinish {
	return &massFinish{
		status: j.PushStatus,
		total:  j.Total,
		filter: len(j.Delivered) + len(j.Errors),
		sent:   len(j.Delivered),
		errors: len(j.Errors),
	}
}

func (s *Server) pushMass(appID string, msgID int64, f *massFinish) {
	if f == nil || s.pusher == nil {
		return
	}
	s.pusher.enqueueMass(appID, msgID, f)
}

// massAnswer is one call's answer: an errcode (with msg and, for 45065,
// the existing msg_id) or the success body.
type massAnswer struct {
	code  int
	msgID int64
	body  []byte
}

// serveMass serves the mass and media APIs: method, token, the per-minute
// limit of the mass APIs, the API, then the drop hook.
func (s *Server) serveMass(w http.ResponseWriter, r *http.Request, name string) {
	now := s.set.now()
	s.massTick(now)
	m := s.mass
	m.mu.Lock()
	m.calls[name]++
	m.mu.Unlock()

	a := s.massCall(r, name, now)
	var body []byte
	if a.code != 0 {
		body = s.appendError(nil, a.code, massErrmsg(a.code), now)
		if a.msgID != 0 {
			body = append(body[:len(body)-1], `,"msg_id":`...)
			body = strconv.AppendInt(body, a.msgID, 10)
			body = append(body, '}')
		}
	} else {
		body = a.body
	}
	m.mu.Lock()
	drop := m.drop[name] > 0
	if drop {
		m.drop[name]--
	}
	m.mu.Unlock()
	if d := s.set.mass.latency; d > 0 && (name == nameMassSend || name == nameMassSendAll) {
		t := time.NewTimer(d)
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		t.Stop()
	}
	if drop {
		dropConnection(w)
		return
	}
	_ = writeBody(w, body) // An error means the client went away.
}

func (s *Server) massCall(r *http.Request, name string, now time.Time) massAnswer {
	if r.Method != http.MethodPost {
		return massAnswer{code: 43002}
	}
	acct, code := s.tokens.check(queryValue(r.URL.RawQuery, "access_token"), now)
	if code != 0 {
		return massAnswer{code: code}
	}
	switch name {
	case nameMediaUpload, nameMaterialAdd, nameUploadImg:
		return s.mediaUpload(r, name, acct.AppID, now)
	}
	body, err := readLimited(r, MaxBodyBytes)
	if err != nil {
		return massAnswer{code: 47001}
	}
	if name == nameDraftAdd {
		return s.draftAdd(body, acct.AppID, now)
	}
	if code := s.admitMassMinute(acct.AppID, now); code != 0 {
		return massAnswer{code: code}
	}
	switch name {
	case nameMassSend, nameMassSendAll:
		return s.massSend(body, name, acct.AppID, now)
	case nameMassPreview:
		return s.massPreview(body, acct.AppID, now)
	case nameMassGet:
		return s.massGet(body, acct.AppID)
	case nameMassDelete:
		return s.massDelete(body, acct.AppID)
	case nameMassSpeedGet:
		return s.massSpeedGet(acct.AppID)
	case nameMassSpeedSet:
		return s.massSpeedSet(body, acct.AppID)
	}
	return massAnswer{code: -1}
}

func readLimited(r *http.Request, n int64) ([]byte, error) {
	var b bytes.Buffer
	if _, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, n)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// admitMassMinute counts a call against the account's per-minute limit of
// the mass APIs. §5.4 gives the limit (60 a minute) but no errcode; the
// fake answers 45011, WeChat's per-minute errcode (§9.4), as its other
// limits do. Refused calls do not count.
func (s *Server) admitMassMinute(appID string, now time.Time) int {
	m := s.mass
	m.mu.Lock()
	defer m.mu.Unlock()
	calls := m.minute[appID]
	i := 0
	for i < len(calls) && !calls[i].After(now.Add(-time.Minute)) {
		i++
	}
	calls = calls[i:]
	if len(calls) >= s.set.mass.perMinute {
		m.minute[appID] = calls
		return 45011
	}
	m.minute[appID] = append(calls, now)
	return 0
}

// massRequest is the body of mass/send, sendall and preview (§5.2).
type massRequest struct {
	ToUser   json.RawMessage `json:"touser"`
	ToWXName string          `json:"towxname"`
	Filter   *struct {
		IsToAll bool   `json:"is_to_all"`
		TagID   *int64 `json:"tag_id"`
	} `json:"filter"`
	MsgType string `json:"msgtype"`
	MPNews  *struct {
		MediaID string `json:"media_id"`
	} `json:"mpnews"`
	Text *struct {
		Content string `json:"content"`
	} `json:"text"`
	Voice *struct {
		MediaID string `json:"media_id"`
	} `json:"voice"`
	MPVideo *struct {
		MediaID string `json:"media_id"`
	} `json:"mpvideo"`
	Images *struct {
		MediaIDs           []string `json:"media_ids"`
		Recommend          string   `json:"recommend"`
		NeedOpenComment    int      `json:"need_open_comment"`
		OnlyFansCanComment int      `json:"only_fans_can_comment"`
	} `json:"images"`
	WXCard *struct {
		CardID string `json:"card_id"`
	} `json:"wxcard"`
	SendIgnoreReprint int    `json:"send_ignore_reprint"`
	ClientMsgID       string `json:"clientmsgid"`
}

// parseMass checks the body and the message content: 44002/40033 (body),
// 47001 (JSON), 40008 (msgtype), 47001 (payload missing or a 0/1 flag out
// of range), 44004 (empty text), 40007 (a media_id unknown, of another
// account or kind, or expired), 45067 (clientmsgid over 64 bytes). It
// returns the content's text for the review markers.
func (s *Server) parseMass(body []byte, appID string, now time.Time) (*massRequest, string, int) {
	if code := checkBody(body); code != 0 {
		return nil, "", code
	}
	var q massRequest
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, "", 47001
	}
	if len(q.ClientMsgID) > clientMsgIDMax {
		return nil, "", 45067
	}
	if q.SendIgnoreReprint != 0 && q.SendIgnoreReprint != 1 {
		return nil, "", 47001
	}
	var text string
	media := func(id, kind string) int {
		if id == "" {
			return 47001
		}
		return s.checkMedia(appID, id, kind, now, &text)
	}
	switch q.MsgType {
	case "mpnews":
		if q.MPNews == nil {
			return nil, "", 47001
		}
		if code := media(q.MPNews.MediaID, "draft"); code != 0 {
			return nil, "", code
		}
	case "text":
		if q.Text == nil {
			return nil, "", 47001
		}
		if strings.TrimSpace(q.Text.Content) == "" {
			return nil, "", 44004
		}
		text = q.Text.Content
	case "voice":
		if q.Voice == nil {
			return nil, "", 47001
		}
		if code := media(q.Voice.MediaID, MediaKindVoice); code != 0 {
			return nil, "", code
		}
	case "mpvideo":
		if q.MPVideo == nil {
			return nil, "", 47001
		}
		if code := media(q.MPVideo.MediaID, MediaKindVideo); code != 0 {
			return nil, "", code
		}
	case "image":
		im := q.Images
		if im == nil || len(im.MediaIDs) == 0 {
			return nil, "", 47001
		}
		if im.NeedOpenComment&^1 != 0 || im.OnlyFansCanComment&^1 != 0 {
			return nil, "", 47001
		}
		for _, id := range im.MediaIDs {
			if code := media(id, MediaKindImage); code != 0 {
				return nil, "", code
			}
		}
		text = im.Recommend
	case "wxcard":
		if q.WXCard == nil || q.WXCard.CardID == "" {
			return nil, "", 47001
		}
	default:
		return nil, "", 40008
	}
	return &q, text, 0
}

// Media kinds of the fake's media store.
const (
	MediaKindImage = "image"
	MediaKindVoice = "voice"
	MediaKindVideo = "video"
	MediaKindThumb = "thumb"
	MediaKindDraft = "draft"
)

// checkMedia answers 40007 unless id is a live media item of appID of kind
// (or is in Config.MediaIDs). It appends a draft's text to text.
func (s *Server) checkMedia(appID, id, kind string, now time.Time, text *string) int {
	s.mass.mu.Lock()
	e := s.mass.media[id]
	s.mass.mu.Unlock()
	if e == nil {
		if s.mediaIDs != nil && s.mediaIDs[id] {
			return 0
		}
		return 40007
	}
	if e.appID != appID || e.kind != kind || (!e.expires.IsZero() && !now.Before(e.expires)) {
		return 40007
	}
	*text += e.text
	return 0
}

// reviewCode returns the review errcode of the first marker text holds.
func (s *Server) reviewCode(text string) int {
	markers := make([]string, 0, len(s.set.mass.review))
	for m := range s.set.mass.review {
		markers = append(markers, m)
	}
	slices.Sort(markers)
	for _, m := range markers {
		if strings.Contains(text, m) {
			return s.set.mass.review[m]
		}
	}
	return 0
}

// massSend serves mass/send and mass/sendall. After the content checks: the
// audience (40130 under 2 openids, 45019 over 10,000, 40003 a malformed
// openid; 48001 for mass/send on a subscription account, which may not use
// it; 45159 an unknown tag), the clientmsgid (see claimClientMsgID), the
// daily job quota (45028). A send to all on a protected account waits for
// ConfirmMass.
func (s *Server) massSend(body []byte, name, appID string, now time.Time) massAnswer {
	q, text, code := s.parseMass(body, appID, now)
	if code != 0 {
		return massAnswer{code: code}
	}
	j := &MassJob{AppID: appID, API: name, ClientMsgID: q.ClientMsgID, MsgType: q.MsgType, Created: now}
	if name == nameMassSend {
		if s.set.mass.types[appID] == AccountSubscription {
			return massAnswer{code: 48001}
		}
		var list []string
		if err := json.Unmarshal(q.ToUser, &list); err != nil {
			return massAnswer{code: 47001}
		}
		switch {
		case len(list) < MassOpenIDsMin:
			return massAnswer{code: 40130}
		case len(list) > MassOpenIDsMax:
			return massAnswer{code: 45019}
		}
		seen := make(map[string]bool, len(list))
		for _, o := range list {
			if !validOpenID(o) {
				return massAnswer{code: 40003}
			}
			// A repeated openid gets the message once.
			if !seen[o] {
				seen[o] = true
				j.audience = append(j.audience, o)
			}
		}
	} else {
		if q.Filter == nil {
			return massAnswer{code: 47001}
		}
		j.ToAll = q.Filter.IsToAll
		switch {
		case j.ToAll:
			v, done := s.followersOf(s.accounts[appID])
			j.audience = v.all()
			done()
		case q.Filter.TagID == nil:
			return massAnswer{code: 47001}
		default:
			j.TagID = *q.Filter.TagID
			tag := s.tags[j.TagID]
			if tag == nil {
				return massAnswer{code: 45159}
			}
			j.audience = slices.Clone(tag.members)
		}
	}
	j.Total = len(j.audience)
	j.review = s.reviewCode(text)

	key := q.ClientMsgID
	if key == "" {
		// Without a clientmsgid WeChat dedupes by a digest of the scope
		// and the content (§5.3).
		sum := sha256.Sum256(body)
		key = "digest:" + hex.EncodeToString(sum[:16])
	}
	key = appID + "\x00" + key

	m := s.mass
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.cmids[key]; ok && now.Sub(prev.at) < s.set.mass.dedupeWindow {
		// §5.3 documents 45065 (the job exists: its msg_id comes back) and
		// 45066 ("same clientmsgid retry too fast, retry after 1 minute")
		// without saying when 45066 applies. The fake's rule: a job that
		// stands (waiting, sending, sent or deleted) answers 45065 at any
		// time; a job that failed may be retried with the same clientmsgid,
		// but only MassRetryGap after its failure (or after the last
		// refused retry), else 45066.
		if prev.job.Status != MassFail {
			return massAnswer{code: 45065, msgID: prev.job.MsgID}
		}
		last := prev.job.Finished
		if prev.lastCall.After(last) {
			last = prev.lastCall
		}
		if now.Sub(last) < s.set.mass.retryGap {
			prev.lastCall = now
			return massAnswer{code: 45066}
		}
	}
	day := now.In(s.set.loc).Format("2006-01-02")
	d := m.daily[appID]
	if !d.take(day, MassDailyCalls) {
		return massAnswer{code: 45028}
	}
	m.daily[appID] = d

	m.seq++
	j.MsgID = massIDBase + m.seq
	if q.MsgType == "mpnews" {
		j.MsgDataID = 2*massIDBase + m.seq
	}
	m.jobs = append(m.jobs, j)
	m.byID[j.MsgID] = j
	m.cmids[key] = &cmidEntry{job: j, at: now}
	if j.ToAll && s.set.mass.protected[appID] {
		j.Status = MassWaiting
		s.massTickAfter(s.set.mass.confirmTimeout)
	} else {
		s.startJob(j, now)
	}
	out := []byte(`{"errcode":0,"errmsg":"send job submission success","msg_id":`)
	out = strconv.AppendInt(out, j.MsgID, 10)
	if j.MsgDataID != 0 {
		out = append(out, `,"msg_data_id":`...)
		out = strconv.AppendInt(out, j.MsgDataID, 10)
	}
	return massAnswer{body: append(out, '}')}
}

// massPreview serves mass/preview: to an openid (40003 when malformed) or a
// WeChat ID (PreviewByNameDaily a day per account, then 45009).
func (s *Server) massPreview(body []byte, appID string, now time.Time) massAnswer {
	q, _, code := s.parseMass(body, appID, now)
	if code != 0 {
		return massAnswer{code: code}
	}
	rec := MassPreviewRecord{AppID: appID, ToWXName: q.ToWXName, MsgType: q.MsgType, Time: now}
	if len(q.ToUser) > 0 && string(q.ToUser) != "null" {
		if err := json.Unmarshal(q.ToUser, &rec.ToUser); err != nil {
			return massAnswer{code: 47001}
		}
	}
	if (rec.ToUser == "") == (rec.ToWXName == "") {
		return massAnswer{code: 47001}
	}
	if rec.ToUser != "" && !validOpenID(rec.ToUser) {
		return massAnswer{code: 40003}
	}
	m := s.mass
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec.ToWXName != "" {
		day := now.In(s.set.loc).Format("2006-01-02")
		c := m.byName[appID]
		if !c.take(day, PreviewByNameDaily) {
			return massAnswer{code: 45009}
		}
		m.byName[appID] = c
	}
	m.previews = append(m.previews, rec)
	return massAnswer{body: []byte(`{"errcode":0,"errmsg":"preview success","msg_id":` + strconv.FormatInt(massIDBase/10+int64(len(m.previews)), 10) + `}`)}
}

// msgIDRequest is the body of mass/get and mass/delete. WeChat's sample
// sends mass/get's msg_id as a string; both forms are accepted.
type msgIDRequest struct {
	MsgID      json.Number `json:"msg_id"`
	ArticleIdx *int        `json:"article_idx"`
}

func (s *Server) jobOf(body []byte, appID string) (*MassJob, *msgIDRequest, int) {
	var q msgIDRequest
	if code := checkBody(body); code != 0 {
		return nil, nil, code
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, nil, 47001
	}
	id, err := strconv.ParseInt(string(q.MsgID), 10, 64)
	if err != nil {
		return nil, nil, 40059
	}
	j := s.mass.byID[id]
	if j == nil || j.AppID != appID {
		return nil, nil, 40059
	}
	return j, &q, 0
}

// massGet serves mass/get: SENDING (also while waiting for confirmation),
// then SEND_SUCCESS, SEND_FAIL or DELETE; 40059 for an unknown msg_id.
func (s *Server) massGet(body []byte, appID string) massAnswer {
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	j, _, code := s.jobOf(body, appID)
	if code != 0 {
		return massAnswer{code: code}
	}
	st := j.Status
	if st == MassWaiting {
		st = MassSending
	}
	return massAnswer{body: []byte(`{"msg_id":` + strconv.FormatInt(j.MsgID, 10) + `,"msg_status":"` + st + `"}`)}
}

// massDelete serves mass/delete: a job that was sent becomes DELETE
// (article_idx 0 or absent deletes the whole job, as does any other index
// in the fake, which keeps no per-article state); 40059 for an unknown
// msg_id or a job that is not sent.
func (s *Server) massDelete(body []byte, appID string) massAnswer {
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	j, q, code := s.jobOf(body, appID)
	if code != 0 {
		return massAnswer{code: code}
	}
	if q.ArticleIdx != nil && *q.ArticleIdx < 0 {
		return massAnswer{code: 47001}
	}
	if j.Status != MassSuccess && j.Status != MassDeleted {
		return massAnswer{code: 40059}
	}
	j.Status = MassDeleted
	return massAnswer{body: appendOK(nil)}
}

// realSpeeds maps a speed level to realspeed, in ten thousands of users a
// minute (D-SPEED table: 0 = 800k/min ... 4 = 100k/min).
var realSpeeds = [...]int{80, 60, 45, 30, 10}

func (s *Server) massSpeedGet(appID string) massAnswer {
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	sp := s.mass.speeds[appID]
	return massAnswer{body: []byte(`{"speed":` + strconv.Itoa(sp) + `,"realspeed":` + strconv.Itoa(realSpeeds[sp]) + `}`)}
}

// massSpeedSet serves speed/set: 45084 without speed, 45083 outside 0-4,
// 89504 while a send to all waits for the admin's confirmation (§5.4).
func (s *Server) massSpeedSet(body []byte, appID string) massAnswer {
	if code := checkBody(body); code != 0 {
		return massAnswer{code: code}
	}
	var q struct {
		Speed *int `json:"speed"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return massAnswer{code: 47001}
	}
	if q.Speed == nil {
		return massAnswer{code: 45084}
	}
	if *q.Speed < 0 || *q.Speed >= len(realSpeeds) {
		return massAnswer{code: 45083}
	}
	s.mass.mu.Lock()
	defer s.mass.mu.Unlock()
	for _, j := range s.mass.jobs {
		if j.AppID == appID && j.Status == MassWaiting {
			return massAnswer{code: 89504}
		}
	}
	s.mass.speeds[appID] = *q.Speed
	return massAnswer{body: appendOK(nil)}
}

// mediaLimit is one media type's size limit, extensions and size errcode.
type mediaLimit struct {
	max      int64
	exts     []string
	sizeCode int
}

// The limits the fake applies, with the sources the client's
// wechat.TemporaryMediaLimits cites. The size errcodes 40009-40012 are
// from WeChat's global errcode page (UNCONFIRMED that media/upload answers
// them rather than 45001).
var (
	temporaryLimits = map[string]mediaLimit{
		MediaKindImage: {10 << 20, []string{"png", "jpeg", "jpg", "gif"}, 40009},
		MediaKindVoice: {2 << 20, []string{"amr", "mp3"}, 40010},
		MediaKindVideo: {10 << 20, []string{"mp4"}, 40011},
		MediaKindThumb: {64 << 10, []string{"jpg"}, 40012},
	}
	permanentLimits = map[string]mediaLimit{
		MediaKindImage: {10 << 20, []string{"bmp", "png", "jpeg", "jpg", "gif"}, 40009},
		MediaKindVoice: {2 << 20, []string{"mp3", "wma", "wav", "amr"}, 40010},
		MediaKindVideo: {10 << 20, []string{"mp4"}, 40011},
		MediaKindThumb: {64 << 10, []string{"jpg"}, 40012},
	}
	articleImageLimit = mediaLimit{1 << 20, []string{"jpg", "png"}, 40009}
)

// mediaUpload serves media/upload, material/add_material and
// media/uploadimg: a multipart form with the file in "media" (41005
// without), the type query (40004 unknown), the file extension (40005) and
// size (40009-40012), and for a permanent video the "description" field
// (47001 without).
func (s *Server) mediaUpload(r *http.Request, name, appID string, now time.Time) massAnswer {
	r.Body = http.MaxBytesReader(nil, r.Body, mediaUploadMax)
	if err := r.ParseMultipartForm(mediaUploadMax); err != nil {
		return massAnswer{code: 41005}
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	files := r.MultipartForm.File["media"]
	if len(files) != 1 {
		return massAnswer{code: 41005}
	}
	fh := files[0]
	kind := queryValue(r.URL.RawQuery, "type")
	var l mediaLimit
	var ok bool
	switch name {
	case nameMediaUpload:
		l, ok = temporaryLimits[kind]
	case nameMaterialAdd:
		l, ok = permanentLimits[kind]
	default:
		l, ok, kind = articleImageLimit, true, ""
	}
	if !ok {
		return massAnswer{code: 40004}
	}
	ext := strings.ToLower(fh.Filename)
	if i := strings.LastIndexByte(ext, '.'); i >= 0 {
		ext = ext[i+1:]
	} else {
		ext = ""
	}
	if !slices.Contains(l.exts, ext) {
		return massAnswer{code: 40005}
	}
	if fh.Size > l.max {
		return massAnswer{code: l.sizeCode}
	}
	if name == nameMaterialAdd && kind == MediaKindVideo && r.MultipartForm.Value["description"] == nil {
		return massAnswer{code: 47001}
	}
	m := s.mass
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mediaSeq++
	id := fmt.Sprintf("fake_%s_%s_%d", strings.ReplaceAll(name, "/", "_"), appID, m.mediaSeq)
	if name == nameUploadImg {
		return massAnswer{body: []byte(`{"url":"http://mmbiz.qpic.cn/fake/` + id + `/0"}`)}
	}
	e := &mediaEntry{appID: appID, kind: kind}
	if name == nameMediaUpload {
		e.expires = now.Add(s.set.mass.mediaExpiry)
		m.media[id] = e
		return massAnswer{body: []byte(`{"type":"` + kind + `","media_id":"` + id + `","created_at":` + strconv.FormatInt(now.Unix(), 10) + `}`)}
	}
	m.media[id] = e
	out := `{"media_id":"` + id + `"`
	if kind == MediaKindImage {
		out += `,"url":"http://mmbiz.qpic.cn/fake/` + id + `/0"`
	}
	return massAnswer{body: []byte(out + "}")}
}

// draftAdd serves draft/add: 1 to 8 articles, each with a title, content
// and a thumb_media_id that is a permanent image of the account (40007).
// The draft's media_id names it in mpnews mass messages. The limit of 8
// articles is from the draft/add page as SDKs quote it (UNCONFIRMED).
func (s *Server) draftAdd(body []byte, appID string, now time.Time) massAnswer {
	if code := checkBody(body); code != 0 {
		return massAnswer{code: code}
	}
	var q struct {
		Articles []struct {
			Title        string `json:"title"`
			Content      string `json:"content"`
			ThumbMediaID string `json:"thumb_media_id"`
		} `json:"articles"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return massAnswer{code: 47001}
	}
	if len(q.Articles) == 0 || len(q.Articles) > 8 {
		return massAnswer{code: 47001}
	}
	var text strings.Builder
	m := s.mass
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range q.Articles {
		if a.Title == "" || a.Content == "" {
			return massAnswer{code: 47001}
		}
		t := m.media[a.ThumbMediaID]
		if t == nil || t.appID != appID || t.kind != MediaKindImage || !t.expires.IsZero() {
			return massAnswer{code: 40007}
		}
		text.WriteString(a.Title)
		text.WriteString("\n")
		text.WriteString(a.Content)
		text.WriteString("\n")
	}
	m.mediaSeq++
	id := fmt.Sprintf("fake_draft_%s_%d", appID, m.mediaSeq)
	m.media[id] = &mediaEntry{appID: appID, kind: MediaKindDraft, text: text.String()}
	return massAnswer{body: []byte(`{"media_id":"` + id + `"}`)}
}
