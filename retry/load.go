package retry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// RulesMaxBytes is the longest rules file LoadRules reads. The default table
// is a few kilobytes; anything near this size is a mistake.
const RulesMaxBytes = 1 << 20

// Field names of a rule in the rules file.
const (
	fieldCode        = "code"
	fieldClass       = "class"
	fieldDelay       = "delay"
	fieldMaxAttempts = "max_attempts"
	fieldMeaning     = "meaning"
)

// LoadRules reads rules from YAML, so that operators can override and extend
// the default table without a rebuild. The file is one list of rules:
//
//	# rules.yaml
//	- code: 43117
//	  class: retry      # ok, refresh_token, retry, recipient, message, fatal or quota
//	  delay: 2h         # exponential, next_minute, quota_reset or a Go duration
//	  max_attempts: 3   # tries in all, the first included (retry, refresh_token)
//	  meaning: per-user frequency limit
//
// code and class are required. An empty file yields no rules.
//
// Reading is strict: an unknown or repeated field, a value of the wrong type,
// a delay the class cannot use and a code listed twice are errors. Each is a
// *RuleError whose message names the line and the field or value, such as
// `retry: rules: line 3: class "retyr" is not one of ok, refresh_token, ...`;
// YAML syntax errors name the line too. The returned rules are checked as New
// checks Config.Rules, but their defaults are not filled in yet.
//
// The decoder walks the YAML node tree itself instead of decoding into a
// struct with yaml's KnownFields(true): it rejects unknown fields just as
// strictly, and it can name the line of every value, which the struct
// decoder cannot for missing fields and value errors.
func LoadRules(r io.Reader) ([]Rule, error) {
	b, err := io.ReadAll(io.LimitReader(r, RulesMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("retry: read rules: %w", err)
	}
	if len(b) > RulesMaxBytes {
		return nil, ErrRulesTooLarge
	}

	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("retry: rules: %w", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &RuleError{Line: extra.Line, Reason: "a second YAML document; the rules file is one list"}
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("retry: rules: %w", err)
	}

	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &RuleError{Line: doc.Line, Reason: "the rules file must be a list of rules"}
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, &RuleError{Line: root.Line, Reason: "the rules file must be a list of rules, not " + describe(root)}
	}

	rules := make([]Rule, 0, len(root.Content))
	codeLines := make(map[int]int, len(root.Content))
	for _, item := range root.Content {
		rule, lines, err := parseRule(resolve(item))
		if err != nil {
			return nil, err
		}
		if first, dup := codeLines[rule.Code]; dup {
			return nil, &RuleError{Line: lines[fieldCode], Code: rule.Code, Field: fieldCode,
				Reason: fmt.Sprintf("code %d is already given at line %d", rule.Code, first)}
		}
		codeLines[rule.Code] = lines[fieldCode]
		rules = append(rules, rule)
	}
	return rules, nil
}

// parseRule reads one rule from a mapping node. It returns the rule and the
// line of each field that was given.
func parseRule(n *yaml.Node) (Rule, map[string]int, error) {
	var rule Rule
	lines := make(map[string]int, 5)
	if n.Kind != yaml.MappingNode {
		return rule, nil, &RuleError{Line: n.Line, Reason: "a rule must be a mapping of code, class, delay, max_attempts and meaning, not " + describe(n)}
	}
	fail := func(v *yaml.Node, field, reason string) (Rule, map[string]int, error) {
		return rule, nil, &RuleError{Line: v.Line, Code: rule.Code, Field: field, Reason: reason}
	}

	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return fail(k, "", "a field name must be a plain word, not "+describe(k))
		}
		field := k.Value
		if first, dup := lines[field]; dup {
			return fail(k, field, fmt.Sprintf("field %q is given twice (first at line %d)", field, first))
		}
		switch field {
		case fieldCode, fieldClass, fieldDelay, fieldMaxAttempts, fieldMeaning:
		default:
			return fail(k, field, fmt.Sprintf("unknown field %q (want %s, %s, %s, %s or %s)",
				field, fieldCode, fieldClass, fieldDelay, fieldMaxAttempts, fieldMeaning))
		}
		lines[field] = v.Line
		if v.Kind != yaml.ScalarNode {
			return fail(v, field, fmt.Sprintf("%s must be a single value, not %s", field, describe(v)))
		}
		if isNull(v) {
			return fail(v, field, fmt.Sprintf("%s is empty", field))
		}

		switch field {
		case fieldCode:
			code, ok := intValue(v)
			if !ok {
				return fail(v, field, fmt.Sprintf("code %q is not an integer errcode", v.Value))
			}
			rule.Code = code
		case fieldClass:
			c, err := ParseClass(v.Value)
			if err != nil {
				return fail(v, field, fmt.Sprintf("class %q is not one of %s", v.Value, ruleClassList()))
			}
			rule.Class = c
		case fieldDelay:
			d, ok := parseDelay(v.Value)
			if !ok {
				return fail(v, field, fmt.Sprintf("delay %q is not exponential, next_minute, quota_reset or a Go duration such as 2h", v.Value))
			}
			rule.Delay = d
		case fieldMaxAttempts:
			m, ok := intValue(v)
			if !ok {
				return fail(v, field, fmt.Sprintf("max_attempts %q is not an integer", v.Value))
			}
			rule.MaxAttempts = m
		case fieldMeaning:
			rule.Meaning = v.Value
		}
	}

	for _, field := range []string{fieldCode, fieldClass} {
		if _, ok := lines[field]; !ok {
			return fail(n, field, fmt.Sprintf("rule has no %s", field))
		}
	}
	if field, reason := rule.check(); reason != "" {
		line, ok := lines[field]
		if !ok {
			line = n.Line
		}
		return rule, nil, &RuleError{Line: line, Code: rule.Code, Field: field, Reason: reason}
	}
	return rule, lines, nil
}

// parseDelay reads a delay of the rules file: "exponential", "next_minute",
// "quota_reset" or a positive Go duration.
func parseDelay(s string) (DelaySpec, bool) {
	switch s {
	case "exponential":
		return ExponentialDefault(), true
	case "next_minute":
		return NextMinute(NextMinuteSpreadDefault), true
	case "quota_reset":
		return UntilQuotaReset(), true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return DelaySpec{}, false
	}
	return Fixed(d), true
}

// intValue reads an integer scalar that fits in 32 bits (every errcode and
// any sane budget does).
func intValue(n *yaml.Node) (int, bool) {
	if n.ShortTag() != "!!int" {
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int(v), true
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an empty or null scalar.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of n for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", truncate(n.Value, 40))
	}
	return "this node"
}

// truncate shortens s to at most n bytes of whole runes for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cutting may split a rune; ToValidUTF8 drops the broken tail.
	return strings.ToValidUTF8(s[:n], "") + "..."
}
