package campaigns

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxmass/wxmass/wechat"
)

// FileIDPrefix starts every stored file's id: a file is named by the
// SHA-256 of its bytes, "sha256:" followed by 64 lower-case hex digits.
const FileIDPrefix = "sha256:"

// ValidFileID reports whether s is a stored file's id: FileIDPrefix and 64
// lower-case hex digits.
func ValidFileID(s string) bool {
	h, ok := strings.CutPrefix(s, FileIDPrefix)
	if !ok || len(h) != 64 {
		return false
	}
	for _, r := range h {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// ErrMediaUnresolved is returned by RenderCustom and RenderMass on a
// message that refers to stored files (MediaFiles) not yet replaced by
// their media_ids with WithMedia.
var ErrMediaUnresolved = errors.New("campaigns: the message refers to files not uploaded to WeChat yet: resolve them with WithMedia first")

// MediaRef names a media item either by WeChat's media_id or by a file
// stored in wxmass (File, a "sha256:..." id from POST /v1/media), which
// wxmass uploads for the campaign's account when it sends. Exactly one of
// them is set.
type MediaRef struct {
	MediaID string `json:"media_id,omitempty"`
	File    string `json:"file,omitempty"`
}

// MassImagesSpec is the images payload of a mass message: permanent image
// materials by MediaIDs, or stored Files that wxmass adds as permanent
// material (exactly one of the two lists), shown as one post.
type MassImagesSpec struct {
	MediaIDs           []string `json:"media_ids,omitempty"`
	Files              []string `json:"files,omitempty"`
	Recommend          string   `json:"recommend,omitempty"`
	NeedOpenComment    int      `json:"need_open_comment,omitempty"`
	OnlyFansCanComment int      `json:"only_fans_can_comment,omitempty"`
}

// MassNewsSpec is the mpnews payload of a mass message: a draft (草稿) by
// its MediaID, or Articles that wxmass turns into a draft of the account
// (each cover added as permanent image material, then draft/add). Exactly
// one of the two is set.
type MassNewsSpec struct {
	MediaID  string        `json:"media_id,omitempty"`
	Articles []ArticleSpec `json:"articles,omitempty"`
}

// ArticleSpec is one article of a draft wxmass makes: its title and HTML
// content, the stored image file of its cover, and optionally its author
// and digest.
type ArticleSpec struct {
	Title     string `json:"title"`
	Content   string `json:"content"`
	CoverFile string `json:"cover_file"`
	Author    string `json:"author,omitempty"`
	Digest    string `json:"digest,omitempty"`
}

// Limits of ArticleSpec, from WeChat's draft/add page (UNCONFIRMED against
// the live page: title at most 64 characters, author 16, digest 120,
// content under 20,000 characters and 1 MB; at most 8 articles).
const (
	ArticlesMax          = 8
	ArticleTitleMaxChars = 64
	ArticleAuthorMax     = 16
	ArticleDigestMax     = 120
	ArticleContentMax    = 20000
	ArticleContentBytes  = 1 << 20
)

// MediaPurpose is how a stored file is uploaded to WeChat for a message.
type MediaPurpose string

// The media purposes.
const (
	// MediaTemporary is temporary media (media/upload), which WeChat keeps
	// 3 days: customer-service messages use it.
	MediaTemporary MediaPurpose = "temporary"
	// MediaPermanent is permanent material (material/add_material): mass
	// messages and draft covers use it.
	MediaPermanent MediaPurpose = "permanent"
	// MediaDraft is a draft (draft/add) made of articles whose covers are
	// permanent images: mpnews mass messages use it.
	MediaDraft MediaPurpose = "draft"
)

// MediaFile is one stored file a message refers to, or for MediaDraft the
// articles of a draft to make.
type MediaFile struct {
	// Field is the campaign field that refers to it, such as
	// "custom.image.file", "mass.images.files[1]" or "mass.mpnews.articles";
	// it is the key of WithMedia's map.
	Field string
	// File is the stored file's id; for a draft, the SHA-256 of its
	// articles (with the same prefix), which names the draft.
	File string
	// Type is the WeChat media type (wechat.MediaImage, MediaVoice,
	// MediaVideo); "" for a draft.
	Type    string
	Purpose MediaPurpose
	// Video is the title and introduction material/add_material needs for
	// a video: the campaign's name.
	Video *wechat.VideoDescription
	// Articles are a draft's articles (MediaDraft only).
	Articles []ArticleSpec
}

// Covers returns the cover files of a draft's articles as MediaFiles
// (permanent images, Field "<field>[i].cover_file"), or nil for another
// purpose.
func (f MediaFile) Covers() []MediaFile {
	if f.Purpose != MediaDraft {
		return nil
	}
	out := make([]MediaFile, len(f.Articles))
	for i, a := range f.Articles {
		out[i] = MediaFile{Field: f.Field + "[" + strconv.Itoa(i) + "].cover_file", File: a.CoverFile, Type: wechat.MediaImage, Purpose: MediaPermanent}
	}
	return out
}

// draftID names a draft by its articles.
func draftID(articles []ArticleSpec) string {
	b, _ := json.Marshal(articles) // strings only: cannot fail
	h := sha256.Sum256(b)
	return FileIDPrefix + hex.EncodeToString(h[:])
}

// MediaFiles returns the stored files the message refers to, in the order
// of its fields; nil when it refers to none. A message returned by
// WithMedia returns the same files. The caller may modify the slice.
func (m *Message) MediaFiles() []MediaFile {
	out := slices.Clone(m.files)
	for i := range out {
		out[i].Articles = slices.Clone(out[i].Articles)
	}
	return out
}

// MediaResolved reports whether the message can be rendered: it refers to
// no stored file, or it was returned by WithMedia.
func (m *Message) MediaResolved() bool { return !m.unresolved }

// WithMedia returns a copy of the message whose stored files are replaced
// by their media_ids: ids maps each MediaFile's Field to its media_id. It
// returns an error naming the field when ids lacks one or holds one that
// is not a valid id. The message itself is not changed.
func (m *Message) WithMedia(ids map[string]string) (*Message, error) {
	cp := *m
	cp.unresolved = false
	if len(m.files) == 0 {
		return &cp, nil
	}
	if m.mass != nil {
		mm := *m.mass
		if mm.Images != nil {
			im := *mm.Images
			im.MediaIDs = slices.Clone(im.MediaIDs)
			mm.Images = &im
		}
		cp.mass = &mm
	}
	for _, f := range m.files {
		id := ids[f.Field]
		v := &validator{}
		checkID(v, f.Field, id)
		if err := v.err(); err != nil {
			return nil, fmt.Errorf("campaigns: media_id of %s (file %s): %w", f.Field, f.File, err)
		}
		media := &wechat.Media{MediaID: id}
		switch {
		case f.Field == "custom.image.file":
			cp.custom.Image = media
		case f.Field == "mass.voice.file":
			cp.mass.Voice = media
		case f.Field == "mass.mpvideo.file":
			cp.mass.MPVideo = media
		case f.Field == "mass.mpnews.articles":
			cp.mass.MPNews = media
		case strings.HasPrefix(f.Field, "mass.images.files["):
			i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f.Field, "mass.images.files["), "]"))
			if err != nil || cp.mass.Images == nil || i < 0 || i >= len(cp.mass.Images.MediaIDs) {
				return nil, fmt.Errorf("campaigns: %s: no such image", f.Field)
			}
			cp.mass.Images.MediaIDs[i] = id
		default:
			return nil, fmt.Errorf("campaigns: %s: not a field that takes a file", f.Field)
		}
	}
	return &cp, nil
}

// unresolvedError is ErrMediaUnresolved naming the message's files.
func (m *Message) unresolvedError() error {
	fields := make([]string, len(m.files))
	for i, f := range m.files {
		fields[i] = f.Field
	}
	return fmt.Errorf("%w (%s)", ErrMediaUnresolved, strings.Join(fields, ", "))
}

// mediaRef checks a MediaRef at path: exactly one of media_id and file. It
// returns the media_id ("" for a file) and records the file with its type
// and purpose.
func (b *messageBuilder) mediaRef(path string, r *MediaRef, mediaType string, purpose MediaPurpose) string {
	switch {
	case r.MediaID != "" && r.File != "":
		b.v.addf(path, "set media_id or file, not both")
	case r.File != "":
		if checkFileID(b.v, path+".file", r.File) {
			f := MediaFile{Field: path + ".file", File: r.File, Type: mediaType, Purpose: purpose}
			if mediaType == wechat.MediaVideo {
				f.Video = &wechat.VideoDescription{Title: b.name, Introduction: b.name}
			}
			b.addFile(f)
		}
	default:
		checkID(b.v, path+".media_id", r.MediaID)
	}
	return r.MediaID
}

// addFile records a stored file the message refers to.
func (b *messageBuilder) addFile(f MediaFile) {
	b.m.files = append(b.m.files, f)
	b.m.unresolved = true
}

// checkFileID checks a stored file's id and reports whether it is valid.
func checkFileID(v *validator, path, s string) bool {
	if s == "" {
		v.addf(path, "required")
		return false
	}
	if !ValidFileID(s) {
		v.addf(path, "not a file id: %s is not sha256: and 64 hex digits (the id POST /v1/media answers)", quoteValue(truncate(s, 80)))
		return false
	}
	return true
}

// massImages checks a mass images payload and returns its wechat form,
// whose media_ids are empty where a file stands.
func (b *messageBuilder) massImages(im *MassImagesSpec) *wechat.MassImages {
	v := b.v
	const p = "mass.images"
	out := &wechat.MassImages{Recommend: im.Recommend, NeedOpenComment: im.NeedOpenComment, OnlyFansCanComment: im.OnlyFansCanComment}
	switch {
	case len(im.MediaIDs) > 0 && len(im.Files) > 0:
		v.addf(p, "set media_ids or files, not both")
	case len(im.Files) > 0:
		if n := len(im.Files); n > MassImagesMax {
			v.addf(p+".files", "%d images, at most %d", n, MassImagesMax)
		}
		out.MediaIDs = make([]string, len(im.Files))
		for i, f := range im.Files {
			path := p + ".files[" + strconv.Itoa(i) + "]"
			if checkFileID(v, path, f) {
				b.addFile(MediaFile{Field: path, File: f, Type: wechat.MediaImage, Purpose: MediaPermanent})
			}
		}
	default:
		switch n := len(im.MediaIDs); {
		case n == 0:
			v.addf(p+".media_ids", "at least one media_id (or file in files) is required")
		case n > MassImagesMax:
			v.addf(p+".media_ids", "%d images, at most %d", n, MassImagesMax)
		}
		for i, id := range im.MediaIDs {
			checkID(v, p+".media_ids["+strconv.Itoa(i)+"]", id)
		}
		out.MediaIDs = slices.Clone(im.MediaIDs)
	}
	if im.NeedOpenComment&^1 != 0 {
		v.addf(p+".need_open_comment", "must be 0 or 1, not %d", im.NeedOpenComment)
	}
	if im.OnlyFansCanComment&^1 != 0 {
		v.addf(p+".only_fans_can_comment", "must be 0 or 1, not %d", im.OnlyFansCanComment)
	}
	if !utf8.ValidString(im.Recommend) {
		v.addf(p+".recommend", "invalid UTF-8")
	}
	return out
}

// massNews checks a mass mpnews payload and returns the draft's media_id
// ("" when wxmass makes the draft from articles).
func (b *messageBuilder) massNews(n *MassNewsSpec) string {
	v := b.v
	const p = "mass.mpnews"
	switch {
	case n.MediaID != "" && len(n.Articles) > 0:
		v.addf(p, "set media_id or articles, not both")
		return ""
	case len(n.Articles) == 0:
		checkID(v, p+".media_id", n.MediaID)
		return n.MediaID
	case len(n.Articles) > ArticlesMax:
		v.addf(p+".articles", "%d articles, at most %d", len(n.Articles), ArticlesMax)
		return ""
	}
	ok := true
	limit := func(path, s string, required bool, maxChars int) {
		switch n := utf8.RuneCountInString(s); {
		case !utf8.ValidString(s):
			v.addf(path, "invalid UTF-8")
		case required && strings.TrimSpace(s) == "":
			v.addf(path, "required")
		case n > maxChars:
			v.addf(path, "%d characters, at most %d", n, maxChars)
		case strings.Contains(s, "{{"):
			if t, reason := parseText(s); !reason.bad() && t.dynamic() {
				v.addf(path, "a mass message is the same for every recipient: variables such as {{.name}} are not allowed")
			} else {
				return
			}
		default:
			return
		}
		ok = false
	}
	for i, a := range n.Articles {
		ap := p + ".articles[" + strconv.Itoa(i) + "]"
		limit(ap+".title", a.Title, true, ArticleTitleMaxChars)
		limit(ap+".content", a.Content, true, ArticleContentMax)
		if len(a.Content) >= ArticleContentBytes {
			v.addf(ap+".content", "%d bytes, under %d", len(a.Content), ArticleContentBytes)
			ok = false
		}
		limit(ap+".author", a.Author, false, ArticleAuthorMax)
		limit(ap+".digest", a.Digest, false, ArticleDigestMax)
		ok = checkFileID(v, ap+".cover_file", a.CoverFile) && ok
	}
	if ok {
		arts := slices.Clone(n.Articles)
		b.addFile(MediaFile{Field: p + ".articles", File: draftID(arts), Purpose: MediaDraft, Articles: arts})
	}
	return ""
}
