package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Names of the media APIs.
const (
	APIMediaUpload    = "media/upload"
	APIMaterialAdd    = "material/add_material"
	APIDraftAdd       = "draft/add"
	APIMediaUploadImg = "media/uploadimg"
)

// Media types of UploadMedia and AddMaterial (the type query parameter).
const (
	MediaImage = "image"
	MediaVoice = "voice"
	MediaVideo = "video"
	MediaThumb = "thumb"
)

// MediaLimit is the largest size and the file extensions WeChat accepts
// for one media type.
type MediaLimit struct {
	MaxBytes   int64
	Extensions []string // lower case, without the dot
}

// Size and format limits, checked by the client before any call.
//
// Sources: the current official pages "新增临时素材" (media/upload) and
// "新增永久素材" (material/add_material) as summarised by the WeChat SDKs'
// docs: image 10 MB (png, jpeg, jpg, gif; bmp also for permanent
// material), voice 2 MB and at most 60 s (amr, mp3; permanent also wma,
// wav), video 10 MB (mp4), thumb 64 KB (jpg). UNCONFIRMED against the live
// page: an older mirror of the temporary-media page
// (dingding.team/book/weixinmp, "新增临时素材") says image 2 MB and voice
// 5 MB; the newer numbers are used here. The 60-second voice length is not
// checked (it would need decoding). media/uploadimg (article images): jpg
// or png, under 1 MB ("上传图文消息内的图片获取URL"; same SDK docs).
// Temporary media expire 3 days after upload (dingding.team mirror of
// "新增临时素材": "每个素材(media_id)会在开发者上传…3天后自动删除").
var (
	TemporaryMediaLimits = map[string]MediaLimit{
		MediaImage: {MaxBytes: 10 << 20, Extensions: []string{"png", "jpeg", "jpg", "gif"}},
		MediaVoice: {MaxBytes: 2 << 20, Extensions: []string{"amr", "mp3"}},
		MediaVideo: {MaxBytes: 10 << 20, Extensions: []string{"mp4"}},
		MediaThumb: {MaxBytes: 64 << 10, Extensions: []string{"jpg"}},
	}
	PermanentMediaLimits = map[string]MediaLimit{
		MediaImage: {MaxBytes: 10 << 20, Extensions: []string{"bmp", "png", "jpeg", "jpg", "gif"}},
		MediaVoice: {MaxBytes: 2 << 20, Extensions: []string{"mp3", "wma", "wav", "amr"}},
		MediaVideo: {MaxBytes: 10 << 20, Extensions: []string{"mp4"}},
		MediaThumb: {MaxBytes: 64 << 10, Extensions: []string{"jpg"}},
	}
	ArticleImageLimit = MediaLimit{MaxBytes: 1 << 20, Extensions: []string{"jpg", "png"}}
)

// MediaLimitError is a file refused before any call because of its size or
// type.
type MediaLimitError struct {
	API       string
	FileName  string
	MediaType string // "" for article images
	Size      int64
	Limit     MediaLimit
	BadType   bool // the extension is not accepted (else the size is too big)
}

// Error names the file, its size or type and the limit.
func (e *MediaLimitError) Error() string {
	if e.BadType {
		return fmt.Sprintf("wechat: %s: file %q: type %q is not one of %s for %s media",
			e.API, e.FileName, ext(e.FileName), strings.Join(e.Limit.Extensions, ", "), e.MediaType)
	}
	return fmt.Sprintf("wechat: %s: file %q: %d bytes is over the %d-byte limit of %s media",
		e.API, e.FileName, e.Size, e.Limit.MaxBytes, e.MediaType)
}

func ext(name string) string { return strings.TrimPrefix(strings.ToLower(path.Ext(name)), ".") }

// check returns a *MediaLimitError when data under fileName breaks l.
func (l MediaLimit) check(api, mediaType, fileName string, size int64) error {
	if !slices.Contains(l.Extensions, ext(fileName)) {
		return &MediaLimitError{API: api, FileName: fileName, MediaType: mediaType, Size: size, Limit: l, BadType: true}
	}
	if size > l.MaxBytes {
		return &MediaLimitError{API: api, FileName: fileName, MediaType: mediaType, Size: size, Limit: l}
	}
	return nil
}

// UploadedMedia is the answer of UploadMedia and AddMaterial. CreatedAt is
// Unix seconds (temporary media); URL is set for permanent images.
type UploadedMedia struct {
	Type      string `json:"type,omitempty"`
	MediaID   string `json:"media_id"`
	CreatedAt int64  `json:"created_at,omitempty"`
	URL       string `json:"url,omitempty"`
}

type mediaAnswer struct {
	envelope
	UploadedMedia
}

// VideoDescription is the description form field AddMaterial needs for a
// video.
type VideoDescription struct {
	Title        string `json:"title"`
	Introduction string `json:"introduction"`
}

// UploadMedia uploads temporary media (expires after 3 days) with POST
// media/upload as multipart field "media". The type and size are checked
// against TemporaryMediaLimits first.
func (c *Client) UploadMedia(ctx context.Context, ts TokenSource, mediaType, fileName string, data []byte) (UploadedMedia, error) {
	l, ok := TemporaryMediaLimits[mediaType]
	if !ok {
		return UploadedMedia{}, fmt.Errorf("wechat: %s: media type %q is not one of image, voice, video, thumb", APIMediaUpload, mediaType)
	}
	if err := l.check(APIMediaUpload, mediaType, fileName, int64(len(data))); err != nil {
		return UploadedMedia{}, err
	}
	return c.upload(ctx, ts, APIMediaUpload, "type="+url.QueryEscape(mediaType), fileName, data, nil)
}

// AddMaterial uploads permanent material with POST material/add_material.
// video must be set for a video and only then. The type and size are
// checked against PermanentMediaLimits first.
func (c *Client) AddMaterial(ctx context.Context, ts TokenSource, mediaType, fileName string, data []byte, video *VideoDescription) (UploadedMedia, error) {
	l, ok := PermanentMediaLimits[mediaType]
	if !ok {
		return UploadedMedia{}, fmt.Errorf("wechat: %s: media type %q is not one of image, voice, video, thumb", APIMaterialAdd, mediaType)
	}
	if (mediaType == MediaVideo) != (video != nil) {
		return UploadedMedia{}, fmt.Errorf("wechat: %s: a video needs its description, and only a video", APIMaterialAdd)
	}
	if err := l.check(APIMaterialAdd, mediaType, fileName, int64(len(data))); err != nil {
		return UploadedMedia{}, err
	}
	var extra map[string]string
	if video != nil {
		d, err := json.Marshal(video)
		if err != nil {
			return UploadedMedia{}, fmt.Errorf("wechat: %s: encode description: %w", APIMaterialAdd, err)
		}
		extra = map[string]string{"description": string(d)}
	}
	return c.upload(ctx, ts, APIMaterialAdd, "type="+url.QueryEscape(mediaType), fileName, data, extra)
}

// UploadImg uploads an image for use inside article content with POST
// media/uploadimg and returns its URL. It is checked against
// ArticleImageLimit first.
func (c *Client) UploadImg(ctx context.Context, ts TokenSource, fileName string, data []byte) (string, error) {
	if err := ArticleImageLimit.check(APIMediaUploadImg, "article image", fileName, int64(len(data))); err != nil {
		return "", err
	}
	m, err := c.upload(ctx, ts, APIMediaUploadImg, "", fileName, data, nil)
	return m.URL, err
}

// upload posts data as multipart field "media" (and the extra fields).
func (c *Client) upload(ctx context.Context, ts TokenSource, api, query, fileName string, data []byte, extra map[string]string) (UploadedMedia, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="media"; filename=%q`, path.Base(fileName)))
	h.Set("Content-Type", "application/octet-stream")
	fw, err := mw.CreatePart(h)
	if err == nil {
		_, err = fw.Write(data)
	}
	for k, v := range extra {
		if err == nil {
			err = mw.WriteField(k, v)
		}
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return UploadedMedia{}, fmt.Errorf("wechat: %s: encode form: %w", api, err)
	}
	var a mediaAnswer
	err = tokenCall(ctx, ts, func(tok string) error {
		a = mediaAnswer{}
		return c.callBody(ctx, api, http.MethodPost, "/cgi-bin/"+api, query, tok, mw.FormDataContentType(), buf.Bytes(), &a)
	})
	if err != nil {
		return UploadedMedia{}, err
	}
	return a.UploadedMedia, nil
}

// DraftArticle is one article of a draft (draft/add). ThumbMediaID is a
// permanent image material.
type DraftArticle struct {
	Title              string `json:"title"`
	Author             string `json:"author,omitempty"`
	Digest             string `json:"digest,omitempty"`
	Content            string `json:"content"`
	ContentSourceURL   string `json:"content_source_url,omitempty"`
	ThumbMediaID       string `json:"thumb_media_id"`
	NeedOpenComment    int    `json:"need_open_comment,omitempty"`
	OnlyFansCanComment int    `json:"only_fans_can_comment,omitempty"`
}

type draftRequest struct {
	Articles []DraftArticle `json:"articles"`
}

type draftAnswer struct {
	envelope
	MediaID string `json:"media_id"`
}

// AddDraft creates a draft of the articles with POST draft/add and returns
// its media_id, which an mpnews mass message names.
func (c *Client) AddDraft(ctx context.Context, ts TokenSource, articles []DraftArticle) (string, error) {
	if len(articles) == 0 {
		return "", fmt.Errorf("wechat: %s: no articles", APIDraftAdd)
	}
	var a draftAnswer
	err := tokenCall(ctx, ts, func(tok string) error {
		a = draftAnswer{}
		return c.call(ctx, APIDraftAdd, http.MethodPost, "/cgi-bin/draft/add", "", tok, &draftRequest{Articles: articles}, &a)
	})
	if err != nil {
		return "", err
	}
	return a.MediaID, nil
}
