//go:build !linux

package faults

import (
	"errors"
	"net"
)

// canHoldPorts: holdPort does not work here.
const canHoldPorts = false

// listenReusable listens on addr; holding its port while it is down needs Linux.
func listenReusable(addr string) (net.Listener, error) { return net.Listen("tcp4", addr) }

// heldPort is not available here: a gitFront that goes down frees its port, and
// another socket may take it before the front comes back.
type heldPort struct{}

func holdPort(string) (*heldPort, error) {
	return nil, errors.New("holding a port needs Linux (SO_REUSEPORT on a socket that does not listen)")
}

func (h *heldPort) listen() (net.Listener, error) { return nil, errors.New("no held port") }

func (h *heldPort) close() {}
