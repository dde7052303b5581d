package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// WorkerStopTimeout bounds the wait for the worker process after SIGTERM: the worker
// lets its activities finish for up to 30 s (worker.New), then it is killed.
const WorkerStopTimeout = 45 * time.Second

// workerSettings are what the worker process is told about the run, by environment
// variable (see breachflow worker --help).
type workerSettings struct {
	databaseURL, temporalAddress, namespace, taskQueue string
	sendGridURL, publicURL                             string
}

// env is the worker's environment: this process's, then the run's settings, then extra.
// exec keeps the last of duplicate names, so the run's settings win over any inherited
// ones; the secrets are set empty so that the worker does what the in-process one does
// (the acknowledgement secret kept in the database, no audit signing key).
func (s workerSettings) env(extra []string) []string {
	return append(append(os.Environ(),
		"DATABASE_URL="+s.databaseURL,
		"TEMPORAL_ADDRESS="+s.temporalAddress,
		"TEMPORAL_NAMESPACE="+s.namespace,
		"BREACHFLOW_TASK_QUEUE="+s.taskQueue,
		"SENDGRID_API_KEY="+sinkKey,
		"SENDGRID_API_URL="+s.sendGridURL,
		"BREACHFLOW_PUBLIC_URL="+s.publicURL,
		"BREACHFLOW_MAIL_FROM="+mailFrom,
		"BREACHFLOW_RESPONDER_EMAILS="+responders,
		"BREACHFLOW_METRICS_LISTEN=127.0.0.1:0",
		"BREACHFLOW_ACK_SECRET=",
		"BREACHFLOW_AUDIT_SIGNING_KEY=",
		"BREACHFLOW_AUDIT_PUBLIC_KEY=",
		"BREACHFLOW_IN_DOUBT_GRACE=",
		"SENDGRID_TIMEOUT=",
	), extra...)
}

// workerProcess is `breachflow worker` running as a child of this process.
type workerProcess struct {
	cmd    *exec.Cmd
	out    *tailWriter
	exited chan struct{} // closed once the process is reaped; err is set then
	err    error

	mu       sync.Mutex
	stopping bool
	peak     int64 // the last VmHWM read, in bytes
}

// startWorker starts command (the binary, then its arguments, which end in "worker") with
// env; its output goes to out (nil: nowhere) and the last of it into errors.
func startWorker(command, env []string, out io.Writer) (*workerProcess, error) {
	if len(command) == 0 {
		return nil, errors.New("bench: empty worker command")
	}
	p := &workerProcess{out: &tailWriter{w: out, max: 4 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(command[0], command[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker process %s: %w", command[0], err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the worker's process id.
func (p *workerProcess) pid() int { return p.cmd.Process.Pid }

// exitError describes the worker's exit with the last lines it printed.
func (p *workerProcess) exitError() error {
	msg := "exited"
	if p.err != nil {
		msg = p.err.Error()
	}
	if tail := strings.TrimSpace(p.out.String()); tail != "" {
		return fmt.Errorf("bench: worker process %d %s; its last output:\n%s", p.pid(), msg, tail)
	}
	return fmt.Errorf("bench: worker process %d %s", p.pid(), msg)
}

// watch cancels with the worker's exit error if it exits before stop is called.
func (p *workerProcess) watch(cancel context.CancelCauseFunc) {
	go func() {
		<-p.exited
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if !stopping {
			cancel(p.exitError())
		}
	}()
}

// waitPolling returns once a worker polls taskQueue's workflow tasks, or with the worker's
// exit or ctx's end.
func (p *workerProcess) waitPolling(ctx context.Context, tc client.Client, taskQueue string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := tc.DescribeTaskQueue(ctx, taskQueue, enums.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil && len(resp.GetPollers()) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: worker process %d not polling %s after %s (last error: %v)", p.pid(), taskQueue, timeout, err)
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// peakRSS reads the worker's VmHWM and remembers it; after the process is gone it returns
// the last one read.
func (p *workerProcess) peakRSS() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
		return p.peak, nil
	default:
	}
	v, err := vmHWM("/proc/" + strconv.Itoa(p.pid()) + "/status")
	if err != nil {
		return p.peak, err
	}
	p.peak = max(p.peak, v)
	return p.peak, nil
}

// stop reads the worker's peak RSS, sends it SIGTERM and waits for it, killing it after
// timeout. It returns the peak RSS and how the worker ended (nil: it exited cleanly on
// the signal). It may be called more than once.
func (p *workerProcess) stop(timeout time.Duration) (int64, error) {
	peak, rerr := p.peakRSS()
	p.mu.Lock()
	already := p.stopping
	p.stopping = true
	p.mu.Unlock()
	select {
	case <-p.exited:
		if already {
			return peak, nil
		}
		return peak, p.exitError() // it was gone before it was told to stop
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return peak, fmt.Errorf("bench: SIGTERM worker process %d: %w", p.pid(), err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return peak, fmt.Errorf("bench: worker process %d did not stop within %s of SIGTERM; killed", p.pid(), timeout)
	}
	if p.err != nil {
		return peak, p.exitError()
	}
	if rerr != nil {
		return peak, fmt.Errorf("bench: worker peak RSS: %w", rerr)
	}
	return peak, nil
}

// tailWriter passes writes on to w (if any) and keeps the last max bytes for errors.
type tailWriter struct {
	w   io.Writer
	max int

	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	if t.w != nil {
		_, _ = t.w.Write(b) // the worker must not fail because its output cannot be shown
	}
	return len(b), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// syncWriter serialises writes to w: the progress lines and the worker's output share it.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
