package retry

import (
	"errors"
	"strconv"
)

// ErrRulesTooLarge is returned by LoadRules when its input is longer than
// RulesMaxBytes.
var ErrRulesTooLarge = errors.New("retry: rules file too large")

// RuleError is an invalid rule, either in a rules file read by LoadRules
// (Line is set) or in Config.Rules passed to New (Line is 0 and Code names
// the rule).
//
// Its message names the line or the errcode, the field and the value, for
// example `retry: rules: line 4: class "retyr" is not one of ok, ...`.
type RuleError struct {
	// Line is the 1-based line of the rules file the error is about, or 0
	// when the rule did not come from a file.
	Line int
	// Code is the errcode of the rule when it is known.
	Code int
	// Field is the rule's field at fault: "code", "class", "delay",
	// "max_attempts", "meaning", or the unknown field's name. It is empty
	// when the whole rule (or file) is at fault.
	Field string
	// Reason says what is wrong and names the value.
	Reason string
}

// Error returns the message, which starts with "retry: rules: line N: " for
// a file and with "retry: rule for errcode N: " for Config.Rules.
func (e *RuleError) Error() string {
	if e.Line > 0 {
		return "retry: rules: line " + strconv.Itoa(e.Line) + ": " + e.Reason
	}
	return "retry: rule for errcode " + strconv.Itoa(e.Code) + ": " + e.Reason
}
