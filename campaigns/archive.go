package campaigns

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"strconv"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ArchiveFormat and ArchiveVersion name the format of an archive file: a
// gzip-compressed stream of JSON lines. The first line is an
// ArchiveHeader, then one ArchiveRecord per recipient of the run (in the
// order the run's export lists them), then an ArchiveTrailer that counts
// them. A reader refuses another format or a later version.
const (
	ArchiveFormat  = "wxmass-run-archive"
	ArchiveVersion = 1
)

// Errors of the archive.
var (
	// ErrRecipientsExpired is returned when a run's per-recipient data was
	// archived and its archive has since passed the retention: only the
	// run's summary (counters, errcodes, timeline) is left.
	ErrRecipientsExpired = errors.New("campaigns: the run's per-recipient data has expired")
	// ErrNoArchive is returned when a run's per-recipient data is archived
	// but the Store has no archive to read it from.
	ErrNoArchive = errors.New("campaigns: the run is archived and no archive is configured")
	// ErrArchiveIncomplete is returned when an archive file does not hold
	// exactly the run's recipients (missing, short, cut or corrupt).
	ErrArchiveIncomplete = errors.New("campaigns: archive file incomplete")
)

// ArchiveHeader is the first line of an archive file.
type ArchiveHeader struct {
	Format   string    `json:"format"`
	Version  int       `json:"version"`
	Campaign string    `json:"campaign"`
	Run      int       `json:"run"`
	State    string    `json:"state"`
	Size     int64     `json:"size"`
	Finished time.Time `json:"finished"`
}

// ArchiveRecord is one recipient of an archived run: its final outcome
// (the fields of Outcome, the time in Unix milliseconds) and, when its
// send was attempted, its attempt record.
type ArchiveRecord struct {
	OpenID  string          `json:"openid"`
	Status  string          `json:"status"`
	Errcode int             `json:"errcode,omitempty"`
	Class   string          `json:"class,omitempty"`
	MsgID   int64           `json:"msgid,omitempty"`
	Detail  string          `json:"detail,omitempty"`
	AtMS    int64           `json:"at_ms"`
	Attempt *ArchiveAttempt `json:"attempt,omitempty"`
}

// ArchiveAttempt is a recipient's attempt record (see Attempt); times in
// Unix milliseconds.
type ArchiveAttempt struct {
	N            int    `json:"n"`
	FirstMS      int64  `json:"first_ms"`
	LastMS       int64  `json:"last_ms"`
	Open         bool   `json:"open,omitempty"`
	Lost         bool   `json:"lost,omitempty"`
	Proc         string `json:"proc,omitempty"`
	ClientMsgRun int    `json:"client_msg_run"`
}

// ArchiveTrailer is the last line of a complete archive file.
type ArchiveTrailer struct {
	End     bool  `json:"end"`
	Records int64 `json:"records"`
}

// Archive keeps the archive files of finished runs in a bucket: a local
// directory (file:///path), S3 (s3://), GCS (gs://) or Azure (azblob://),
// through gocloud.dev/blob. The drivers of the schemes are registered by
// the program (cmd/wxmass). It is safe for concurrent use.
type Archive struct {
	url string
	mu  sync.Mutex
	b   *blob.Bucket // opened at first use
}

// OpenArchive returns the archive in the bucket at url, after checking
// that a driver for its scheme is registered. The bucket itself is opened
// at first use (so a local directory is created only when a run is
// archived), and again after a failed open.
func OpenArchive(url string) (*Archive, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("campaigns: archive URL: %w", err)
	}
	if !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return nil, fmt.Errorf("campaigns: archive URL: no driver for scheme %q", u.Scheme)
	}
	return &Archive{url: url}, nil
}

// bucket opens the bucket once.
func (a *Archive) bucket(ctx context.Context) (*blob.Bucket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b == nil {
		b, err := blob.OpenBucket(ctx, a.url)
		if err != nil {
			return nil, fmt.Errorf("open archive: %w", err)
		}
		a.b = b
	}
	return a.b, nil
}

// Close closes the bucket if it was opened.
func (a *Archive) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b == nil {
		return nil
	}
	err := a.b.Close()
	a.b = nil
	return err
}

// archiveDir is the folder of a campaign's archive files.
func archiveDir(id string) string { return "campaigns/" + id + "/" }

// archiveKey is the key of a run's archive file.
func archiveKey(id string, run int) string {
	return archiveDir(id) + "run-" + strconv.Itoa(run) + ".ndjson.gz"
}

// write writes an archive file: the header, every record that each
// yields, the trailer. The file appears under key only once it is
// complete (the bucket's writer commits on Close and drops the file when
// ctx ends first). It returns the records and compressed bytes written.
func (a *Archive) write(ctx context.Context, key string, h ArchiveHeader, each func(func(ArchiveRecord) error) error) (int64, int64, error) {
	b, err := a.bucket(ctx)
	if err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The file is gzip, not JSON lines sent gzip-encoded: a
	// Content-Encoding would make some stores (GCS) and HTTP clients
	// decompress it on the way back.
	w, err := b.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/gzip"})
	if err != nil {
		return 0, 0, fmt.Errorf("archive writer: %w", err)
	}
	cw := &countWriter{w: w}
	zw := gzip.NewWriter(cw)
	bw := bufio.NewWriterSize(zw, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var n int64
	err = enc.Encode(h)
	if err == nil {
		err = each(func(r ArchiveRecord) error {
			n++
			return enc.Encode(r)
		})
	}
	if err == nil {
		err = enc.Encode(ArchiveTrailer{End: true, Records: n})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		cancel() // the writer drops what it has
		_ = w.Close()
		return 0, 0, fmt.Errorf("write archive: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, 0, fmt.Errorf("write archive: %w", err)
	}
	return n, cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// read calls fn with every record of an archive file, after checking its
// header. It returns ErrArchiveIncomplete (wrapped) when the file is
// missing, cut before its trailer, corrupt, or its trailer's count is not
// the number of records read, and the number of records.
func (a *Archive) read(ctx context.Context, key string, fn func(ArchiveHeader, ArchiveRecord) error) (int64, error) {
	b, err := a.bucket(ctx)
	if err != nil {
		return 0, err
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return 0, fmt.Errorf("%w: %s is missing", ErrArchiveIncomplete, key)
		}
		return 0, fmt.Errorf("read archive: %w", err)
	}
	defer r.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrArchiveIncomplete, key, err)
	}
	dec := json.NewDecoder(zr)
	var h ArchiveHeader
	if err := dec.Decode(&h); err != nil {
		return 0, fmt.Errorf("%w: %s: header: %w", ErrArchiveIncomplete, key, err)
	}
	if h.Format != ArchiveFormat || h.Version < 1 || h.Version > ArchiveVersion {
		return 0, fmt.Errorf("%w: %s: format %q version %d is not %s up to version %d", ErrArchiveIncomplete, key, h.Format, h.Version, ArchiveFormat, ArchiveVersion)
	}
	var n int64
	for {
		// A record and the trailer are told apart by the trailer's "end".
		var line struct {
			ArchiveRecord
			End     bool  `json:"end"`
			Records int64 `json:"records"`
		}
		if err := dec.Decode(&line); err != nil {
			return n, fmt.Errorf("%w: %s: after %d records: %w", ErrArchiveIncomplete, key, n, err)
		}
		if line.End {
			if line.Records != n {
				return n, fmt.Errorf("%w: %s: trailer counts %d records, read %d", ErrArchiveIncomplete, key, line.Records, n)
			}
			return n, nil
		}
		n++
		if fn != nil {
			if err := fn(h, line.ArchiveRecord); err != nil {
				return n, err
			}
		}
	}
}

// verify reads an archive file through and checks that it holds exactly
// size records.
func (a *Archive) verify(ctx context.Context, key string, size int64) error {
	n, err := a.read(ctx, key, nil)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: %s holds %d records, the run has %d recipients", ErrArchiveIncomplete, key, n, size)
	}
	return nil
}

// delete removes one archive file; a missing one is not an error.
func (a *Archive) delete(ctx context.Context, key string) error {
	b, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	if err := b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete archive: %w", err)
	}
	return nil
}

// deleteCampaign removes every archive file of a campaign.
func (a *Archive) deleteCampaign(ctx context.Context, id string) error {
	b, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	it := b.List(&blob.ListOptions{Prefix: archiveDir(id)})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list archives: %w", err)
		}
		if err := a.delete(ctx, obj.Key); err != nil {
			return err
		}
	}
}

func (r ArchiveRecord) outcome() Outcome {
	return Outcome{Status: r.Status, Code: r.Errcode, Class: r.Class, MsgID: r.MsgID, Detail: r.Detail, At: time.UnixMilli(r.AtMS)}
}

func archiveRecord(openid string, o Outcome, a *Attempt) ArchiveRecord {
	rec := ArchiveRecord{OpenID: openid, Status: o.Status, Errcode: o.Code, Class: o.Class, MsgID: o.MsgID, Detail: o.Detail, AtMS: o.At.UnixMilli()}
	if a != nil {
		rec.Attempt = &ArchiveAttempt{N: a.N, FirstMS: a.First.UnixMilli(), LastMS: a.Last.UnixMilli(), Open: a.Open, Lost: a.Lost, Proc: a.Proc, ClientMsgRun: a.ClientMsgRun}
	}
	return rec
}

// recipientSource is where a run's per-recipient outcomes are read from:
// Redis while they are there, the run's archive file after.
type recipientSource interface {
	scanOutcomes(ctx context.Context, id string, run int, fn func(openid string, o Outcome) error) error
}

// redisSource reads the outcomes from Redis (in HSCAN order, which does
// not change once the run is finished).
type redisSource struct{ r *rdb.RDB }

func (s redisSource) scanOutcomes(ctx context.Context, id string, run int, fn func(openid string, o Outcome) error) error {
	return s.r.ScanOutcomes(ctx, id, run, fn)
}

// archiveSource reads the outcomes from an archive file, in the order it
// was written: the order of redisSource when it was archived.
type archiveSource struct {
	a   *Archive
	key string
}

func (s archiveSource) scanOutcomes(ctx context.Context, _ string, _ int, fn func(openid string, o Outcome) error) error {
	_, err := s.a.read(ctx, s.key, func(_ ArchiveHeader, r ArchiveRecord) error {
		return fn(r.OpenID, r.outcome())
	})
	return err
}
