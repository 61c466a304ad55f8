package unleashtest

import "syscall"

// setParentDeathSignal makes the kernel send SIGKILL to the child when the thread that started
// it ends. startProcess keeps that thread locked and alive until the child exits, so in effect
// the child dies with the test binary, even when the binary is killed before it can clean up.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
