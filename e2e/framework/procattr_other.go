//go:build unix && !linux

package framework

import "syscall"

// childProcAttr puts the serve process in its own process group (a Ctrl-C
// in the terminal reaches the harness, which stops it in order).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
