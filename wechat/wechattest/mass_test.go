package wechattest

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMassBodyChecks: the fake refuses what WeChat refuses in a mass send,
// before it makes a job: list sizes (40130, 45019), malformed openids,
// clientmsgid over 64 bytes (45067), unknown msgtype, unknown media, empty
// text, a sendall without filter; 45065 answers carry the existing msg_id.
func TestMassBodyChecks(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	list := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"%s"`, openID(fmt.Sprint(i)))
		}
		return "[" + strings.Join(ids, ",") + "]"
	}
	two := list(2)
	for _, c := range []struct {
		name string
		api  string
		body string
		code int
	}{
		{"one openid", nameMassSend, `{"touser":` + list(1) + `,"msgtype":"text","text":{"content":"x"}}`, 40130},
		{"10,001 openids", nameMassSend, `{"touser":` + list(MassOpenIDsMax+1) + `,"msgtype":"text","text":{"content":"x"}}`, 45019},
		{"bad openid", nameMassSend, `{"touser":["o1","o2"],"msgtype":"text","text":{"content":"x"}}`, 40003},
		{"long clientmsgid", nameMassSend, `{"touser":` + two + `,"msgtype":"text","text":{"content":"x"},"clientmsgid":"` + strings.Repeat("c", 65) + `"}`, 45067},
		{"unknown msgtype", nameMassSend, `{"touser":` + two + `,"msgtype":"music"}`, 40008},
		{"payload missing", nameMassSend, `{"touser":` + two + `,"msgtype":"mpnews"}`, 47001},
		{"unknown media", nameMassSend, `{"touser":` + two + `,"msgtype":"mpnews","mpnews":{"media_id":"nope"}}`, 40007},
		{"empty text", nameMassSend, `{"touser":` + two + `,"msgtype":"text","text":{"content":" "}}`, 44004},
		{"bad reprint flag", nameMassSend, `{"touser":` + two + `,"msgtype":"text","text":{"content":"x"},"send_ignore_reprint":2}`, 47001},
		{"no filter", nameMassSendAll, `{"msgtype":"text","text":{"content":"x"}}`, 47001},
		{"unknown tag", nameMassSendAll, `{"filter":{"is_to_all":false,"tag_id":9},"msgtype":"text","text":{"content":"x"}}`, 45159},
		{"speed missing", nameMassSpeedSet, `{}`, 45084},
		{"unknown msg_id", nameMassGet, `{"msg_id":"201053012"}`, 40059},
	} {
		m := b.send(t, c.api, tok, c.body)
		require.Equal(t, c.code, errcode(t, m), "%s: %v", c.name, m)
	}
	require.Empty(t, b.srv.MassJobs())

	body := `{"touser":` + two + `,"msgtype":"text","text":{"content":"x"},"clientmsgid":"` + strings.Repeat("c", 64) + `"}`
	first := b.send(t, nameMassSend, tok, body)
	require.Zero(t, errcode(t, first), "%v", first)
	again := b.send(t, nameMassSend, tok, body)
	require.Equal(t, 45065, errcode(t, again))
	require.Equal(t, num(t, first, "msg_id"), num(t, again, "msg_id"))
	// Without clientmsgid the content digest dedupes.
	noID := `{"touser":` + two + `,"msgtype":"text","text":{"content":"y"}}`
	require.Zero(t, errcode(t, b.send(t, nameMassSend, tok, noID)))
	require.Equal(t, 45065, errcode(t, b.send(t, nameMassSend, tok, noID)))
	require.Len(t, b.srv.MassJobs(), 2)
}

// TestMassControlEndpoints: /fake/mass-jobs lists the jobs and
// /fake/mass-confirm confirms a waiting send to all.
func TestMassControlEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Followers: 3, Mass: MassConfig{Protected: []string{AppIDDefault}}})
	tok := b.token(t)
	m := b.send(t, nameMassSendAll, tok, `{"filter":{"is_to_all":true},"msgtype":"text","text":{"content":"x"}}`)
	require.Zero(t, errcode(t, m), "%v", m)
	id := num(t, m, "msg_id")
	status, raw := b.do(t, http.MethodPost, "/fake/mass-confirm", fmt.Sprintf(`{"msg_id":%d,"confirm":true}`, id))
	require.Equal(t, http.StatusOK, status, "%s", raw)
	status, raw = b.do(t, http.MethodPost, "/fake/mass-confirm", fmt.Sprintf(`{"msg_id":%d,"confirm":true}`, id))
	require.Equal(t, http.StatusBadRequest, status, "%s", raw)
	status, raw = b.do(t, http.MethodGet, "/fake/mass-jobs", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(raw), fmt.Sprintf(`"msg_id":%d`, id))
	require.Contains(t, string(raw), `"status":"SENDING"`)
	require.Len(t, b.srv.MassJobs()[0].Delivered, 3)
}

// TestMassConfigErrors: MassConfig is validated with the field named.
func TestMassConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  MassConfig
		want string
	}{
		{MassConfig{AccountTypes: map[string]string{"wx0000000000000000": AccountService}}, "unknown appid"},
		{MassConfig{AccountTypes: map[string]string{AppIDDefault: "enterprise"}}, `"enterprise" is not`},
		{MassConfig{Protected: []string{"wx0000000000000000"}}, "Mass.Protected[0]"},
		{MassConfig{ReviewFailures: map[string]int{"x": 0}}, "positive errcode"},
		{MassConfig{PerMinute: -1}, "Mass.PerMinute"},
	} {
		_, err := New(Config{Mass: c.cfg})
		require.ErrorContains(t, err, c.want)
	}
}

// TestMassMediaChecks: media/upload and add_material refuse, as WeChat
// does, a missing file (41005), an unknown type (40004), a wrong extension
// (40005) and a file over the type's limit (40009, 40012), and a permanent
// video without description (47001); nothing is stored for them.
func TestMassMediaChecks(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	upload := func(api, typ, field, name string, size int, extra map[string]string) map[string]any {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile(field, name)
		require.NoError(t, err)
		_, err = fw.Write(make([]byte, size))
		require.NoError(t, err)
		for k, v := range extra {
			require.NoError(t, mw.WriteField(k, v))
		}
		require.NoError(t, mw.Close())
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL()+"/cgi-bin/"+api+"?type="+typ+"&access_token="+url.QueryEscape(tok), &buf)
		require.NoError(t, err)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := b.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return decode(t, raw)
	}
	for _, c := range []struct {
		name                  string
		api, typ, field, file string
		size                  int
		extra                 map[string]string
		code                  int
	}{
		{"no media field", nameMediaUpload, "image", "file", "a.jpg", 10, nil, 41005},
		{"unknown type", nameMediaUpload, "music", "media", "a.mp3", 10, nil, 40004},
		{"wrong extension", nameMediaUpload, "voice", "media", "a.wav", 10, nil, 40005},
		{"image too large", nameMediaUpload, "image", "media", "a.png", 10<<20 + 1, nil, 40009},
		{"thumb over 64 KB", nameMaterialAdd, "thumb", "media", "a.jpg", 64<<10 + 1, nil, 40012},
		{"video without description", nameMaterialAdd, "video", "media", "a.mp4", 10, nil, 47001},
		{"article image not jpg/png", nameUploadImg, "", "media", "a.gif", 10, nil, 40005},
	} {
		m := upload(c.api, c.typ, c.field, c.file, c.size, c.extra)
		require.Equal(t, c.code, errcode(t, m), "%s: %v", c.name, m)
	}
	m := upload(nameMaterialAdd, "video", "media", "a.mp4", 10, map[string]string{"description": `{"title":"t","introduction":"i"}`})
	require.Zero(t, errcode(t, m), "%v", m)
	require.NotEmpty(t, m["media_id"])
	require.Len(t, b.srv.mass.media, 1, "only the valid upload is stored")
}

// TestMassRejectedConfirmation: an admin who rejects a send to all fails
// it at once: SEND_FAIL, nothing delivered.
func TestMassRejectedConfirmation(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Followers: 2, Mass: MassConfig{Protected: []string{AppIDDefault}}})
	tok := b.token(t)
	m := b.send(t, nameMassSendAll, tok, `{"filter":{"is_to_all":true},"msgtype":"text","text":{"content":"x"}}`)
	require.Zero(t, errcode(t, m), "%v", m)
	id := num(t, m, "msg_id")
	status, raw := b.do(t, http.MethodPost, "/fake/mass-confirm", fmt.Sprintf(`{"msg_id":%d,"confirm":false}`, id))
	require.Equal(t, http.StatusOK, status, "%s", raw)
	got := b.send(t, nameMassGet, tok, fmt.Sprintf(`{"msg_id":%d}`, id))
	require.Equal(t, MassFail, got["msg_status"])
	j := b.srv.MassJobs()[0]
	require.Equal(t, "send fail", j.PushStatus)
	require.Empty(t, j.Delivered)
}
