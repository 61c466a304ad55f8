//go:build unix && !linux

package unleashtest

import "syscall"

// setParentDeathSignal does nothing where there is no parent-death signal; the Node server
// still exits when its standard input closes, and a later run removes an orphaned cluster.
func setParentDeathSignal(*syscall.SysProcAttr) {}
