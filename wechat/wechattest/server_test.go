package wechattest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRouting(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	for _, p := range []string{"/cgi-bin/menu/create", "/cgi-bin/", "/", "/cgi-bin/token/x", "/cgi-bin/message/template/send/"} {
		status, _ := b.do(t, http.MethodPost, p+"?access_token="+tok, "{}")
		require.Equal(t, http.StatusNotFound, status, p)
	}
	for _, api := range []string{nameTemplateSend, nameCustomSend, nameBizSend, nameTagGet, nameQuotaGet, nameMassSend, nameMediaUpload} {
		m := b.get(t, "/cgi-bin/"+api+"?access_token="+tok)
		require.Equal(t, 43002, errcode(t, m), api)
		require.Contains(t, m["errmsg"], "require POST method rid: ")
	}
	status, raw := b.do(t, http.MethodPost, "/cgi-bin/message/template/send?access_token="+tok, strings.Repeat(" ", MaxBodyBytes+1))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 47001, errcode(t, decode(t, raw)))
}

func TestAnswerHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	resp, err := b.client.Get(b.srv.URL() + "/cgi-bin/user/get")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, contentTypeJSON, resp.Header.Get("Content-Type"))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Regexp(t, `^\{"errcode":41001,"errmsg":"access_token missing rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}"\}$`, string(raw))
}

func TestRun(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	base := "http://" + ln.Addr().String()
	resp, err := client.Get(base + "/fake/stats")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, base, s.URL())

	cancel()
	require.NoError(t, <-ran)
	_, err = client.Get(s.URL() + "/fake/stats")
	require.Error(t, err)
}

func TestRunListenerError(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	require.ErrorContains(t, s.Run(t.Context(), ln), "serve fake wechat")
}

func TestQueryValue(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", queryValue("a=1&access_token=abc&b=2", "access_token"))
	require.Equal(t, "a b/c", queryValue("next_openid=a+b%2Fc", "next_openid"))
	require.Equal(t, "first", queryValue("k=first&k=second", "k"))
	require.Equal(t, "", queryValue("k", "k"))
	require.Equal(t, "", queryValue("", "k"))
	require.Equal(t, "%zz", queryValue("k=%zz", "k"))
}
