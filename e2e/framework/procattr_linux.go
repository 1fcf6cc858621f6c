package framework

import "syscall"

// childProcAttr puts the serve process in its own process group (a Ctrl-C
// in the terminal reaches the harness, which stops it in order) and has the
// kernel kill it if the harness dies, so that it never outlives the tests.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
