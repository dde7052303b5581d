package bench

import "syscall"

// childAttr makes the kernel send the worker SIGTERM should this process die without
// stopping it (killed, or a panic), so that no worker is left polling the run's task queue.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
