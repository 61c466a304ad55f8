//go:build linux

package faults

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// canHoldPorts: holdPort works here.
const canHoldPorts = true

// listenReusable listens on addr with SO_REUSEPORT, so that holdPort can bind the
// same port while this listener is still open.
func listenReusable(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setReusable(int(fd)) })
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp4", addr)
}

func setReusable(fd int) error {
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	return setReusePort(fd)
}

func setReusePort(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	return nil
}

// heldPort is a TCP socket bound to a port without listening: connections to the port
// are refused, as nothing listens, yet no other socket on the machine can take it
// (only sockets of this user that set SO_REUSEPORT, as listenReusable's do). It must
// not set SO_REUSEADDR: a socket that does not listen lets any other socket that sets
// it (every Go listener does) bind the same port.
type heldPort struct {
	fd int
}

// holdPort binds a socket to addr (an IPv4 host:port), which a listener of
// listenReusable may still be listening on.
func holdPort(addr string) (*heldPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("hold port %s: not an IPv4 address and port", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hold port %s: socket: %w", addr, err)
	}
	if err := setReusePort(fd); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("hold port %s: %w", addr, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("hold port %s: bind: %w", addr, err)
	}
	return &heldPort{fd: fd}, nil
}

// listen turns the held port into a listener; h is used up.
func (h *heldPort) listen() (net.Listener, error) {
	if err := syscall.Listen(h.fd, syscall.SOMAXCONN); err != nil {
		h.close()
		return nil, fmt.Errorf("listen on the held port: %w", err)
	}
	f := os.NewFile(uintptr(h.fd), "held port")
	defer f.Close() // FileListener holds a duplicate
	return net.FileListener(f)
}

func (h *heldPort) close() { syscall.Close(h.fd) }
