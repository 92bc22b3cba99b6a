package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// walkthroughScript returns the shell commands of the README's "By hand"
// walkthrough: the sh code blocks between its markers.
func walkthroughScript(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "<!-- walkthrough -->")
	require.True(t, ok, "README has a walkthrough")
	section, _, ok := strings.Cut(rest, "<!-- /walkthrough -->")
	require.True(t, ok, "the walkthrough ends")
	var script strings.Builder
	for {
		_, block, ok := strings.Cut(section, "```sh\n")
		if !ok {
			break
		}
		body, after, ok := strings.Cut(block, "```")
		require.True(t, ok, "a code block of the walkthrough ends")
		script.WriteString(body)
		section = after
	}
	require.NotEmpty(t, script.String())
	return script.String()
}

// TestReadmeWalkthrough runs the README's walkthrough command for command
// in bash, with the binary on PATH, its own Redis prefix and two free
// ports in place of 8080 and 9010. Before the last step (which stops the
// servers) each recipient of both campaigns is checked against the fake's
// record.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the README's walkthrough uses curl: install it (apt-get install curl)")
	}
	script := walkthroughScript(t)
	steps, stop, ok := strings.Cut(script, "# 7. Stop both.")
	require.True(t, ok, "the walkthrough's last step stops the servers")
	apiAddr, fakeAddr := freeAddr(t), freeAddr(t)
	ports := strings.NewReplacer("127.0.0.1:8080", apiAddr, "127.0.0.1:9010", fakeAddr)
	steps, stop = ports.Replace(steps), ports.Replace("# 7. Stop both."+stop)

	env := redisEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-s")
	sh.Dir = "../.."
	sh.Env = append([]string{"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
	stdin, err := sh.StdinPipe()
	require.NoError(t, err)
	stdout, err := sh.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	sh.Stderr = &stderr
	require.NoError(t, sh.Start())
	t.Cleanup(func() { _ = syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) })

	const checkpoint = "__walkthrough_steps_done__"
	var out strings.Builder
	reached := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == checkpoint {
				close(reached)
				continue
			}
			out.WriteString(sc.Text() + "\n")
		}
	}()
	_, err = io.WriteString(stdin, "set -euo pipefail\n"+steps+"\necho "+checkpoint+"\n")
	require.NoError(t, err)
	select {
	case <-reached:
	case <-done:
		_ = sh.Wait()
		t.Fatalf("the walkthrough failed before its last step:\nstdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
	case <-ctx.Done():
		t.Fatalf("the walkthrough did not finish its steps in time:\nstderr:\n%s", stderr.String())
	}

	// Each recipient of both campaigns against the fake's own record.
	c := redistest.Client(t, redistest.DBCmd)
	prefix := strings.TrimPrefix(env[1], "WXMASS_REDIS_PREFIX=")
	store := campaigns.NewStore(rdb.New(c, prefix))
	ids, total, err := store.List(ctx, 0, 10)
	require.NoError(t, err)
	require.EqualValues(t, 2, total, "the walkthrough creates two campaigns")
	record, err := truth.Fetch(ctx, "http://"+fakeAddr)
	require.NoError(t, err)
	for _, id := range ids {
		cp, err := store.Get(ctx, id)
		require.NoError(t, err)
		run, err := truth.Load(ctx, store, id, 1)
		require.NoError(t, err)
		rep := truth.Check(record, truth.Options{API: cp.Kind.API(), AppID: wechattest.AppIDDefault}, run)
		t.Logf("%s (%s): %s", id, cp.Kind, rep)
		truth.Require(t, rep)
	}

	_, err = io.WriteString(stdin, stop)
	require.NoError(t, err)
	require.NoError(t, stdin.Close())
	<-done
	require.NoError(t, sh.Wait(), "stderr:\n%s", stderr.String())
	o := out.String()
	t.Logf("walkthrough output:\n%s", o)
	require.Contains(t, o, "stored 3000 recipients")
	require.Contains(t, o, "completed")
	require.Contains(t, o, `"state":"completed"`)
	require.Contains(t, o, "report page: HTTP 200")
	require.Contains(t, o, "asynqmon: HTTP 200")
	require.NotContains(t, o+stderr.String(), wechattest.SecretDefault, "no secret in the output")
}

// TestReadmeCampaignExamples checks the README's campaign JSON examples:
// each file of testdata/campaigns is in the README as it is, decodes with
// no unknown field, and is a valid campaign.
func TestReadmeCampaignExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	files, err := filepath.Glob("../../testdata/campaigns/*.json")
	require.NoError(t, err)
	require.Len(t, files, 5)
	kinds := map[campaigns.Kind]bool{}
	sources := map[campaigns.AudienceSource]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Contains(t, string(readme), "```json\n"+string(raw)+"```", "README shows %s as it is", f)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var c campaigns.Campaign
		require.NoError(t, dec.Decode(&c), f)
		if c.Account == "" {
			c.Account = wechattest.AppIDDefault // the API names the first account
		}
		require.NoError(t, c.Validate(), f)
		kinds[c.Kind] = true
		sources[c.Audience.Source] = true
	}
	require.Len(t, kinds, 4, "an example of each kind")
	require.Len(t, sources, 4, "an example of each audience source")
}
