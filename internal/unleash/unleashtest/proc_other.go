//go:build !unix

package unleashtest

import (
	"errors"
	"os"
	"syscall"
)

// platformErr says why the harness cannot run here.
var platformErr = errNotUnix

var errNotUnix = errors.New("the Unleash test harness needs a Unix system (process groups, file locks)")

func groupAttr(*account) *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errNotUnix }

func processAlive(int) bool { return true }

func lockFile(*os.File) error { return errNotUnix }

const (
	sigTerm = syscall.Signal(15)
	sigInt  = syscall.Signal(2)
	sigKill = syscall.Signal(9)
)
