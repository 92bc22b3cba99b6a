// Package i18n holds the message catalogues of wxmass's pages (the
// console, the login page) in English and Simplified Chinese, and chooses
// a request's language.
//
// The catalogues are YAML files under locales/<lang>/, one file per part
// of the pages, each a map from a message key to its text: a symbolic key
// ("nav.campaigns") that every language defines, or, in files named
// *.formats.yaml, an English fmt format that the Go code uses as it is
// (the campaign validation's messages) and that other languages translate.
// The texts are fmt formats: "%d recipients" takes its number. Printing
// goes through golang.org/x/text/message, which looks the key up for the
// language and falls back to the key itself.
package i18n

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

//go:embed locales
var locales embed.FS

// The languages of the pages; the first is the fallback.
var (
	English = language.English
	Chinese = language.MustParse("zh-CN")
	// Tags are the languages the catalogues hold.
	Tags = []language.Tag{English, Chinese}
)

// CookieName is the cookie that keeps a browser's chosen language.
const CookieName = "wxmass_lang"

// Catalogue is every language's messages.
type Catalogue struct {
	cat catalog.Catalog
	// keys are each language's keys, by file; formats are the keys of the
	// *.formats.yaml files.
	keys    map[language.Tag]map[string]string
	formats map[string]bool
}

var std = mustLoad()

// Default returns the catalogues embedded in the binary.
func Default() *Catalogue { return std }

func mustLoad() *Catalogue {
	c, err := load(locales)
	if err != nil {
		panic("i18n: " + err.Error())
	}
	return c
}

// load reads locales/<lang>/*.yaml from fsys.
func load(fsys fs.FS) (*Catalogue, error) {
	b := catalog.NewBuilder(catalog.Fallback(English))
	c := &Catalogue{keys: map[language.Tag]map[string]string{}, formats: map[string]bool{}}
	for _, tag := range Tags {
		dir := path.Join("locales", tag.String())
		files, err := fs.Glob(fsys, dir+"/*.yaml")
		if err != nil {
			return nil, err
		}
		c.keys[tag] = map[string]string{}
		for _, f := range files {
			raw, err := fs.ReadFile(fsys, f)
			if err != nil {
				return nil, err
			}
			var m map[string]string
			if err := yaml.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			formats := strings.HasSuffix(f, ".formats.yaml")
			for k, v := range m {
				if prev, ok := c.keys[tag][k]; ok {
					return nil, fmt.Errorf("%s: key %q is also in %s", f, k, prev)
				}
				c.keys[tag][k] = f
				if formats {
					c.formats[k] = true
				}
				if err := b.SetString(tag, k, v); err != nil {
					return nil, fmt.Errorf("%s: %q: %w", f, k, err)
				}
			}
		}
	}
	c.cat = b
	return c, nil
}

// Keys returns tag's message keys, sorted.
func (c *Catalogue) Keys(tag language.Tag) []string {
	var out []string
	for k := range c.keys[tag] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Has reports whether tag's catalogue holds key.
func (c *Catalogue) Has(tag language.Tag, key string) bool {
	_, ok := c.keys[tag][key]
	return ok
}

// IsFormat reports whether key is an English format (a *.formats.yaml
// key), which English needs no entry for.
func (c *Catalogue) IsFormat(key string) bool { return c.formats[key] }

// Text returns tag's text of key, unformatted, and whether it has one.
func (c *Catalogue) Text(tag language.Tag, key string) (string, bool) {
	if !c.Has(tag, key) {
		return "", false
	}
	// The builder has no getter for a message's text; the printer with no
	// arguments prints it, which for a text without verbs is the text.
	return message.NewPrinter(tag, message.Catalog(c.cat)).Sprintf(key), true
}

// Localizer prints one language's messages.
type Localizer struct {
	Tag language.Tag
	p   *message.Printer
}

// Localizer returns tag's localizer.
func (c *Catalogue) Localizer(tag language.Tag) *Localizer {
	return &Localizer{Tag: tag, p: message.NewPrinter(tag, message.Catalog(c.cat))}
}

// T returns key's text in l's language, formatted with args.
func (l *Localizer) T(key string, args ...any) string { return l.p.Sprintf(key, args...) }

// Lang is l's language as an HTML lang attribute: "en" or "zh-CN".
func (l *Localizer) Lang() string { return l.Tag.String() }

var matcher = language.NewMatcher(Tags)

// Match returns the language of the pages for a request: the cookie's
// choice when it names one of Tags, else the best of Accept-Language,
// else English.
func Match(r *http.Request) language.Tag {
	if ck, err := r.Cookie(CookieName); err == nil {
		if t, ok := Parse(ck.Value); ok {
			return t
		}
	}
	_, i, _ := matcher.Match(parseAccept(r.Header.Get("Accept-Language"))...)
	return Tags[i]
}

// Parse returns the one of Tags that s names ("en", "zh-CN"), exactly.
func Parse(s string) (language.Tag, bool) {
	for _, t := range Tags {
		if s == t.String() {
			return t, true
		}
	}
	return language.Tag{}, false
}

func parseAccept(h string) []language.Tag {
	tags, _, err := language.ParseAcceptLanguage(h)
	if err != nil {
		return nil
	}
	return tags
}
