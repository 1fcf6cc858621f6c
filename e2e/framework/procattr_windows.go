package framework

import "syscall"

// childProcAttr has nothing to set on Windows (the harness targets Linux and
// macOS; envtest's own processes need a Unix).
func childProcAttr() *syscall.SysProcAttr { return nil }
