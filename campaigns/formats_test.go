package campaigns_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/wxmass/wxmass/internal/i18n"
)

// formatCalls names the functions whose argument at the index is an English
// validation format (or, for Phrase, a phrase used as an argument of one),
// which the console translates.
var formatCalls = map[string]int{"addf": 1, "reasonf": 0, "quietHoursError": 1, "Phrase": 0}

// validationFormats returns every format literal passed to formatCalls in
// the package's Go source (tests excluded), with where it is.
func validationFormats(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			if fd, ok := n.(*ast.FuncDecl); ok && (fd.Name.Name == "addReason" || fd.Name.Name == "quietHoursError") {
				return false // they forward a format
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name string
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			i, ok := formatCalls[name]
			if !ok || len(call.Args) <= i {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			require.True(t, ok && lit.Kind == token.STRING, "%s: %s's format is not a string literal: the console could not translate it", fset.Position(call.Pos()), name)
			s, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			out[s] = fset.Position(call.Pos()).String()
			return true
		})
	}
	return out
}

var verbRE = regexp.MustCompile(`%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]`)

// verbs returns the fmt verbs of format in order, %% left out.
func verbs(format string) []string {
	var out []string
	for _, v := range verbRE.FindAllString(format, -1) {
		if v != "%%" {
			out = append(out, v)
		}
	}
	return out
}

// TestValidationFormatsTranslated: every validation message's format, and
// every phrase an argument names, has a Chinese translation with the same
// fmt verbs in the same order, so that the console shows a field's problem
// in the user's language.
func TestValidationFormatsTranslated(t *testing.T) {
	t.Parallel()
	formats := validationFormats(t)
	require.Greater(t, len(formats), 80, "the walk found the validation's formats")
	cat := i18n.Default()
	raw, err := os.ReadFile(filepath.Join("..", "internal", "i18n", "locales", "zh-CN", "validation.formats.yaml"))
	require.NoError(t, err)
	var zhFormats map[string]string
	require.NoError(t, yaml.Unmarshal(raw, &zhFormats))
	if os.Getenv("DUMP_FORMATS") != "" {
		for f := range formats {
			fmt.Printf("%s\n", strconv.Quote(f))
		}
	}
	var missing []string
	for f, at := range formats {
		if !cat.Has(i18n.Chinese, f) {
			missing = append(missing, at+": "+strconv.Quote(f))
			continue
		}
		require.True(t, cat.IsFormat(f), "%q is in a *.formats.yaml file", f)
		zh := zhFormats[f]
		require.Equal(t, verbs(f), verbs(zh), "the translation of %q keeps its verbs in order: %q", f, zh)
	}
	slices.Sort(missing)
	require.Empty(t, missing, "add these to internal/i18n/locales/zh-CN/validation.formats.yaml")
}
