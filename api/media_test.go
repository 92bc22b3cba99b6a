package api_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
)

// multipartFile builds a media upload's form: the file (when name is not
// "-") and the type (when not "").
func multipartFile(t *testing.T, name, mediaType string, data []byte) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if name != "-" {
		fw, err := mw.CreateFormFile("file", name)
		require.NoError(t, err)
		_, err = fw.Write(data)
		require.NoError(t, err)
	}
	if mediaType != "" {
		require.NoError(t, mw.WriteField("type", mediaType))
	}
	require.NoError(t, mw.Close())
	return mw.FormDataContentType(), buf.String()
}

// setupWithMedia is setup with a media store, under a prefix of its own.
func setupWithMedia(t *testing.T) *testBundle {
	t.Helper()
	c := redistest.Client(t, redistest.DBAPI)
	st := media.NewStore(rdb.New(c, redistest.Prefix(t, c)))
	return setup(t, func(cfg *api.Config) { cfg.Media = st })
}

// TestMediaUpload: a file is stored once per content (201, then 200 with
// the same id), listed and shown; files WeChat would refuse are refused
// with 422 naming the field and the limit, before anything is stored; a
// campaign that refers to a file that is not stored, or of another type,
// is refused naming its field.
func TestMediaUpload(t *testing.T) {
	t.Parallel()
	b := setupWithMedia(t)
	png := bytes.Repeat([]byte("PNG."), 1000)
	ct, body := multipartFile(t, "banner.png", "image", png)
	a := b.do(t, "POST", "/v1/media", ct, body)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id, _ := a.body["id"].(string)
	require.True(t, strings.HasPrefix(id, "sha256:"), a.raw)
	require.Equal(t, "banner.png", a.body["name"])
	require.Equal(t, "image", a.body["type"])
	require.EqualValues(t, 4000, a.body["size"])

	ct, body = multipartFile(t, "again.png", "image", png)
	a = b.do(t, "POST", "/v1/media", ct, body)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, id, a.body["id"], "the same bytes, the same file")
	require.Equal(t, "banner.png", a.body["name"])

	refused := []struct {
		name, file, mediaType string
		data                  []byte
		field, want           string
		outside               bool // the contract refuses the request too
	}{
		{"too large", "voice.mp3", "voice", make([]byte, 3250586), "file", "file: voice.mp3 is 3.1 MB, voice files are at most 2 MB (temporary media)", false},
		{"wrong extension", "voice.wav", "voice", []byte("RIFF"), "file", `file: voice.wav: voice files are amr, mp3, not "wav"`, false},
		{"empty", "empty.png", "image", nil, "file", "file: empty.png is empty", false},
		{"no file", "-", "image", nil, "file", "file: required", true},
		{"no type", "a.png", "", []byte("x"), "type", "type: required: one of image, voice, video, thumb", true},
		{"unknown type", "a.png", "gif", []byte("x"), "type", `type: "gif" is not one of image, voice, video, thumb`, true},
	}
	for _, c := range refused {
		ct, body := multipartFile(t, c.file, c.mediaType, c.data)
		var mark []string
		if c.outside {
			mark = []string{invalid, c.name}
		}
		a := b.do(t, "POST", "/v1/media", ct, body, mark...)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", c.name, a.raw)
		require.Equal(t, "invalid_media", a.errCode(), c.name)
		require.Equal(t, c.field, a.errField(), c.name)
		e, _ := a.body["error"].(map[string]any)
		require.Contains(t, e["message"], c.want, c.name)
	}
	// Not a form: 415.
	a = b.json(t, "POST", "/v1/media", `{"file":"x"}`, invalid, "json body")
	require.Equal(t, http.StatusUnsupportedMediaType, a.status, a.raw)

	a = b.json(t, "GET", "/v1/media", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.EqualValues(t, 1, a.body["total"], "refused files were not stored: %s", a.raw)
	files, _ := a.body["files"].([]any)
	require.Len(t, files, 1)
	a = b.json(t, "GET", "/v1/media/"+id, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "banner.png", a.body["name"])
	a = b.json(t, "GET", "/v1/media/sha256:"+strings.Repeat("0", 64), "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)

	// Campaigns that refer to files.
	custom := func(file string) string {
		return `{"name":"图片","account":"` + appID + `","kind":"custom","custom":{"msgtype":"image","image":{"file":"` + file + `"}},
 "audience":{"source":"inline","openids":["oTX0000000000000000000000001"]}}`
	}
	a = b.json(t, "POST", "/v1/campaigns", custom(id))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	unknown := "sha256:" + strings.Repeat("ab", 32)
	a = b.json(t, "POST", "/v1/campaigns", custom(unknown))
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "invalid_campaign", a.errCode())
	require.Equal(t, "custom.image.file", a.errField())
	require.Contains(t, a.raw, "no stored file "+unknown)
	// A voice file where an image is needed.
	ct, body = multipartFile(t, "hi.mp3", "voice", []byte("ID3 voice"))
	a = b.do(t, "POST", "/v1/media", ct, body)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	voice, _ := a.body["id"].(string)
	a = b.json(t, "POST", "/v1/campaigns", custom(voice))
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "custom.image.file", a.errField())
	require.Contains(t, a.raw, "was stored as voice; this field needs image")
	// Not a file id, and both media_id and file.
	a = b.json(t, "POST", "/v1/campaigns", custom("banner.png"), invalid, "not a file id")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "custom.image.file", a.errField())
	a = b.json(t, "POST", "/v1/campaigns", strings.Replace(custom(id), `"file"`, `"media_id":"M1","file"`, 1))
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "custom.image", a.errField())
	require.Contains(t, a.raw, "set media_id or file, not both")
}
