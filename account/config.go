package account

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
)

// Token APIs an account can use.
const (
	TokenAPIStable = "stable" // cgi-bin/stable_token (recommended)
	TokenAPIPlain  = "plain"  // cgi-bin/token
)

// Bounds of the accounts file.
const (
	// MaxAccounts is the most accounts one file may configure.
	MaxAccounts = 1000
	// MaxRate is the largest rate per API, in sends per second.
	MaxRate = 100_000
	// MaxFileBytes is the largest accounts file read.
	MaxFileBytes = 1 << 20
)

// Spec is one account as the accounts file (or the single-account flags)
// configure it, with its secrets read.
type Spec struct {
	ID       string
	AppID    string
	Secret   secret.String
	TokenAPI string
	// Limits holds the account's rate limit for every send API
	// (wechat.APITemplateSend, wechat.APICustomSend, wechat.APIBizSend).
	Limits map[string]ratelimit.Limit
	// DailyQuota maps a send API to the most calls a day wxmass makes to
	// it for the account; 0 or absent means no limit of wxmass's own
	// (WeChat's 45009 still pauses the API).
	DailyQuota map[string]int64
	// Callback is the account's message push configuration, or nil when
	// wxmass does not receive its pushes.
	Callback *CallbackSpec
	// Mass is how the account may send mass messages.
	Mass MassSpec
	// Protection is the account's frequency caps, quiet hours and
	// customer-service window (protection.go).
	Protection Protection
	// Location is the account's time zone (the file's time_zone, an IANA
	// name), in which the console shows its dates; nil means
	// TimeZoneDefault.
	Location *time.Location
}

// TimeZoneDefault is the time zone of an account whose time_zone is not
// set: WeChat's, China Standard Time.
const TimeZoneDefault = "Asia/Shanghai"

// LoadLocation returns the time zone named zone (an IANA name such as
// "Asia/Shanghai"; "" is TimeZoneDefault). Programs that may run where
// the system has no zone database import time/tzdata (cmd/wxmass does).
func LoadLocation(zone string) (*time.Location, error) {
	if zone == "" {
		zone = TimeZoneDefault
	}
	if strings.ContainsAny(zone, " \t\n") || zone == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Asia/Shanghai", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Asia/Shanghai (%v)", zone, err)
	}
	return loc, nil
}

// Account types of MassSpec.Type (wechat-api.md §5.4).
const (
	// TypeService is a service account (服务号), the default: mass/send to
	// lists, each user at most 4 mass messages a calendar month.
	TypeService = "service"
	// TypeSubscription is a subscription account (订阅号): no mass/send
	// to lists, each user at most one mass message a day.
	TypeSubscription = "subscription"
)

// MassSpec is an account's mass-send configuration (the accounts file's
// mass: section).
type MassSpec struct {
	// Type is TypeService or TypeSubscription.
	Type string
	// Protection is set when the account has API mass-send protection
	// (API群发保护) on: a send to all waits up to 30 minutes for an
	// admin's confirmation in the WeChat app.
	Protection bool
}

// MassLimit is the rate of every mass API of an account together: 60
// calls a minute (wechat-api.md §5.4), one a second with no burst, so no
// sliding minute ever holds more than 60.
var MassLimit = ratelimit.Limit{Rate: 1, Burst: 1}

// CallbackSpec is an account's message push (callback) configuration.
type CallbackSpec struct {
	Mode           string
	Token          secret.String
	AESKey         secret.String
	PreviousAESKey secret.String
}

// Defaults fill what the accounts file leaves out.
type Defaults struct {
	// Rate and Burst are the limits of a send API an account does not
	// list. A Burst of 0 is a tenth of the rate, at least 1.
	Rate  float64
	Burst int
	// TokenAPI is TokenAPIStable or TokenAPIPlain. Default: stable.
	TokenAPI string
}

// apiOfKind maps the message kinds the file names to send APIs.
var apiOfKind = map[string]string{
	"template":  wechat.APITemplateSend,
	"custom":    wechat.APICustomSend,
	"subscribe": wechat.APIBizSend,
}

// sendKinds are the keys of rate, burst and daily_quota, in order.
var sendKinds = []string{"template", "custom", "subscribe"}

// fileDoc is the accounts file as written.
type fileDoc struct {
	Accounts []fileAccount `yaml:"accounts"`
}

type fileAccount struct {
	ID            string             `yaml:"id"`
	AppID         string             `yaml:"appid"`
	AppSecretFile string             `yaml:"appsecret_file"`
	AppSecretEnv  string             `yaml:"appsecret_env"`
	TokenAPI      string             `yaml:"token_api"`
	Rate          map[string]float64 `yaml:"rate"`
	Burst         map[string]int     `yaml:"burst"`
	DailyQuota    map[string]int64   `yaml:"daily_quota"`
	Callback      *fileCallback      `yaml:"callback"`
	Mass          *fileMass          `yaml:"mass"`
	Protection    *fileProtection    `yaml:"protection"`
	TimeZone      string             `yaml:"time_zone"`
}

type fileMass struct {
	Type       string `yaml:"type"`
	Protection bool   `yaml:"protection"`
}

type fileCallback struct {
	Mode               string `yaml:"mode"`
	TokenFile          string `yaml:"token_file"`
	TokenEnv           string `yaml:"token_env"`
	AESKeyFile         string `yaml:"aes_key_file"`
	AESKeyEnv          string `yaml:"aes_key_env"`
	PreviousAESKeyFile string `yaml:"previous_aes_key_file"`
	PreviousAESKeyEnv  string `yaml:"previous_aes_key_env"`
}

var (
	idRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	appIDRE = regexp.MustCompile(`^wx[0-9A-Za-z]{16}$`)
	envRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ConfigError is a problem with the accounts file. Field is the path of
// the field at fault, such as "accounts[1].rate.template".
type ConfigError struct {
	File  string
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("accounts file")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// LoadFile reads the accounts file at path. Secret files named in it are
// read too; a relative path is relative to the accounts file's directory.
// getenv reads the environment (nil: os.Getenv).
func LoadFile(path string, d Defaults, getenv func(string) string) ([]Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	defer f.Close()
	return load(f, path, filepath.Dir(path), d, getenv)
}

// Load reads an accounts file from r; name names it in errors and dir is
// where relative secret paths start.
func Load(r io.Reader, name, dir string, d Defaults, getenv func(string) string) ([]Spec, error) {
	return load(r, name, dir, d, getenv)
}

func load(r io.Reader, name, dir string, d Defaults, getenv func(string) string) ([]Spec, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if d.TokenAPI == "" {
		d.TokenAPI = TokenAPIStable
	}
	fail := func(field, format string, args ...any) error {
		return &ConfigError{File: name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fail("", "%v", err)
	}
	if len(raw) > MaxFileBytes {
		return nil, fail("", "larger than %d bytes", MaxFileBytes)
	}
	var doc fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail("accounts", "no account configured (the file is empty)")
		}
		return nil, fail("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Accounts) == 0 {
		return nil, fail("accounts", "no account configured")
	}
	if len(doc.Accounts) > MaxAccounts {
		return nil, fail("accounts", "%d accounts, at most %d", len(doc.Accounts), MaxAccounts)
	}
	secretOf := func(field, file, env string, required bool) (secret.String, error) {
		switch {
		case file != "" && env != "":
			return secret.String{}, fail(field, "set %s_file or %s_env, not both", lastElem(field), lastElem(field))
		case file != "":
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, file)
			}
			s, err := secret.FromFile(file)
			if err != nil {
				return s, fail(field+"_file", "%v", err)
			}
			return s, nil
		case env != "":
			if !envRE.MatchString(env) {
				return secret.String{}, fail(field+"_env", "%q is not an environment variable name", env)
			}
			v := strings.TrimSpace(getenv(env))
			if v == "" {
				return secret.String{}, fail(field+"_env", "environment variable %s is not set", env)
			}
			return secret.New(v), nil
		case required:
			return secret.String{}, fail(field+"_file", "required (or %s_env)", lastElem(field))
		}
		return secret.String{}, nil
	}
	out := make([]Spec, 0, len(doc.Accounts))
	ids := map[string]int{}
	appIDs := map[string]int{}
	for i, fa := range doc.Accounts {
		p := fmt.Sprintf("accounts[%d]", i)
		s := Spec{ID: fa.ID, AppID: fa.AppID, TokenAPI: fa.TokenAPI, Limits: map[string]ratelimit.Limit{}, DailyQuota: map[string]int64{}}
		if !appIDRE.MatchString(s.AppID) {
			if s.AppID == "" {
				return nil, fail(p+".appid", "required")
			}
			return nil, fail(p+".appid", "%q is not an appid (\"wx\" and 16 letters or digits)", s.AppID)
		}
		if s.ID == "" {
			s.ID = s.AppID
		}
		if !idRE.MatchString(s.ID) {
			return nil, fail(p+".id", "%q: use 1 to 64 letters, digits, _ and -, starting with a letter or digit", s.ID)
		}
		if j, dup := ids[s.ID]; dup {
			return nil, fail(p+".id", "%q is also accounts[%d]'s id", s.ID, j)
		}
		if j, dup := appIDs[s.AppID]; dup {
			return nil, fail(p+".appid", "%s is also accounts[%d]'s appid", s.AppID, j)
		}
		ids[s.ID], appIDs[s.AppID] = i, i
		if s.TokenAPI == "" {
			s.TokenAPI = d.TokenAPI
		}
		if s.TokenAPI != TokenAPIStable && s.TokenAPI != TokenAPIPlain {
			return nil, fail(p+".token_api", "%q is not stable or plain", s.TokenAPI)
		}
		if s.Secret, err = secretOf(p+".appsecret", fa.AppSecretFile, fa.AppSecretEnv, true); err != nil {
			return nil, err
		}
		for _, m := range []struct {
			name string
			keys []string
		}{{"rate", mapKeys(fa.Rate)}, {"burst", mapKeys(fa.Burst)}, {"daily_quota", mapKeys(fa.DailyQuota)}} {
			for _, k := range m.keys {
				if _, ok := apiOfKind[k]; !ok {
					return nil, fail(p+"."+m.name+"."+k, "unknown kind (want %s)", strings.Join(sendKinds, ", "))
				}
			}
		}
		for _, k := range sendKinds {
			api := apiOfKind[k]
			rate, ok := fa.Rate[k]
			if !ok {
				rate = d.Rate
			}
			if rate <= 0 || rate > MaxRate {
				return nil, fail(p+".rate."+k, "%v: want more than 0 and at most %d sends per second", rate, MaxRate)
			}
			burst, ok := fa.Burst[k]
			if !ok {
				burst = d.Burst
				if _, own := fa.Rate[k]; own || burst <= 0 {
					burst = max(1, int(rate/10))
				}
			}
			if burst < 1 || burst > MaxRate {
				return nil, fail(p+".burst."+k, "%d: want 1 to %d", burst, MaxRate)
			}
			s.Limits[api] = ratelimit.Limit{Rate: rate, Burst: burst}
			if q, ok := fa.DailyQuota[k]; ok {
				if q < 0 {
					return nil, fail(p+".daily_quota."+k, "%d is negative", q)
				}
				if q > 0 {
					s.DailyQuota[api] = q
				}
			}
		}
		s.Mass.Type = TypeService
		if m := fa.Mass; m != nil {
			if m.Type != "" {
				s.Mass.Type = m.Type
			}
			if s.Mass.Type != TypeService && s.Mass.Type != TypeSubscription {
				return nil, fail(p+".mass.type", "%q is not %s or %s", m.Type, TypeService, TypeSubscription)
			}
			s.Mass.Protection = m.Protection
		}
		if s.Location, err = LoadLocation(fa.TimeZone); err != nil {
			return nil, fail(p+".time_zone", "%v", err)
		}
		if s.Protection, err = fa.Protection.protection(p + ".protection"); err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				ce.File = name
			}
			return nil, err
		}
		if cb := fa.Callback; cb != nil {
			cp := p + ".callback"
			c := &CallbackSpec{Mode: cb.Mode}
			if c.Mode == "" {
				c.Mode = callback.ModePlain
			}
			if c.Mode != callback.ModePlain && c.Mode != callback.ModeCompatible && c.Mode != callback.ModeSafe {
				return nil, fail(cp+".mode", "%q is not plain, compatible or safe", c.Mode)
			}
			if c.Token, err = secretOf(cp+".token", cb.TokenFile, cb.TokenEnv, true); err != nil {
				return nil, err
			}
			if c.AESKey, err = secretOf(cp+".aes_key", cb.AESKeyFile, cb.AESKeyEnv, c.Mode != callback.ModePlain); err != nil {
				return nil, err
			}
			if c.PreviousAESKey, err = secretOf(cp+".previous_aes_key", cb.PreviousAESKeyFile, cb.PreviousAESKeyEnv, false); err != nil {
				return nil, err
			}
			for field, k := range map[string]secret.String{cp + ".aes_key": c.AESKey, cp + ".previous_aes_key": c.PreviousAESKey} {
				if k.IsZero() {
					continue
				}
				if n := len(k.Reveal()); n != 43 {
					return nil, fail(field, "an EncodingAESKey has 43 characters, this one has %d", n)
				}
				if b, err := base64.StdEncoding.DecodeString(k.Reveal() + "="); err != nil || len(b) != 32 {
					return nil, fail(field, "not an EncodingAESKey (43 characters of base64)")
				}
			}
			s.Callback = c
		}
		out = append(out, s)
	}
	return out, nil
}

func lastElem(field string) string { return field[strings.LastIndexByte(field, '.')+1:] }

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fingerprint identifies everything a Spec configures, secrets included,
// without holding them.
func (s Spec) fingerprint() [sha256.Size]byte {
	type cb struct{ Mode, Token, AESKey, Prev string }
	v := struct {
		ID, AppID, Secret, TokenAPI string
		Limits                      map[string]ratelimit.Limit
		DailyQuota                  map[string]int64
		Callback                    *cb
		Mass                        MassSpec
		Protection                  string
		TimeZone                    string
	}{ID: s.ID, AppID: s.AppID, Secret: s.Secret.Reveal(), TokenAPI: s.TokenAPI, Limits: s.Limits, DailyQuota: s.DailyQuota, Mass: s.Mass,
		Protection: fmt.Sprintf("%+v %v", s.Protection, s.Protection.Quiet), TimeZone: s.timeZone()}
	if s.Callback != nil {
		v.Callback = &cb{s.Callback.Mode, s.Callback.Token.Reveal(), s.Callback.AESKey.Reveal(), s.Callback.PreviousAESKey.Reveal()}
	}
	b, _ := json.Marshal(v) // maps marshal in key order
	return sha256.Sum256(b)
}

// timeZone is the name of s's time zone, TimeZoneDefault when it has none.
func (s Spec) timeZone() string {
	if s.Location == nil {
		return TimeZoneDefault
	}
	return s.Location.String()
}

// Changes says what a reload changed, naming accounts and the parts of
// each that changed, never a value.
type Changes struct {
	Added   []string
	Removed []string
	// Changed maps an account's ID to what changed in it: "appsecret",
	// "token_api", "rate", "daily_quota", "protection", "time_zone",
	// "callback".
	Changed map[string][]string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Changed) == 0 }

// Diff compares two configurations.
func Diff(old, cur []Spec) Changes {
	c := Changes{Changed: map[string][]string{}}
	before := make(map[string]Spec, len(old))
	for _, s := range old {
		before[s.ID] = s
	}
	seen := make(map[string]bool, len(cur))
	for _, s := range cur {
		seen[s.ID] = true
		o, ok := before[s.ID]
		if !ok {
			c.Added = append(c.Added, s.ID)
			continue
		}
		if o.fingerprint() == s.fingerprint() {
			continue
		}
		var parts []string
		if o.AppID != s.AppID {
			parts = append(parts, "appid")
		}
		if o.Secret != s.Secret {
			parts = append(parts, "appsecret")
		}
		if o.TokenAPI != s.TokenAPI {
			parts = append(parts, "token_api")
		}
		if fmt.Sprint(o.Limits) != fmt.Sprint(s.Limits) {
			parts = append(parts, "rate")
		}
		if fmt.Sprint(o.DailyQuota) != fmt.Sprint(s.DailyQuota) {
			parts = append(parts, "daily_quota")
		}
		if fmt.Sprintf("%+v %v", o.Protection, o.Protection.Quiet) != fmt.Sprintf("%+v %v", s.Protection, s.Protection.Quiet) {
			parts = append(parts, "protection")
		}
		if o.timeZone() != s.timeZone() {
			parts = append(parts, "time_zone")
		}
		if (o.Callback == nil) != (s.Callback == nil) || (o.Callback != nil && *o.Callback != *s.Callback) {
			parts = append(parts, "callback")
		}
		c.Changed[s.ID] = parts
	}
	for _, s := range old {
		if !seen[s.ID] {
			c.Removed = append(c.Removed, s.ID)
		}
	}
	if len(c.Changed) == 0 {
		c.Changed = nil
	}
	return c
}
