package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/testenv"
)

// cliUnderTest makes this test binary run as the breachflow command, so that a shell
// can run the README's lines through it as through bin/breachflow.
const cliUnderTest = "BREACHFLOW_TEST_BINARY_IS_THE_CLI"

func init() {
	if os.Getenv(cliUnderTest) == "1" {
		main()
	}
}

// readmeBlock returns the lines of the first ```sh block under heading in README.md.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(raw)
	at := strings.Index(s, "\n"+heading+"\n")
	require.GreaterOrEqual(t, at, 0, "README.md has no %q", heading)
	s = s[at:]
	start := strings.Index(s, "\n```sh\n")
	require.GreaterOrEqual(t, start, 0, "no ```sh block under %q", heading)
	s = s[start+len("\n```sh\n"):]
	end := strings.Index(s, "\n```")
	require.GreaterOrEqual(t, end, 0)
	return strings.Split(s[:end], "\n")
}

// shell is one bash process fed lines one at a time, as a person types them.
type shell struct {
	t     *testing.T
	stdin io.WriteCloser
	lines chan string
}

// sentinel ends the output of one line, with its exit status.
var sentinel = regexp.MustCompile(`^__readme_rc=(\d+)__$`)

func startShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Dir, cmd.Env = dir, env
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sh := &shell{t: t, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			sh.lines <- sc.Text()
		}
		close(sh.lines)
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	// One stream: what a line printed on stderr comes before its sentinel.
	_, status := sh.run("exec 2>&1")
	require.Equal(t, "0", status)
	return sh
}

// run types line and returns what it printed and its exit status.
func (sh *shell) run(line string) (string, string) {
	_, err := fmt.Fprintf(sh.stdin, "%s\necho \"__readme_rc=$?__\"\n", line)
	require.NoError(sh.t, err)
	return sh.wait()
}

func (sh *shell) wait() (out, status string) {
	var b strings.Builder
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-sh.lines:
			require.True(sh.t, ok, "the shell ended; it printed:\n%s", b.String())
			if m := sentinel.FindStringSubmatch(l); m != nil {
				return b.String(), m[1]
			}
			b.WriteString(l + "\n")
		case <-timeout:
			sh.t.Fatalf("a line ran for more than two minutes; it printed:\n%s", b.String())
		}
	}
}

var (
	createRe      = regexp.MustCompile(`apikey create --name (\S+)`)
	keyRe         = regexp.MustCompile(`(?m)^(bf_[A-Za-z0-9_-]+)$`)
	personKeyRe   = regexp.MustCompile(`<([a-z]+)'s key>`)
	reviewRowRe   = regexp.MustCompile(`(?m)^(\d+)\s+INC-`)
	placeholderRe = regexp.MustCompile(`<[^>]+>`)
)

// TestREADMEIncidentFromTheCommandLine runs the README's walkthrough ("An incident from
// the command line") as written, line by line, in a fresh bash after dev started: the
// environment holds nothing of breachflow's, bin/breachflow is this test binary acting
// as the CLI, and the placeholders take what earlier lines printed (dev's admin key and
// URL, each person's key, the review id `partner pending` lists). Every line must
// succeed. `incident watch` runs until the incident is closed, so it gets the Ctrl-C a
// person would give it (SIGINT after a few seconds).
func TestREADMEIncidentFromTheCommandLine(t *testing.T) {
	block := readmeBlock(t, "### An incident from the command line")
	d := startDevOn(t, testenv.EmptyDatabaseURL(t), t.TempDir(), 30)

	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "breachflow")
	require.NoError(t, os.WriteFile(bin, fmt.Appendf(nil, "#!/bin/sh\n%s=1 exec '%s' \"$@\"\n", cliUnderTest, self), 0o755))
	home := t.TempDir()
	sh := startShell(t, "../..", []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"})

	keys := map[string]string{}
	review := ""
	var watched string
	ran := 0
	for _, line := range block {
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		typed := strings.ReplaceAll(line, "bin/breachflow", bin)
		typed = strings.ReplaceAll(typed, "http://127.0.0.1:8080", d.apiURL)
		typed = strings.ReplaceAll(typed, "<admin key>", d.key)
		typed = personKeyRe.ReplaceAllStringFunc(typed, func(p string) string {
			name := personKeyRe.FindStringSubmatch(p)[1]
			require.Contains(t, keys, name, "%q uses %s before a line created it", line, p)
			return keys[name]
		})
		if strings.Contains(typed, "<review>") {
			require.NotEmpty(t, review, "%q: no earlier `partner pending` listed a review", line)
			typed = strings.ReplaceAll(typed, "<review>", review)
		}
		require.NotRegexp(t, placeholderRe, strings.SplitN(typed, "#", 2)[0], "a placeholder the test does not know: %q", line)
		watch := strings.Contains(line, "incident watch")
		if watch {
			// One Ctrl-C, as a terminal sends it: without --foreground, timeout signals the
			// command and then its whole process group, so a second SIGINT could find the
			// watch already past its handler.
			typed = "timeout --foreground --preserve-status -s INT 5 " + strings.TrimLeft(typed, " ")
		}

		out, status := sh.run(typed)
		// The partner's review opens once the workflow has both approvals: look again,
		// as a person would, until it is listed.
		for deadline := time.Now().Add(time.Minute); strings.Contains(line, "partner pending") && status == "0" &&
			!reviewRowRe.MatchString(out) && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			out, status = sh.run(typed)
		}
		require.Equal(t, "0", status, "README line failed:\n  %s\nit printed:\n%s", line, out)
		ran++

		if m := createRe.FindStringSubmatch(line); m != nil {
			k := keyRe.FindStringSubmatch(out)
			require.NotNil(t, k, "%q printed no key:\n%s", line, out)
			keys[m[1]] = k[1]
		}
		if strings.Contains(line, "partner pending") {
			m := reviewRowRe.FindStringSubmatch(out)
			require.NotNil(t, m, "no review listed:\n%s", out)
			review = m[1]
		}
		if watch {
			watched = out
		}
	}
	require.GreaterOrEqual(t, ran, 15, "the walkthrough's commands ran")
	require.Contains(t, keys, "rita")
	require.NotEmpty(t, review)
	require.Contains(t, watched, "notified [", "watch printed the tenants' progress:\n%s", watched)
	require.Contains(t, watched, "partner  devicecare", watched)
	require.NotContains(t, watched, "\x1b", "watch prints lines into a pipe")

	// The walkthrough's incident was closed at the end.
	require.Eventually(t, func() bool {
		out, status := sh.run(bin + ` incident show "$ID" --json`)
		require.Equal(t, "0", status, out)
		return strings.Contains(out, `"stage":"closed"`)
	}, 30*time.Second, 500*time.Millisecond)
}
