package console

import (
	"bufio"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
)

// Audience upload: GET and POST /console/campaigns/{id}/audience. The
// form's file goes to PUT /v1/campaigns/{id}/audience as it arrives: the
// console reads the multipart body part by part and hands the file part
// to the API as its body, never holding the file.

// audienceData is the audience upload page.
type audienceData struct {
	C campaignRow
	// Size is how many recipients the audience has now.
	Size int64
	// Format is the format chosen in the form ("" to tell by the name).
	Format string
	// FileName is the name of the file just uploaded.
	FileName string
	// Result is the API's answer to an upload, Refused set when it
	// refused the file (nothing was stored; Result.Stored is 0).
	Result  *uploadAnswer
	Refused bool
	// NoFile is set when the form came without a file.
	NoFile bool
	Err    *opError
}

// uploadAnswer is the API's answer to an upload (campaigns.UploadResult).
type uploadAnswer struct {
	Stored int              `json:"stored"`
	Report campaigns.Report `json:"report"`
}

// audienceFormats are the formats the form offers, besides telling by the
// file's name.
var audienceFormats = []campaigns.Format{campaigns.FormatCSV, campaigns.FormatJSONL}

// audienceContentType is the Content-Type the API reads format from.
func audienceContentType(f campaigns.Format) string {
	if f == campaigns.FormatJSONL {
		return "application/x-ndjson"
	}
	return "text/csv"
}

func (c *Console) audiencePage(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.audienceData(r, v)
	if err != nil {
		return err
	}
	return v.Render("audience", d)
}

// audienceData reads the campaign and its audience's size for the page.
func (c *Console) audienceData(r *http.Request, v *view) (*audienceData, error) {
	id := r.PathValue("id")
	cr, err := c.campaign(r, id)
	if err != nil {
		return nil, err
	}
	d := &audienceData{C: cr}
	if c.cfg.Store != nil {
		// The API shows no audience size before a run: the store has it.
		if d.Size, err = c.cfg.Store.AudienceLen(r.Context(), id); err != nil {
			return nil, err
		}
	}
	v.Nav, v.Title = "campaigns", v.T("ops.audience.title", cr.Name)
	v.loc = c.location(cr.Account)
	return d, nil
}

// formFieldMax bounds the form's small fields (the token, the format).
const formFieldMax = 256

// audienceUpload streams the form's file to the API. The form's fields
// come in its order: the token and the format, then the file; the token is
// checked before the file is read.
func (c *Console) audienceUpload(w http.ResponseWriter, r *http.Request, v *view) error {
	// A long upload may take longer than the server's body timeout.
	r.Body = httpserve.Upload(r)
	mr, err := r.MultipartReader()
	if err != nil {
		return &pageError{status: http.StatusBadRequest, msg: v.T("ops.audience.not_multipart")}
	}
	form, err := readUploadForm(mr)
	if err != nil {
		return &pageError{status: http.StatusBadRequest, msg: v.T("ops.audience.not_multipart")}
	}
	if !formTokenIs(r, form.token) {
		return &pageError{status: http.StatusForbidden, msg: v.T("error.form_token")}
	}
	var answer *uploadAnswer
	var refused bool
	var callErr error
	if form.file != nil {
		answer, refused, callErr = c.putAudience(r, r.PathValue("id"), form.file, form.file.FileName(), campaigns.Format(form.format))
	}
	// The page after the upload, with the audience's new size.
	d, err := c.audienceData(r, v)
	if err != nil {
		return err
	}
	d.Format, d.Result, d.Refused, d.NoFile = form.format, answer, refused, form.file == nil
	if form.file != nil {
		d.FileName = form.file.FileName()
	}
	if callErr != nil {
		if d.Err, err = c.opErrorOf(v, callErr); err != nil {
			return err
		}
	}
	return v.Render("audience", d)
}

// uploadForm is the audience form up to its file: the fields before it,
// and the file's part, unread (nil when the form has no file).
type uploadForm struct {
	token, format string
	file          *multipart.Part
}

// readUploadForm reads the parts of the audience form up to its file.
func readUploadForm(mr *multipart.Reader) (uploadForm, error) {
	var f uploadForm
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		switch p.FormName() {
		case formTokenField:
			f.token, err = readField(p)
		case "format":
			f.format, err = readField(p)
		case "file":
			if p.FileName() != "" {
				f.file = p
				return f, nil
			}
		}
		if err != nil {
			return f, err
		}
	}
}

// putAudience sends the file part to the API, in format f or, when f is
// empty, the one its name or first bytes say. It returns the API's answer
// and whether the API refused the file with a report (422
// invalid_audience); any other refusal is the error.
func (c *Console) putAudience(r *http.Request, id string, file io.Reader, name string, f campaigns.Format) (*uploadAnswer, bool, error) {
	br := bufio.NewReader(file)
	if f != campaigns.FormatCSV && f != campaigns.FormatJSONL {
		head, _ := br.Peek(512)
		f = campaigns.DetectFormat(name, head)
	}
	a, err := c.call(r, http.MethodPut, apiPath(id, "/audience"), nil, br, audienceContentType(f))
	if ae, ok := asAPIError(err); ok && ae.Code == "invalid_audience" {
		var refused struct {
			Report campaigns.Report `json:"report"`
		}
		if json.Unmarshal(a.Body, &refused) == nil {
			return &uploadAnswer{Report: refused.Report}, true, err
		}
	}
	if err != nil {
		return nil, false, err
	}
	var out uploadAnswer
	if err := json.Unmarshal(a.Body, &out); err != nil {
		return nil, false, err
	}
	return &out, false, nil
}

// readField reads a small form field.
func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, formFieldMax+1))
	if err == nil && len(b) > formFieldMax {
		err = errors.New("console: form field too long")
	}
	return string(b), err
}

// formTokenIs reports whether got is r's form token, as checkFormToken
// does for a form the console has parsed: a multipart form is read part by
// part instead, so that its file is not buffered.
func formTokenIs(r *http.Request, got string) bool {
	want := formToken(r)
	if want == "" {
		return r.Header.Get("Authorization") != ""
	}
	return hmac.Equal([]byte(got), []byte(want))
}
