package i18n

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// notChinese are the zh-CN texts that are names, the same in every
// language, and need no Chinese character; and the keys whose zh-CN text is
// meant to be English (the switch to English is labelled in English, for
// a reader who reads no Chinese).
var (
	notChinese       = map[string]bool{"wxmass": true, "AppID": true, "ID": true, "OpenID": true, "URL": true, "CSV": true, "asynqmon": true}
	englishOnPurpose = map[string]bool{"lang.switch": true, "lang.switch.label": true}
)

// catalogueFile is one locales/<lang>/<name>.yaml.
type catalogueFile struct {
	path    string
	formats bool
	texts   map[string]string
}

// readCatalogues reads every language's files as they are (the raw texts,
// which the catalogue's printer would format).
func readCatalogues(t *testing.T) map[string][]catalogueFile {
	t.Helper()
	out := map[string][]catalogueFile{}
	for _, tag := range Tags {
		files, err := fs.Glob(locales, path.Join("locales", tag.String(), "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files, "%s has no catalogue", tag)
		for _, f := range files {
			raw, err := fs.ReadFile(locales, f)
			require.NoError(t, err)
			var m map[string]string
			require.NoError(t, yaml.Unmarshal(raw, &m), f)
			out[tag.String()] = append(out[tag.String()], catalogueFile{path: f, formats: strings.HasSuffix(f, ".formats.yaml"), texts: m})
		}
	}
	return out
}

// TestCataloguesMatch: English and Chinese have the same symbolic keys;
// every text is non-empty; a key's texts take the same arguments with the
// same verbs; a Chinese text has Chinese in it unless it is a name. A
// *.formats.yaml key is an English format: Chinese translates each one with
// the same verbs.
func TestCataloguesMatch(t *testing.T) {
	t.Parallel()
	cats := readCatalogues(t)
	en, zh := English.String(), Chinese.String()
	symbolic := map[string]map[string]string{en: {}, zh: {}}
	formats := map[string]map[string]string{en: {}, zh: {}}
	for lang, files := range cats {
		for _, f := range files {
			for k, v := range f.texts {
				require.NotEmpty(t, strings.TrimSpace(v), "%s: %q has no text", f.path, k)
				if f.formats {
					formats[lang][k] = v
				} else {
					symbolic[lang][k] = v
				}
			}
		}
	}
	for k := range symbolic[en] {
		_, ok := symbolic[zh][k]
		require.True(t, ok, "%q is in English but not in Chinese (locales/zh-CN)", k)
	}
	for k := range symbolic[zh] {
		_, ok := symbolic[en][k]
		require.True(t, ok, "%q is in Chinese but not in English (locales/en)", k)
	}
	for k, e := range symbolic[en] {
		c := symbolic[zh][k]
		require.Equal(t, mustVerbs(t, k, e), mustVerbs(t, k, c), "%q: the English %q and the Chinese %q take different arguments", k, e, c)
		if !englishOnPurpose[k] && !notChinese[c] && !sameName(e, c) {
			require.True(t, hasHan(c), "%q: the Chinese text %q has no Chinese in it (a name? add it to notChinese)", k, c)
		}
	}
	// Formats: the key is the English text.
	for k, e := range formats[en] {
		require.Equal(t, mustVerbs(t, k, k), mustVerbs(t, k, e), "format %q: its English text %q", k, e)
		_, ok := formats[zh][k]
		require.True(t, ok, "format %q has no Chinese", k)
	}
	for k, c := range formats[zh] {
		require.Equal(t, mustVerbs(t, k, k), mustVerbs(t, k, c), "format %q: the Chinese %q takes other arguments", k, c)
		require.True(t, notChinese[c] || hasHan(c), "format %q: the Chinese text %q has no Chinese in it", k, c)
	}
	// The catalogue as loaded agrees.
	cat := Default()
	require.Equal(t, len(symbolic[en])+len(formats[en]), len(cat.Keys(English)))
	require.Equal(t, len(symbolic[zh])+len(formats[zh]), len(cat.Keys(Chinese)))
}

// sameName reports whether a Chinese text without Chinese is the English
// one written with Chinese punctuation ("API (Bearer)", "API（Bearer）"): a
// name, the same in both languages.
func sameName(en, zh string) bool {
	norm := func(s string) string {
		s = strings.NewReplacer("（", "(", "）", ")", "：", ":", "，", ",", "、", ",").Replace(s)
		return strings.Join(strings.Fields(s), "")
	}
	return norm(en) == norm(zh)
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

func mustVerbs(t *testing.T, key, s string) []string {
	t.Helper()
	v, err := verbs(s)
	require.NoError(t, err, "%q: %q", key, s)
	return v
}

// verbs returns the fmt verbs of format s by argument: element i is the
// verb (with its flags, width and precision) that prints argument i+1. An
// explicit index (%[2]s) may put the arguments in another order, as a
// translation may need to; %% takes none. A verb left open at the end, or
// two verbs for one argument, is an error.
func verbs(s string) ([]string, error) {
	byArg := map[int]string{}
	next, maxArg := 1, 0
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		i++
		start := i
		arg := 0
		var spec strings.Builder // flags, width and precision, without the index
		for i < len(s) {
			c := s[i]
			switch {
			case c == '[':
				end := strings.IndexByte(s[i:], ']')
				if end < 0 {
					return nil, fmt.Errorf("an unclosed [ at %d", i)
				}
				n, err := strconv.Atoi(s[i+1 : i+end])
				if err != nil || n < 1 {
					return nil, fmt.Errorf("a bad argument index %q", s[i:i+end+1])
				}
				arg = n
				i += end + 1
				continue
			case strings.IndexByte("+-# 0123456789.", c) >= 0:
				spec.WriteByte(c)
				i++
				continue
			}
			break
		}
		if i >= len(s) {
			return nil, fmt.Errorf("a verb left open at the end")
		}
		if s[i] == '%' && i == start {
			continue // %%
		}
		if arg == 0 {
			arg = next
		}
		next = arg + 1
		verb := spec.String() + string(s[i])
		if prev, ok := byArg[arg]; ok && prev != verb {
			return nil, fmt.Errorf("argument %d is printed as %%%s and %%%s", arg, prev, verb)
		}
		byArg[arg] = verb
		maxArg = max(maxArg, arg)
	}
	out := make([]string, maxArg)
	for a := 1; a <= maxArg; a++ {
		out[a-1] = byArg[a]
	}
	return out, nil
}

// TestVerbs: the verb parser reads what fmt reads.
func TestVerbs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "no verbs", want: []string{}},
		{in: "100%% sure", want: []string{}},
		{in: "%d of %d (%d%%)", want: []string{"d", "d", "d"}},
		{in: "“%s” at %v", want: []string{"s", "v"}},
		{in: "%[2]s 的 %[1]d", want: []string{"d", "s"}},
		{in: "%.2f%% %-5s %5d", want: []string{".2f", "-5s", "5d"}},
		{in: "ends in %", err: true},
		{in: "%[x]s", err: true},
	} {
		got, err := verbs(tc.in)
		if tc.err {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	require.True(t, sameName("API (Bearer)", "API（Bearer）"))
	require.False(t, sameName("Sign out", "Sign out now"))
	// Different arguments are told apart.
	a, _ := verbs("%s sent %d")
	b, _ := verbs("%d 已发送 %s")
	require.NotEqual(t, a, b)
}
