package wechattest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// fileConfig is the YAML form of Config. Its keys are the snake_case names
// of Config's fields; quota_location is an IANA zone name such as "UTC".
// "Asia/Shanghai" is read as a fixed UTC+8, so it needs no zone database.
type fileConfig struct {
	Accounts             []Account           `yaml:"accounts"`
	TemplateIDs          []string            `yaml:"template_ids"`
	SubscribeTemplateIDs []string            `yaml:"subscribe_template_ids"`
	TemplateKeywords     map[string][]string `yaml:"template_keywords"`
	MediaIDs             []string            `yaml:"media_ids"`
	KFAccounts           []string            `yaml:"kf_accounts"`
	Followers            int                 `yaml:"followers"`
	FollowerIDs          []string            `yaml:"follower_ids"`
	Tags                 map[int64][]string  `yaml:"tags"`
	RequireFollower      bool                `yaml:"require_follower"`
	Terminal             map[string]int      `yaml:"terminal"`
	CSWindow             bool                `yaml:"cs_window"`
	Limits               map[string]Limit    `yaml:"limits"`
	PageSize             int                 `yaml:"page_size"`
	Faults               Faults              `yaml:"faults"`
	Seed                 int64               `yaml:"seed"`
	TimeScale            float64             `yaml:"time_scale"`
	QuotaLocation        string              `yaml:"quota_location"`
	Callback             Callback            `yaml:"callback"`
	Mass                 MassConfig          `yaml:"mass"`
}

// LoadConfig reads a Config from YAML, such as:
//
//	accounts:
//	  - app_id: wx00000000000fake1
//	    secret: fakesecret-0123456789abcdef0123456
//	template_ids: [TPL_ORDER_SHIPPED]
//	followers: 100000
//	terminal: {oAAAAAAAAAAAAAAAAAAAAAAAAAAA: 43004}
//	cs_window: true
//	limits:
//	  message/template/send: {per_second: 500, daily: 100000}
//	faults: {system_error: 0.01, slow: 0.001, slow_delay: 3s, latency: 20ms}
//	seed: 42
//	time_scale: 60
//	quota_location: Asia/Shanghai
//	callback:
//	  url: http://127.0.0.1:8080/wechat/callback
//	  token: callbacktoken
//	  mode: safe
//	  aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
//	  delay: 2s
//	  blocked: [oAAAAAAAAAAAAAAAAAAAAAAAAAAA]
//
// Unknown keys, wrong types and more than one document are errors naming
// the line; invalid values are *ConfigError values naming the key and line.
// An empty document is the zero Config. NowFunc is not configurable.
func LoadConfig(r io.Reader) (Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return Config{}, fmt.Errorf("wechattest: read config: %w", err)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, nil
		}
		return Config{}, fmt.Errorf("wechattest: load config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("wechattest: load config: line %d: more than one YAML document", extra.Line)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return Config{}, fmt.Errorf("wechattest: load config: %w", err)
	}

	cfg := Config{
		Accounts:             fc.Accounts,
		TemplateIDs:          fc.TemplateIDs,
		SubscribeTemplateIDs: fc.SubscribeTemplateIDs,
		TemplateKeywords:     fc.TemplateKeywords,
		MediaIDs:             fc.MediaIDs,
		KFAccounts:           fc.KFAccounts,
		Followers:            fc.Followers,
		FollowerIDs:          fc.FollowerIDs,
		Tags:                 fc.Tags,
		RequireFollower:      fc.RequireFollower,
		Terminal:             fc.Terminal,
		CSWindow:             fc.CSWindow,
		Limits:               fc.Limits,
		PageSize:             fc.PageSize,
		Faults:               fc.Faults,
		Seed:                 fc.Seed,
		TimeScale:            fc.TimeScale,
		Callback:             fc.Callback,
		Mass:                 fc.Mass,
	}
	switch fc.QuotaLocation {
	case "":
	case quotaLocationDefault().String():
		// UTC+8 exactly, without needing the zone database.
		cfg.QuotaLocation = quotaLocationDefault()
	default:
		loc, err := time.LoadLocation(fc.QuotaLocation)
		if err != nil {
			ce := configErrorf(fieldPath(fieldElem("QuotaLocation", "quota_location")), "%v", err)
			ce.Line = lineOf(&root, ce.path)
			return Config{}, ce
		}
		cfg.QuotaLocation = loc
	}
	if _, err := cfg.validate(); err != nil {
		return Config{}, withLine(err, &root)
	}
	if _, err := newFollowerList(cfg.Seed, cfg.Followers, cfg.FollowerIDs); err != nil {
		return Config{}, withLine(err, &root)
	}
	return cfg, nil
}

// withLine adds the YAML line to a *ConfigError.
func withLine(err error, root *yaml.Node) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.Line = lineOf(root, ce.path)
	}
	return err
}

// lineOf returns the line of the node at p in the document root, or of the
// deepest node of p that exists.
func lineOf(root *yaml.Node, p []pathElem) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, el := range p {
		next := childNode(n, el)
		if next == nil {
			break
		}
		n = next
	}
	return n.Line
}

// childNode returns the node that el selects below n, or nil.
func childNode(n *yaml.Node, el pathElem) *yaml.Node {
	if el.isIndex {
		if n.Kind == yaml.SequenceNode && el.index < len(n.Content) {
			return n.Content[el.index]
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if (!el.isKey && k == el.yamlName) || (el.isKey && (k == el.key || sameInt(k, el.key))) {
			return n.Content[i+1]
		}
	}
	return nil
}

// sameInt reports whether two YAML scalars are the same integer (tag ids may
// be written as 0x10 or 16).
func sameInt(a, b string) bool {
	x, err1 := strconv.ParseInt(a, 0, 64)
	y, err2 := strconv.ParseInt(b, 0, 64)
	return err1 == nil && err2 == nil && x == y
}
