package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/logging"
)

// temporalArgsEnv carries, as a JSON array, the arguments TestTemporalSubprocess runs the
// CLI with when this test binary is started again as `breachflow temporal`.
const temporalArgsEnv = "BREACHFLOW_TEST_CLI_ARGS"

// TestTemporalSubprocess is the child side of the re-exec: the CLI, as main runs it.
func TestTemporalSubprocess(t *testing.T) {
	raw := os.Getenv(temporalArgsEnv)
	if raw == "" {
		t.Skip("runs only as the subprocess of TestTemporalServerSurvivesSIGKILL")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, "breachflow:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "breachflow:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// temporalProc is a `breachflow temporal` process.
type temporalProc struct {
	cmd      *exec.Cmd
	addr, ns string
	exited   chan error
}

var readyLine = regexp.MustCompile(`^temporal listening on (\S+) namespace (\S+) db (.+)$`)

// startTemporalProc runs `breachflow temporal` with args in a process of its own and
// returns once it printed its ready line.
func startTemporalProc(t *testing.T, args ...string) *temporalProc {
	t.Helper()
	raw, err := json.Marshal(append([]string{"temporal"}, args...))
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTemporalSubprocess$")
	cmd.Env = append(os.Environ(), temporalArgsEnv+"="+string(raw), "BREACHFLOW_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	began := time.Now()
	require.NoError(t, cmd.Start())
	p := &temporalProc{cmd: cmd, exited: make(chan error, 1)}
	t.Cleanup(func() { p.kill(t) })

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if readyLine.MatchString(sc.Text()) {
				lines <- sc.Text()
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.exited <- cmd.Wait()
	}()
	select {
	case line := <-lines:
		m := readyLine.FindStringSubmatch(line)
		p.addr, p.ns = m[1], m[2]
		t.Logf("temporal pid %d ready on %s in %s", cmd.Process.Pid, p.addr, time.Since(began).Round(time.Millisecond))
	case err := <-p.exited:
		t.Fatalf("temporal exited before it was ready: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("temporal printed no ready line within a minute")
	}
	return p
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *temporalProc) kill(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Error("temporal did not exit after SIGKILL")
	}
}

// rss reports the resident set of the process, where /proc tells it.
func (p *temporalProc) rss() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// awaitSignal returns the value of the first "go" signal.
func awaitSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return v, nil
}

func TestTemporalServerSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal server processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dbFile := filepath.Join(t.TempDir(), "temporal.db")

	first := startTemporalProc(t, "--db-file", dbFile, "--listen", "127.0.0.1:0", "--namespace", "fault-suite")
	require.Equal(t, "fault-suite", first.ns)
	c, err := client.Dial(client.Options{HostPort: first.addr, Namespace: first.ns, Logger: logging.Temporal(zap.NewNop())})
	require.NoError(t, err)
	defer c.Close()
	// The worker and the client live through the server's crash, as in the fault suite.
	w := worker.New(c, "temporal-cmd-test", worker.Options{})
	w.RegisterWorkflowWithOptions(awaitSignal, workflow.RegisterOptions{Name: "AwaitSignal"})
	require.NoError(t, w.Start())
	defer w.Stop()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survives-sigkill", TaskQueue: "temporal-cmd-test"}, "AwaitSignal")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		return err == nil && d.GetWorkflowExecutionInfo().GetHistoryLength() >= 4
	}, 30*time.Second, 50*time.Millisecond, "the workflow's first task completed")
	t.Logf("temporal idle RSS %s", first.rss())
	first.kill(t)

	// Same file and port: the workflow is still there, and the old client reconnects.
	second := startTemporalProc(t, "--db-file", dbFile, "--listen", first.addr, "--namespace", "fault-suite")
	require.Equal(t, first.addr, second.addr)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", "go", "after SIGKILL"))
	var got string
	require.NoError(t, c.GetWorkflow(ctx, run.GetID(), "").Get(ctx, &got))
	require.Equal(t, "after SIGKILL", got)

	// SIGTERM stops it cleanly.
	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-second.exited:
		require.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("temporal did not stop within 30s of SIGTERM")
	}
}
