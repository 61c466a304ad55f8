//go:build linux

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// fsizeEnv, when set in the test binary's environment, turns it into a launcher: it
// lowers RLIMIT_FSIZE to that many bytes and execs its arguments. No file the launched
// program writes may then grow past the limit (writes fail with EFBIG, "file too
// large"), which is a full disk as far as that program can tell, for root as well:
// unlike a read-only folder, the limit binds every user.
const fsizeEnv = "FLAGSYNC_FAULTS_FSIZE"

func execLimited() {
	n, err := strconv.ParseUint(os.Getenv(fsizeEnv), 10, 64)
	if err != nil || len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "%s: want a byte count and a program to run\n", fsizeEnv)
		os.Exit(2)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintf(os.Stderr, "setrlimit RLIMIT_FSIZE: %v\n", err)
		os.Exit(2)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, fsizeEnv+"=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(os.Args[1], os.Args[1:], env)
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", os.Args[1], err)
	os.Exit(2)
}

// limitedCommand returns a command that runs bin with args while no file it writes may
// grow past limit bytes.
func limitedCommand(limit int64, bin string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{bin}, args...)...)
	cmd.Env = []string{fmt.Sprintf("%s=%d", fsizeEnv, limit)}
	return cmd, nil
}
