package campaigns

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/wxmass/wxmass/wechat"
)

// KindMass sends WeChat's own mass messages (群发, wechat-api.md §5):
// mass/sendall to all followers or a tag (one job), or mass/send to a list
// cut into batches of at most MassBatchMax openids (one job a batch).
const KindMass Kind = "mass"

// APIMass names the rate-limit bucket and quota shared by every mass API
// of an account (send, sendall, preview, get, delete, speed): WeChat
// allows them 60 calls a minute together (§5.4).
const APIMass = "message/mass"

// Mass batch sizes (wechat-api.md §5.2): mass/send takes 2 to 10,000
// openids.
const (
	MassBatchMax = 10000
	MassBatchMin = 2
	// MassTextMaxBytes bounds a mass text message's content; WeChat does
	// not document it, so the customer-service text's limit is kept.
	MassTextMaxBytes = TextMaxBytes
	// MassImagesMax bounds the media_ids of an image mass message (WeChat
	// shows up to 20 images in one post; UNCONFIRMED for the API).
	MassImagesMax = 20
)

// MassSpec is the content of a mass message (wechat-api.md §5.2): MsgType
// and exactly the payload it names. A mass message is the same for every
// recipient: it has no variables.
type MassSpec struct {
	// MsgType is one of mpnews, text, image, voice, mpvideo, wxcard.
	MsgType string `json:"msgtype"`
	// MPNews names a draft (草稿) by its media_id, or gives the articles
	// of a draft wxmass makes.
	MPNews *MassNewsSpec `json:"mpnews,omitempty"`
	Text   *wechat.Text  `json:"text,omitempty"`
	// Images are permanent image materials (or stored files) shown as one
	// post.
	Images *MassImagesSpec `json:"images,omitempty"`
	// Voice and MPVideo name permanent material by media_id, or a stored
	// file that wxmass adds as permanent material (a video titled with the
	// campaign's name).
	Voice   *MediaRef      `json:"voice,omitempty"`
	MPVideo *MediaRef      `json:"mpvideo,omitempty"`
	WXCard  *wechat.WXCard `json:"wxcard,omitempty"`
	// SendIgnoreReprint goes on with an mpnews that WeChat judges a
	// reprint that may be reprinted; false (the default) stops the send.
	SendIgnoreReprint bool `json:"send_ignore_reprint,omitempty"`
}

func massPayloads(m *MassSpec) []payload {
	return []payload{
		{wechat.MassTypeMPNews, m.MPNews != nil},
		{wechat.MassTypeText, m.Text != nil},
		{wechat.MassTypeImage, m.Images != nil},
		{wechat.MassTypeVoice, m.Voice != nil},
		{wechat.MassTypeMPVideo, m.MPVideo != nil},
		{wechat.MassTypeWXCard, m.WXCard != nil},
	}
}

// mass checks and compiles a mass message. Its text may not refer to
// variables: one job reaches thousands of users with one content.
func (b *messageBuilder) mass(s *MassSpec) {
	v := b.v
	if !checkPayloads(v, "mass", s.MsgType, massPayloads(s)) {
		return
	}
	out := &wechat.MassMessage{MsgType: s.MsgType}
	if s.SendIgnoreReprint {
		out.SendIgnoreReprint = 1
	}
	switch s.MsgType {
	case wechat.MassTypeMPNews:
		out.MPNews = &wechat.Media{MediaID: b.massNews(s.MPNews)}
	case wechat.MassTypeText:
		const p = "mass.text.content"
		c := s.Text.Content
		if strings.Contains(c, "{{") {
			if t, reason := parseText(c); !reason.bad() && t.dynamic() {
				v.addf(p, "a mass message is the same for every recipient: variables such as {{.name}} are not allowed")
				return
			}
		}
		if reason := checkContent(c, false); reason.bad() {
			v.addReason(p, reason)
			return
		}
		out.Text = &wechat.Text{Content: c}
	case wechat.MassTypeImage:
		out.Images = b.massImages(s.Images)
	case wechat.MassTypeVoice:
		out.Voice = &wechat.Media{MediaID: b.mediaRef("mass.voice", s.Voice, wechat.MediaVoice, MediaPermanent)}
	case wechat.MassTypeMPVideo:
		out.MPVideo = &wechat.Media{MediaID: b.mediaRef("mass.mpvideo", s.MPVideo, wechat.MediaVideo, MediaPermanent)}
	case wechat.MassTypeWXCard:
		checkID(v, "mass.wxcard.card_id", s.WXCard.CardID)
		out.WXCard = &wechat.WXCard{CardID: s.WXCard.CardID}
	}
	b.m.mass = out
}

// RenderMass returns the mass message with clientMsgID, a fresh copy the
// caller may change. It returns an error wrapping ErrWrongKind if the
// message is not a mass message, and one wrapping ErrMediaUnresolved if it
// refers to stored files not resolved with WithMedia.
func (m *Message) RenderMass(clientMsgID string) (*wechat.MassMessage, error) {
	if m.kind != KindMass {
		return nil, fmt.Errorf("%w: %s message rendered as mass", ErrWrongKind, m.kind)
	}
	if m.unresolved {
		return nil, m.unresolvedError()
	}
	out := *m.mass
	out.ClientMsgID = clientMsgID
	if out.Images != nil {
		im := *out.Images
		im.MediaIDs = append([]string(nil), im.MediaIDs...)
		out.Images = &im
	}
	return &out, nil
}

// MassClientMsgID is the clientmsgid of one batch of a mass run: the same
// for every try of the batch, distinct for every batch, run and campaign,
// so that WeChat answers a retry 45065 with the job it has (wechat-api.md
// §5.3). It is 36 bytes, under WeChat's 64.
func MassClientMsgID(campaign string, run int, batch string) string {
	h := sha256.Sum256([]byte(campaign + "\x00" + strconv.Itoa(run) + "\x00" + batch))
	return "wxmass" + base64.RawURLEncoding.EncodeToString(h[:22])
}

// Mass batches: the ledger keys of a mass run's "recipients". A run to a
// list has one batch per slice of the audience, keyed "b<index>:<from>-<to>"
// (positions in the campaign's audience list, to exclusive); a run to all
// followers has the one batch MassBatchAll, to a tag MassBatchTag.
const (
	MassBatchAll = "all"
	MassBatchTag = "tag"
)

// MassBatch is one batch of a mass run to a list.
type MassBatch struct {
	Index    int
	From, To int64 // positions in the audience list, To exclusive
}

// Key is the batch's ledger key.
func (b MassBatch) Key() string {
	return "b" + strconv.Itoa(b.Index) + ":" + strconv.FormatInt(b.From, 10) + "-" + strconv.FormatInt(b.To, 10)
}

// ParseMassBatch decodes a batch key of a run to a list.
func ParseMassBatch(key string) (MassBatch, error) {
	idx, rng, ok := strings.Cut(strings.TrimPrefix(key, "b"), ":")
	from, to, ok2 := strings.Cut(rng, "-")
	if !strings.HasPrefix(key, "b") || !ok || !ok2 {
		return MassBatch{}, fmt.Errorf("campaigns: mass batch %q: want b<index>:<from>-<to>", key)
	}
	var b MassBatch
	var err error
	if b.Index, err = strconv.Atoi(idx); err != nil {
		return MassBatch{}, fmt.Errorf("campaigns: mass batch %q: %w", key, err)
	}
	if b.From, err = strconv.ParseInt(from, 10, 64); err != nil {
		return MassBatch{}, fmt.Errorf("campaigns: mass batch %q: %w", key, err)
	}
	if b.To, err = strconv.ParseInt(to, 10, 64); err != nil {
		return MassBatch{}, fmt.Errorf("campaigns: mass batch %q: %w", key, err)
	}
	if b.From < 0 || b.To <= b.From {
		return MassBatch{}, fmt.Errorf("campaigns: mass batch %q: empty range", key)
	}
	return b, nil
}

// MassBatches cuts a list of n openids into the fewest batches of at most
// MassBatchMax, of sizes as even as can be (so that none has fewer than
// MassBatchMin when n has at least that many): 25,000 openids make three
// batches of 8,333, 8,333 and 8,334.
func MassBatches(n int64) []MassBatch {
	if n <= 0 {
		return nil
	}
	k := (n + MassBatchMax - 1) / MassBatchMax
	out := make([]MassBatch, k)
	for i := range k {
		out[i] = MassBatch{Index: int(i), From: i * n / k, To: (i + 1) * n / k}
	}
	return out
}
