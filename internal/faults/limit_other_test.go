//go:build !linux

package faults

import (
	"errors"
	"os/exec"
)

const fsizeEnv = "FLAGSYNC_FAULTS_FSIZE"

func execLimited() {}

func limitedCommand(int64, string, ...string) (*exec.Cmd, error) {
	return nil, errors.New("file size limits are only set up on Linux")
}
