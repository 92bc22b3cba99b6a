package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
	"github.com/wxmass/wxmass/internal/media"
)

// MediaBodyMax bounds the body of POST /v1/media: the largest file WeChat
// takes (10 MB) and room for the form around it.
const MediaBodyMax = 10<<20 + 64<<10

// mediaAnswer is a stored file (media.File) as the API shows it.
type mediaAnswer = media.File

// mediaList is a page of stored files.
type mediaList struct {
	Files []media.File `json:"files"`
	// Total is the number of stored files.
	Total int64 `json:"total"`
	// NextOffset is the offset of the next page, absent on the last.
	NextOffset *int64 `json:"next_offset,omitempty"`
}

// noMedia answers a media route of a server without a media store.
func noMedia() *Error {
	return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no media store")
}

// uploadMedia stores a file from a multipart form: field "file" (with a
// file name) and field "type" (image, voice, video or thumb). The file is
// checked against WeChat's limits for its type before it is stored: 422
// invalid_media naming the field and the limit. The same bytes stored
// before answer 200 with their id; new ones 201.
func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request) *Error {
	if s.cfg.Media == nil {
		return noMedia()
	}
	// A browser's session may not upload: a cross-site form can post a
	// multipart body without asking, and only a key sent by a tool proves
	// the operator meant it.
	if p, _ := PrincipalFrom(r.Context()); p.Via != ViaBearer {
		return apiError(http.StatusForbidden, CodeUnauthorized, "Authorization", "uploading a file needs an API key (Authorization: Bearer), not a browser session")
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type", "send multipart/form-data with the fields file and type, not %q", clip(r.Header.Get("Content-Type")))
	}
	r.Body = http.MaxBytesReader(w, httpserve.Upload(r), MediaBodyMax)
	if err := r.ParseMultipartForm(MediaBodyMax); err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			return apiError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "file", "the body is larger than %s; WeChat takes files of at most 10 MB", media.FormatSize(MediaBodyMax))
		}
		return apiError(http.StatusBadRequest, CodeInvalidField, "", "the multipart form does not parse: %s", err.Error())
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	for name := range r.MultipartForm.Value {
		if name != "type" {
			return apiError(http.StatusBadRequest, CodeUnknownField, name, "unknown form field %q: the form has file and type", name)
		}
	}
	for name := range r.MultipartForm.File {
		if name != "file" {
			return apiError(http.StatusBadRequest, CodeUnknownField, name, "unknown form field %q: the form has file and type", name)
		}
	}
	refuse := func(field, msg string) *Error {
		e := apiError(http.StatusUnprocessableEntity, CodeInvalidMedia, field, "%s: %s; nothing was stored", field, msg)
		return e
	}
	if v := r.MultipartForm.Value["type"]; len(v) > 1 {
		return refuse("type", "given more than once")
	}
	files := r.MultipartForm.File["file"]
	switch {
	case len(files) == 0:
		return refuse("file", "required: a form field file with a file name")
	case len(files) > 1:
		return refuse("file", "one file per upload")
	}
	fh := files[0]
	mediaType := r.FormValue("type")
	if err := media.Check(fh.Filename, mediaType, fh.Size); err != nil {
		return limitError(err)
	}
	fr, err := fh.Open()
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "read the upload: %s", err.Error())
	}
	data, err := io.ReadAll(fr)
	_ = fr.Close()
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "read the upload: %s", err.Error())
	}
	f, created, err := s.cfg.Media.Put(r.Context(), fh.Filename, mediaType, data)
	if err != nil {
		if e := limitError(err); e != nil {
			return e
		}
		return apiError(http.StatusInternalServerError, CodeInternal, "", "store the file: %s", err.Error())
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, f)
	return nil
}

// limitError is a *media.LimitError as the API's 422, else nil.
func limitError(err error) *Error {
	var le *media.LimitError
	if !errors.As(err, &le) {
		return nil
	}
	return apiError(http.StatusUnprocessableEntity, CodeInvalidMedia, le.Field, "%s; nothing was stored", le.Error())
}

func (s *Server) listMedia(w http.ResponseWriter, r *http.Request) *Error {
	if s.cfg.Media == nil {
		return noMedia()
	}
	q := r.URL.Query()
	limit, offset, e := pageParams(q)
	if e != nil {
		return e
	}
	files, total, err := s.cfg.Media.List(r.Context(), int64(offset), int64(limit))
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "list files: %s", err.Error())
	}
	out := mediaList{Files: files, Total: total}
	if next := int64(offset) + int64(limit); next < total {
		out.NextOffset = &next
	}
	if out.Files == nil {
		out.Files = []media.File{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMedia(w http.ResponseWriter, r *http.Request) *Error {
	if s.cfg.Media == nil {
		return noMedia()
	}
	f, err := s.cfg.Media.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, media.ErrNotFound) {
		return apiError(http.StatusNotFound, CodeNotFound, "id", "no stored file %s", clip(r.PathValue("id")))
	}
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "get file: %s", err.Error())
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// checkMediaRefs refuses a campaign whose message refers to a stored file
// that does not exist or is of another type than its field needs: 422
// invalid_campaign naming each field. A message that does not compile is
// left to the store's validation.
func (s *Server) checkMediaRefs(ctx context.Context, c *campaigns.Campaign) *Error {
	msg, err := c.Compile()
	if err != nil {
		return nil
	}
	files := msg.MediaFiles()
	if len(files) == 0 {
		return nil
	}
	var errs []campaigns.FieldError
	if s.cfg.Media == nil {
		for _, f := range files {
			errs = append(errs, campaigns.FieldError{Field: f.Field, Message: "this server has no media store: give a media_id"})
		}
	} else if errs, err = s.cfg.Media.CheckRefs(ctx, files); err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "check files: %s", err.Error())
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, fe := range errs {
		msgs[i] = fe.Field + ": " + fe.Message
	}
	e := apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, errs[0].Field, "%s", strings.Join(msgs, "; "))
	e.Errors = errs
	return e
}
