package unleashtest

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// process is a child started by startProcess: the leader of its own process group.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited and err is set
	err  error         // what cmd.Wait returned
}

// startProcess starts cmd (whose SysProcAttr comes from groupAttr) on a goroutine that keeps
// its OS thread locked until the child exits: Linux delivers the parent-death signal when the
// *thread* that forked the child ends, so that thread must live exactly as long as the child.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// exited reports whether the child has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// end sends sig to the child's process group, waits up to grace for the child to exit, then
// kills whatever is left of the group (a leader that exited may leave children behind) and
// waits for the child.
func (p *process) end(sig syscall.Signal, grace time.Duration) error {
	pid := p.cmd.Process.Pid
	if !p.exited() {
		if err := signalGroup(pid, sig); err != nil {
			return fmt.Errorf("signal process group %d: %w", pid, err)
		}
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	if err := signalGroup(pid, sigKill); err != nil {
		return fmt.Errorf("kill process group %d: %w", pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("process %d (%s) did not exit after SIGKILL", pid, p.cmd.Path)
	}
}
