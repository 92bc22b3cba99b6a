package check

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// dockerfile is deploy/Dockerfile parsed by BuildKit's own parser.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs map[string]string
	lint     []string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, deployPath("Dockerfile"))))
	require.NoError(t, err)
	var lint []string
	lin := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		lint = append(lint, fmt.Sprintf("%s: %s (line %d)", rule, msg, loc[0].Start.Line))
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lin)
	require.NoError(t, err)
	for _, w := range res.Warnings {
		lint = append(lint, w.Short)
	}
	df := dockerfile{stages: stages, metaArgs: map[string]string{}, lint: lint}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				df.metaArgs[kv.Key] = *kv.Value
			}
		}
	}
	return df
}

// expand expands ${ARG} of a FROM with the meta ARGs' defaults.
func (df dockerfile) expand(t *testing.T, s string) string {
	t.Helper()
	out, _, err := shell.NewLex('\\').ProcessWord(s, shell.EnvsFromSlice(envSlice(df.metaArgs)))
	require.NoError(t, err)
	return out
}

func envSlice(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// stageEnv is the ENV a stage sets, in order.
func stageEnv(st instructions.Stage) map[string]string {
	env := map[string]string{}
	for _, c := range st.Commands {
		if e, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range e.Env {
				env[kv.Key] = kv.Value
			}
		}
	}
	return env
}

// finalStage is the image's stage and buildStage the one its binary comes
// from.
func (df dockerfile) finalStage() instructions.Stage { return df.stages[len(df.stages)-1] }

func (df dockerfile) buildStage(t *testing.T) (instructions.Stage, *instructions.CopyCommand) {
	t.Helper()
	for _, c := range df.finalStage().Commands {
		cp, ok := c.(*instructions.CopyCommand)
		if !ok || cp.From == "" {
			continue
		}
		for _, st := range df.stages {
			if st.Name == cp.From {
				return st, cp
			}
		}
		t.Fatalf("COPY --from=%s: no such stage", cp.From)
	}
	t.Fatal("the final stage copies nothing from a build stage")
	return instructions.Stage{}, nil
}

// exposedPorts are the final stage's EXPOSE ports.
func (df dockerfile) exposedPorts() map[string]bool {
	out := map[string]bool{}
	for _, c := range df.finalStage().Commands {
		if e, ok := c.(*instructions.ExposeCommand); ok {
			for _, p := range e.Ports {
				out[strings.TrimSuffix(p, "/tcp")] = true
			}
		}
	}
	return out
}

var goVersionRE = regexp.MustCompile(`^golang:(\d+\.\d+)(?:\.\d+)?(?:-([a-z]+))?$`)

// TestDockerfile checks deploy/Dockerfile as BuildKit parses it: multi-stage,
// a golang bookworm builder of the Go version go.mod names, CGO off,
// -trimpath and -ldflags "-s -w", modules downloaded in their own layer
// before the sources are copied, and a small final image that runs the
// binary as a numeric non-root user and exposes 8080 and 9090.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := parseDockerfile(t)
	require.Empty(t, df.lint, "BuildKit's Dockerfile linter (what `docker build --check` runs)")
	require.GreaterOrEqual(t, len(df.stages), 2, "multi-stage")

	build, cp := df.buildStage(t)
	base := df.expand(t, build.BaseName)
	m := goVersionRE.FindStringSubmatch(base)
	require.NotNilf(t, m, "build stage FROM %s: want golang:<version>-bookworm", base)
	require.Equal(t, "bookworm", m[2], "build stage base")
	mf, err := modfile.Parse("go.mod", readFile(t, filepath.Join(repoRoot, "go.mod")), nil)
	require.NoError(t, err)
	require.Truef(t, strings.HasPrefix(mf.Go.Version, m[1]+".") || mf.Go.Version == m[1],
		"build stage Go %s, go.mod says go %s", m[1], mf.Go.Version)

	env := stageEnv(build)
	require.Equal(t, "0", env["CGO_ENABLED"], "build stage ENV CGO_ENABLED")

	// Layer order: COPY go.mod go.sum, RUN go mod download, then COPY . .
	var steps []string
	var buildCmd string
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			steps = append(steps, "COPY "+strings.Join(c.SourcePaths, " "))
		case *instructions.RunCommand:
			line := strings.Join(c.CmdLine, " ")
			steps = append(steps, "RUN "+line)
			if strings.Contains(line, "go build") {
				buildCmd = line
			}
		}
	}
	require.GreaterOrEqual(t, len(steps), 4, "build steps: %q", steps)
	require.Equal(t, "COPY go.mod go.sum", steps[0])
	require.Contains(t, steps[1], "go mod download")
	require.Equal(t, "COPY .", steps[2])
	require.NotEmpty(t, buildCmd, "a RUN with go build")
	for _, want := range []string{"-trimpath", `-ldflags "-s -w"`, "./cmd/wxmass", "-o " + cp.SourcePaths[0]} {
		require.Contains(t, buildCmd, want, "the go build command")
	}

	final := df.finalStage()
	finalBase := df.expand(t, final.BaseName)
	require.Truef(t, finalBase == "scratch" || strings.HasPrefix(finalBase, "gcr.io/distroless/static"),
		"final stage FROM %s: want distroless/static or scratch", finalBase)
	require.Equal(t, []string{"/wxmass"}, []string{cp.DestPath}, "the binary's place in the image")
	var user string
	var entrypoint []string
	var entrypointShell bool
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint, entrypointShell = c.CmdLine, c.PrependShell
		}
	}
	uid, gid, _ := strings.Cut(user, ":")
	for _, id := range []string{uid, gid} {
		n, err := strconv.Atoi(id)
		require.NoErrorf(t, err, "USER %q: want numeric uid:gid, so that Kubernetes' runAsNonRoot can check it", user)
		require.NotZerof(t, n, "USER %q runs as root", user)
	}
	require.False(t, entrypointShell, "ENTRYPOINT in exec (JSON) form, so that SIGTERM reaches wxmass")
	require.Equal(t, []string{"/wxmass"}, entrypoint)
	require.Equal(t, map[string]bool{"8080": true, "9090": true}, df.exposedPorts(), "EXPOSE")
}

// TestDockerfileBuild builds the binary the way deploy/Dockerfile's build
// stage does: the build context is what Dockerfile.dockerignore lets
// through, its COPY and RUN steps run in order with the stage's ENV, and
// the result must be a static, stripped ELF that embeds the time zone
// database and runs.
func TestDockerfileBuild(t *testing.T) {
	t.Parallel()
	bin := dockerBuiltBinary(t)

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary asks for a dynamic loader: not static")
		require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary has a dynamic section: not static")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "shared libraries")
	_, err = f.Symbols()
	require.ErrorIs(t, err, elf.ErrNoSymbols, "-ldflags -s strips the symbol table")

	bi, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	require.Equal(t, "0", settings["CGO_ENABLED"])
	require.Equal(t, "true", settings["-trimpath"])
	// (go omits -ldflags from the build info under -trimpath: check its
	// effects instead.)
	for _, sec := range f.Sections {
		require.Falsef(t, strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_"),
			"section %s: -ldflags -w drops the DWARF data", sec.Name)
	}
	require.Contains(t, strings.Split(settings["-tags"], ","), "timetzdata", "the time zone database is embedded")

	out, err := exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "wxmass version")
	out, err = exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, sub := range []string{"serve", "worker", "fakewechat"} {
		require.Contains(t, string(out), "   "+sub+" ")
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// dockerBuiltBinary returns the wxmass binary built as deploy/Dockerfile
// builds it (see TestDockerfileBuild), building it on first use.
func dockerBuiltBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = buildLikeDockerfile(t) })
	require.NoError(t, binErr, "building wxmass as deploy/Dockerfile does")
	return binPath
}

func buildLikeDockerfile(t *testing.T) (string, error) {
	df := parseDockerfile(t)
	build, cp := df.buildStage(t)
	if runtime.GOOS != "linux" {
		return "", errors.New("the image is linux: build on linux")
	}
	ignore, err := os.Open(deployPath("Dockerfile.dockerignore"))
	if err != nil {
		return "", err
	}
	patterns, err := ignorefile.ReadAll(ignore)
	ignore.Close()
	if err != nil {
		return "", err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return "", err
	}
	workdir := filepath.Join(scratch, "src")
	outDir := filepath.Join(scratch, "out")
	if err := os.MkdirAll(workdir, 0o755); err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	// The image's /out (the directory COPY --from takes the binary from)
	// is outDir here.
	imageOut := path.Dir(cp.SourcePaths[0])
	env := append(os.Environ(), envSlice(stageEnv(build))...)
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				return "", fmt.Errorf("COPY --from in the build stage is not simulated")
			}
			for _, src := range c.SourcePaths {
				if err := copyContext(pm, src, filepath.Join(workdir, c.DestPath)); err != nil {
					return "", fmt.Errorf("COPY %s: %w", src, err)
				}
			}
		case *instructions.RunCommand:
			line := strings.ReplaceAll(strings.Join(c.CmdLine, " "), imageOut+"/", outDir+"/")
			cmd := exec.Command("/bin/sh", "-c", line)
			cmd.Dir, cmd.Env = workdir, env
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("RUN %s: %v\n%s", line, err, out)
			}
		case *instructions.WorkdirCommand, *instructions.EnvCommand, *instructions.ArgCommand:
		default:
			return "", fmt.Errorf("%s: instruction not simulated", c.Name())
		}
	}
	bin := filepath.Join(outDir, path.Base(cp.SourcePaths[0]))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("the build stage made no %s: %w", cp.SourcePaths[0], err)
	}
	return bin, nil
}

// copyContext copies src of the build context (the repository root, less
// what the dockerignore patterns exclude) into dst, as COPY does.
func copyContext(pm *patternmatcher.PatternMatcher, src, dst string) error {
	root := filepath.Join(repoRoot, filepath.FromSlash(src))
	if fi, err := os.Stat(root); err != nil {
		return err
	} else if !fi.IsDir() {
		if excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(filepath.Clean(src))); err != nil || excluded {
			return fmt.Errorf("excluded by the dockerignore file (%v)", err)
		}
		return copyFile(root, filepath.Join(dst, filepath.Base(root)))
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." {
			excluded, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if excluded {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		inner, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, inner)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
