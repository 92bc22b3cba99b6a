package monitoring

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
)

// cspCommon is the part of the Content-Security-Policy every page of
// wxmass shares (as in package api).
const cspCommon = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// inlineScript is an inline <script> of asynqmon's page (its others have
// a src).
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// MonitorCSP returns the Content-Security-Policy of asynqmon's UI served by
// ui (rooted at MonitorPath): what wxmass's pages share, plus what the UI
// needs, found in its page (asynqmon's ui/build/index.html, rendered here
// once as a browser gets it):
//   - its two inline scripts (the UI's settings and webpack's loader),
//     allowed by their SHA-256, which depends on the settings (read-only or
//     not); its other scripts are its own files ('self');
//   - the Roboto and Material Icons stylesheets it links from Google Fonts
//     (fonts.googleapis.com) and their font files (fonts.gstatic.com);
//     where those cannot be reached the UI falls back to system fonts;
//   - the style elements its components (Material-UI's JSS) add at run
//     time: 'unsafe-inline' for styles only (Chromium reports style-src-elem
//     violations without it).
func MonitorCSP(ui http.Handler) string {
	scripts := "'self'"
	for _, h := range monitorScriptHashes(ui) {
		scripts += " '" + h + "'"
	}
	return strings.Join([]string{
		cspCommon,
		"script-src " + scripts,
		"style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
		"font-src 'self' https://fonts.gstatic.com",
		"img-src 'self'",
	}, "; ")
}

// monitorScriptHashes renders the UI's page and returns the CSP hashes
// ("sha256-...") of its inline scripts.
func monitorScriptHashes(ui http.Handler) []string {
	req, err := http.NewRequest(http.MethodGet, MonitorPath+"/", nil)
	if err != nil {
		return nil
	}
	page := &pageWriter{header: http.Header{}}
	ui.ServeHTTP(page, req)
	var out []string
	for _, m := range inlineScript.FindAllSubmatch(page.body.Bytes(), -1) {
		sum := sha256.Sum256(m[1])
		out = append(out, "sha256-"+base64.StdEncoding.EncodeToString(sum[:]))
	}
	return out
}

// pageWriter keeps what a handler writes.
type pageWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (p *pageWriter) Header() http.Header         { return p.header }
func (p *pageWriter) Write(b []byte) (int, error) { return p.body.Write(b) }
func (p *pageWriter) WriteHeader(int)             {}
