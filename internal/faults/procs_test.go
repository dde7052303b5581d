//go:build faults

package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one process of the deployment, restartable with the same arguments.
type proc struct {
	name  string
	bin   string
	args  []string
	env   []string
	dir   string
	ready string // a line on stdout that says it is up ("" : up at once)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer // the last run's first stdout lines
}

func (p *proc) logPath() string { return filepath.Join(p.dir, p.name+".log") }

// start runs the process and waits for its ready line.
func (p *proc) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	// Readiness may be said on either stream: both go to one pipe (and to the log).
	stdout, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start(), p.name)
	w.Close()
	ready := make(chan struct{})
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.out.Reset()
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			p.mu.Lock()
			if p.out.Len() < 8<<10 {
				p.out.WriteString(line + "\n")
			}
			p.mu.Unlock()
			if !signalled && p.ready != "" && strings.Contains(line, p.ready) {
				close(ready)
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	if p.ready == "" {
		return
	}
	select {
	case <-ready:
	case <-done:
		t.Fatalf("%s exited before it was ready; log:\n%s", p.name, tail(p.logPath(), 40))
	case <-time.After(90 * time.Second):
		t.Fatalf("%s not ready after 90 s; log:\n%s", p.name, tail(p.logPath(), 40))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() { p.signal(syscall.SIGKILL) }

// stop sends SIGTERM, and SIGKILL after 20 s.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-done
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s", url, within)
}

// cluster is a private PostgreSQL cluster the suite may stop: never the shared one.
type cluster struct {
	version, name string
	port          int
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	entries, err := os.ReadDir("/etc/postgresql")
	require.NoError(t, err, "PostgreSQL's Debian cluster tools are needed")
	require.NotEmpty(t, entries)
	c := &cluster{version: entries[0].Name(), name: "bffaults" + strconv.Itoa(os.Getpid()), port: freePort(t)}
	run(t, "pg_createcluster", c.version, c.name, "-p", strconv.Itoa(c.port), "--", "--auth=trust")
	t.Cleanup(func() {
		out, err := exec.Command("pg_dropcluster", "--stop", c.version, c.name).CombinedOutput()
		if err != nil {
			t.Logf("drop the private cluster: %v: %s", err, out)
		}
	})
	c.start(t)
	return c
}

func (c *cluster) start(t *testing.T) {
	t.Helper()
	run(t, "pg_ctlcluster", "--skip-systemctl-redirect", c.version, c.name, "start")
}

func (c *cluster) stop(t *testing.T) {
	t.Helper()
	run(t, "pg_ctlcluster", "--skip-systemctl-redirect", c.version, c.name, "stop", "-m", "fast")
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// within runs f until it returns true or the context ends.
func within(ctx context.Context, every time.Duration, f func() bool) bool {
	for {
		if f() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(every):
		}
	}
}
