package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoginPageInChinese: the login page speaks the browser's language
// (Accept-Language, or the console's language cookie over it), its errors
// included, with <html lang> set; its inline style is the same in both
// languages, so the CSP hash holds for both.
func TestLoginPageInChinese(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	en := send(t, "GET", b.url+"/login", "")
	zh := send(t, "GET", b.url+"/login", "", "Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
	require.Equal(t, http.StatusOK, zh.status)
	require.Contains(t, zh.body, `<html lang="zh-CN">`)
	require.Contains(t, zh.body, `<title>登录 · wxmass</title>`)
	require.Contains(t, zh.body, `<label for="key">API 密钥</label>`)
	require.Contains(t, zh.body, `<button type="submit" id="login">登录</button>`)
	require.NotContains(t, zh.body, "Log in")
	require.Equal(t, "zh-CN", zh.header.Get("Content-Language"))
	require.Contains(t, en.body, `<html lang="en">`)

	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	require.Equal(t, style.FindString(en.body), style.FindString(zh.body), "the same inline style")
	sum := sha256.Sum256([]byte(style.FindStringSubmatch(zh.body)[1]))
	require.Contains(t, zh.header.Get("Content-Security-Policy"), "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")

	r := send(t, "POST", b.url+"/login", "key=wrong-key-0123456789abcdef", "Content-Type", "application/x-www-form-urlencoded",
		"Sec-Fetch-Site", "same-origin", "Accept-Language", "zh-CN")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.body, "这不是本服务器的 API 密钥")
	r = send(t, "POST", b.url+"/login", "key=", "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin",
		"Cookie", "wxmass_lang=zh-CN")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.body, "请输入 API 密钥。", "the console's language cookie")
	r = send(t, "GET", b.url+"/login", "", "Accept-Language", "zh-CN", "Cookie", "wxmass_lang=en")
	require.Contains(t, r.body, `<html lang="en">`, "the cookie wins over Accept-Language")
}
