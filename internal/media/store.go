// Package media holds the files operators upload for campaigns (Store) and
// the cache of their WeChat media_ids per account (Cache).
//
// A file is stored once in Redis, content-addressed: its id is "sha256:"
// and the hex SHA-256 of its bytes. It is checked against WeChat's limits
// for its type before it is stored, so that a file WeChat would refuse
// never reaches a campaign. When a run sends, Cache.Resolve uploads each
// file the message refers to for the campaign's account (temporary media,
// permanent material or a draft), once across every process, and keeps
// the media_id until WeChat drops it.
package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/wechat"
)

// ErrNotFound is returned for a file id that names no stored file.
var ErrNotFound = errors.New("media: no such file")

// Types are the media types a file may be stored as.
var Types = []string{wechat.MediaImage, wechat.MediaVoice, wechat.MediaVideo, wechat.MediaThumb}

// File is a stored file's metadata.
type File struct {
	// ID is "sha256:" and the hex SHA-256 of the file's bytes.
	ID string `json:"id"`
	// Name is the file name it was uploaded with; its extension is the
	// format WeChat is told.
	Name string `json:"name"`
	// Type is its media type: image, voice, video or thumb.
	Type string `json:"type"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// Created is when it was first stored.
	Created time.Time `json:"created_at"`
}

// LimitError is a file refused before it is stored: it names the field
// ("file" or "type") and what is wrong, the limit included.
type LimitError struct {
	Field  string
	Reason string
}

// Error returns "<field>: <reason>".
func (e *LimitError) Error() string { return e.Field + ": " + e.Reason }

// Limit is the limit a stored file of one type must meet: the stricter of
// WeChat's temporary-media and permanent-material limits, so that the file
// can be used either way.
type Limit struct {
	MaxBytes int64
	// SizeFrom says which limit MaxBytes comes from: "temporary media" or
	// "permanent material".
	SizeFrom string
	// Extensions are accepted by both.
	Extensions []string
	// OnlyPermanent are the extensions permanent material also takes.
	OnlyPermanent []string
}

// LimitOf returns the limit of a media type, and whether it is one of
// Types.
func LimitOf(mediaType string) (Limit, bool) {
	t, ok1 := wechat.TemporaryMediaLimits[mediaType]
	p, ok2 := wechat.PermanentMediaLimits[mediaType]
	if !ok1 || !ok2 {
		return Limit{}, false
	}
	l := Limit{MaxBytes: t.MaxBytes, SizeFrom: "temporary media"}
	if p.MaxBytes < t.MaxBytes {
		l.MaxBytes, l.SizeFrom = p.MaxBytes, "permanent material"
	}
	for _, e := range t.Extensions {
		if slices.Contains(p.Extensions, e) {
			l.Extensions = append(l.Extensions, e)
		}
	}
	for _, e := range p.Extensions {
		if !slices.Contains(l.Extensions, e) {
			l.OnlyPermanent = append(l.OnlyPermanent, e)
		}
	}
	return l, true
}

// Check checks a file before it is stored: a known type, a name with an
// extension the type takes, at least one byte and at most the type's
// limit. It returns nil or a *LimitError.
func Check(name, mediaType string, size int64) error {
	l, ok := LimitOf(mediaType)
	if !ok {
		if mediaType == "" {
			return &LimitError{Field: "type", Reason: "required: one of " + strings.Join(Types, ", ")}
		}
		return &LimitError{Field: "type", Reason: strconv.Quote(mediaType) + " is not one of " + strings.Join(Types, ", ")}
	}
	base := path.Base(name)
	switch {
	case name == "" || base == "." || base == "/":
		return &LimitError{Field: "file", Reason: "the file has no name: its extension says its format"}
	case size == 0:
		return &LimitError{Field: "file", Reason: base + " is empty"}
	case size > l.MaxBytes:
		return &LimitError{Field: "file", Reason: fmt.Sprintf("%s is %s, %s files are at most %s (%s)",
			base, FormatSize(size), mediaType, FormatSize(l.MaxBytes), l.SizeFrom)}
	}
	ext := strings.TrimPrefix(strings.ToLower(path.Ext(base)), ".")
	if !slices.Contains(l.Extensions, ext) {
		reason := fmt.Sprintf("%s: %s files are %s, not %q", base, mediaType, strings.Join(l.Extensions, ", "), ext)
		if len(l.OnlyPermanent) > 0 {
			reason += " (temporary media take only those; permanent material also " + strings.Join(l.OnlyPermanent, ", ") + ")"
		}
		return &LimitError{Field: "file", Reason: reason}
	}
	return nil
}

// FormatSize writes a size in bytes as a person reads it: "3.1 MB",
// "2 MB", "64 KB", "512 bytes" (1 MB is 1,048,576 bytes).
func FormatSize(n int64) string {
	unit := func(v float64, u string) string {
		s := strconv.FormatFloat(v, 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + " " + u
	}
	switch {
	case n >= 1<<20:
		return unit(float64(n)/(1<<20), "MB")
	case n >= 1<<10:
		return unit(float64(n)/(1<<10), "KB")
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// Store keeps uploaded files in Redis. It is safe for concurrent use.
type Store struct {
	r   *rdb.RDB
	now func() time.Time
}

// NewStore returns a Store on r (its prefix keys the files).
func NewStore(r *rdb.RDB) *Store { return &Store{r: r, now: time.Now} }

// Put checks a file (Check) and stores it unless the same bytes are
// stored already. It returns the stored file and whether this call stored
// it; a file stored before keeps its name and type.
func (s *Store) Put(ctx context.Context, name, mediaType string, data []byte) (File, bool, error) {
	if err := Check(name, mediaType, int64(len(data))); err != nil {
		return File{}, false, err
	}
	sum := sha256.Sum256(data)
	rec := rdb.MediaRecord{Hex: hex.EncodeToString(sum[:]), Name: path.Base(name), Type: mediaType, Size: int64(len(data)), Created: s.now()}
	got, created, err := s.r.PutMedia(ctx, rec, data)
	if err != nil {
		return File{}, false, err
	}
	return fileOf(got), created, nil
}

func fileOf(r rdb.MediaRecord) File {
	return File{ID: campaigns.FileIDPrefix + r.Hex, Name: r.Name, Type: r.Type, Size: r.Size, Created: r.Created.UTC()}
}

// hexOf returns the hex of a file id, or ErrNotFound for an id that is not
// one.
func hexOf(id string) (string, error) {
	if !campaigns.ValidFileID(id) {
		return "", fmt.Errorf("%w: %q is not sha256: and 64 hex digits", ErrNotFound, id)
	}
	return strings.TrimPrefix(id, campaigns.FileIDPrefix), nil
}

// Get returns a stored file's metadata, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (File, error) {
	h, err := hexOf(id)
	if err != nil {
		return File{}, err
	}
	r, err := s.r.Media(ctx, h)
	if errors.Is(err, rdb.ErrMediaNotFound) {
		return File{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return File{}, err
	}
	return fileOf(r), nil
}

// Data returns a stored file's bytes, or an error wrapping ErrNotFound.
func (s *Store) Data(ctx context.Context, id string) ([]byte, error) {
	h, err := hexOf(id)
	if err != nil {
		return nil, err
	}
	b, err := s.r.MediaData(ctx, h)
	if errors.Is(err, rdb.ErrMediaNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return b, err
}

// List returns stored files, newest first, from offset, at most limit,
// and how many there are.
func (s *Store) List(ctx context.Context, offset, limit int64) ([]File, int64, error) {
	hexes, total, err := s.r.ListMedia(ctx, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]File, 0, len(hexes))
	for _, h := range hexes {
		r, err := s.r.Media(ctx, h)
		if errors.Is(err, rdb.ErrMediaNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, fileOf(r))
	}
	return out, total, nil
}

// CheckRefs checks that every stored file a message refers to (and every
// cover of a draft it makes) exists and is of the type its field needs.
// It returns one FieldError per file at fault, nil when all are fine, or
// an error when Redis fails.
func (s *Store) CheckRefs(ctx context.Context, files []campaigns.MediaFile) ([]campaigns.FieldError, error) {
	var out []campaigns.FieldError
	var all []campaigns.MediaFile
	for _, f := range files {
		if f.Purpose == campaigns.MediaDraft {
			all = append(all, f.Covers()...)
			continue
		}
		all = append(all, f)
	}
	for _, f := range all {
		got, err := s.Get(ctx, f.File)
		switch {
		case errors.Is(err, ErrNotFound):
			out = append(out, campaigns.FieldError{Field: f.Field, Message: "no stored file " + f.File + ": upload it with POST /v1/media first"})
		case err != nil:
			return nil, err
		case got.Type != f.Type:
			out = append(out, campaigns.FieldError{Field: f.Field, Message: fmt.Sprintf("file %s (%s) was stored as %s; this field needs %s", f.File, got.Name, got.Type, f.Type)})
		}
	}
	return out, nil
}
