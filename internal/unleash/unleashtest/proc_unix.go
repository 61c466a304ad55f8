//go:build unix

package unleashtest

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// groupAttr puts the child in its own process group (so Stop can end it with everything it
// started) and, where the OS can, ties its life to this test process (procattr_linux.go).
// With runAs set, the child runs as that account: PostgreSQL refuses to run as root.
func groupAttr(runAs *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if runAs != nil {
		attr.Credential = &syscall.Credential{Uid: runAs.uid, Gid: runAs.gid}
	}
	setParentDeathSignal(attr)
	return attr
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// processAlive reports whether a process with this id runs: it exists and, where /proc tells,
// is not a zombie (an orphan that died waits for init to reap it, which may take a while).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state is the field after the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// lockFile takes an exclusive advisory lock on f, waiting for other processes to release it.
// The lock goes with the file's descriptor: closing f releases it.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// platformErr is nil where the harness can run.
var platformErr error

const (
	sigTerm = syscall.SIGTERM
	sigInt  = syscall.SIGINT
	sigKill = syscall.SIGKILL
)
