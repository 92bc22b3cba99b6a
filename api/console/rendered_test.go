package console_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/i18n"
)

var (
	hrefRE     = regexp.MustCompile(`href="(/console/[^"#]*)"`)
	tagRE      = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<!--.*?-->|<[^>]+>`)
	textAttrRE = regexp.MustCompile(`(?:aria-label|title|placeholder|alt)="([^"]*)"`)
	// badVerbRE is what fmt prints for a verb without its argument, an
	// argument without its verb, or a wrong type.
	badVerbRE = regexp.MustCompile(`%!\w?\(|%!\(EXTRA`)
	keyRE     = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)
)

// TestPagesRenderedTranslated crawls the console as a signed-in browser
// does, in English and in Chinese, from the dashboard along every console
// link (a running campaign's page, a draft's, their confirmations, the
// list and its pages, the error page of a link that has no page yet): no
// page shows a catalogue key in place of its text (a key missing from a
// catalogue prints as itself), a fmt error (%!d(MISSING)), or, in Chinese,
// a heading or a visible attribute without Chinese.
func TestPagesRenderedTranslated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	running := b.newCampaign(t, "会员日 running")
	b.newCampaign(t, "会员日 draft")
	status, out := b.apiJSON(t, "POST", "/v1/campaigns/"+running+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)
	// A key missing from every catalogue prints as itself: a word shaped
	// like a key ("list.filter") in one of the catalogues' namespaces.
	spaces := map[string]bool{}
	for _, tag := range i18n.Tags {
		for _, k := range i18n.Default().Keys(tag) {
			if ns, _, ok := strings.Cut(k, "."); ok {
				spaces[ns] = true
			}
		}
	}
	isKey := func(w string) bool {
		ns, _, ok := strings.Cut(w, ".")
		return ok && spaces[ns] && keyRE.MatchString(w)
	}
	// The switch to English is labelled in English, for a reader of no
	// Chinese.
	toEnglish, ok := i18n.Default().Text(i18n.Chinese, "lang.switch.label")
	require.True(t, ok)
	for _, lang := range []string{"en", "zh-CN"} {
		n := crawl(t, b, lang, []string{"/console/", "/console/campaigns/" + running + "/confirm/start", "/console/no-such-page"}, func(path string, p page) {
			require.Contains(t, p.body, `<html lang="`+lang+`">`, "%s %s", lang, path)
			require.False(t, badVerbRE.MatchString(p.body), "%s %s: a text printed with the wrong arguments: %s", lang, path, badVerbRE.FindString(p.body))
			text := html.UnescapeString(tagRE.ReplaceAllString(p.body, " "))
			var shown []string
			for _, m := range textAttrRE.FindAllStringSubmatch(p.body, -1) {
				shown = append(shown, html.UnescapeString(m[1]))
			}
			for _, w := range append(strings.Fields(text), shown...) {
				require.False(t, isKey(w), "%s %s shows the key %q, not its text", lang, path, w)
			}
			if lang == "zh-CN" {
				for _, s := range shown {
					require.True(t, s == toEnglish || hasHan(s), "%s: the attribute text %q has no Chinese", path, s)
				}
				h1 := regexp.MustCompile(`(?s)<h1>(.*?)</h1>`).FindStringSubmatch(p.body)
				if h1 != nil && !strings.HasPrefix(path, "/console/campaigns/") {
					require.True(t, hasHan(h1[1]), "%s: the heading %q has no Chinese", path, h1[1])
				}
			}
		})
		t.Logf("%s: %d pages", lang, n)
		require.Greater(t, n, 5)
	}
}

// crawl opens start and every console page they link to, as a signed-in
// browser in lang, and calls check with each HTML page; it returns how
// many pages it opened (at most 80).
func crawl(t *testing.T, b *bundle, lang string, start []string, check func(path string, p page)) int {
	t.Helper()
	seen := map[string]bool{}
	queue := start
	for len(queue) > 0 && len(seen) < 80 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] || strings.HasPrefix(path, "/console/static/") || strings.HasSuffix(path, "/progress") {
			continue
		}
		seen[path] = true
		p := b.get(t, path, lang)
		require.Less(t, p.status, 500, "%s %s: %.500s", lang, path, p.body)
		if !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			continue
		}
		check(path, p)
		for _, m := range hrefRE.FindAllStringSubmatch(p.body, -1) {
			queue = append(queue, html.UnescapeString(m[1]))
		}
	}
	return len(seen)
}

var (
	controlRE  = regexp.MustCompile(`(?s)<(input|select|textarea)\b([^>]*)>`)
	attrRE     = regexp.MustCompile(`\b(id|type|aria-label|aria-labelledby)="([^"]*)"`)
	labelForRE = regexp.MustCompile(`<label\b[^>]*\bfor="([^"]+)"`)
	externalRE = regexp.MustCompile(`(?i)\b(?:src|href|action|formaction|poster|data)="(?:https?:)?//`)
)

// TestPagesAreLabelledAndSelfContained crawls the console in both
// languages: every input, select and textarea a person fills in has a
// label (a <label for> its id, or an aria-label), no page loads or posts
// to anything outside wxmass, and every page has the viewport for phones
// and the security headers.
func TestPagesAreLabelledAndSelfContained(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "会员日")
	b.newCampaign(t, "会员日 draft")
	status, out := b.apiJSON(t, "POST", "/v1/campaigns/"+id+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)
	start := []string{"/console/", "/console/campaigns/new", "/console/campaigns/new?kind=custom", "/console/campaigns/new?kind=subscribe",
		"/console/campaigns/new?kind=mass", "/console/accounts"}
	for _, lang := range []string{"en", "zh-CN"} {
		controls := 0
		n := crawl(t, b, lang, start, func(path string, p page) {
			require.Contains(t, p.body, `<meta name="viewport" content="width=device-width, initial-scale=1">`, path)
			require.Contains(t, p.header.Get("Content-Security-Policy"), "default-src 'self'", path)
			require.Contains(t, p.header.Get("Content-Security-Policy"), "script-src 'self'", path)
			require.Equal(t, "DENY", p.header.Get("X-Frame-Options"), path)
			require.Equal(t, "nosniff", p.header.Get("X-Content-Type-Options"), path)
			require.False(t, externalRE.MatchString(p.body), "%s loads or posts elsewhere: %s", path, externalRE.FindString(p.body))
			labels := map[string]bool{}
			for _, m := range labelForRE.FindAllStringSubmatch(p.body, -1) {
				labels[m[1]] = true
			}
			for _, m := range controlRE.FindAllStringSubmatch(p.body, -1) {
				attrs := map[string]string{}
				for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
					attrs[a[1]] = a[2]
				}
				if m[1] == "input" && (attrs["type"] == "hidden" || attrs["type"] == "submit" || attrs["type"] == "button") {
					continue
				}
				controls++
				require.True(t, labels[attrs["id"]] && attrs["id"] != "" || attrs["aria-label"] != "" || attrs["aria-labelledby"] != "",
					"%s %s: a %s without a label: <%s%s>", lang, path, m[1], m[1], m[2])
			}
		})
		t.Logf("%s: %d pages, %d labelled controls", lang, n, controls)
		require.Greater(t, controls, 20)
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}
