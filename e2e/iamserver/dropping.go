package iamserver

import (
	"net"
	"sync"
	"sync/atomic"
)

// Dropping is an endpoint that accepts connections and never answers, as
// a private cluster's VPC without that service's endpoint drops them (no
// answer, no reset): the fault knob for "the service never answers". It
// counts the connections it accepted and holds them until Close.
type Dropping struct {
	l        net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	held     []net.Conn
}

// NewDropping listens on a free loopback port.
func NewDropping() (*Dropping, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &Dropping{l: l}
	go d.accept()
	return d, nil
}

func (d *Dropping) accept() {
	for {
		c, err := d.l.Accept()
		if err != nil {
			return
		}
		d.accepted.Add(1)
		d.mu.Lock()
		d.held = append(d.held, c)
		d.mu.Unlock()
	}
}

// URL is the endpoint's address, for an SDK client's BaseEndpoint.
func (d *Dropping) URL() string { return "http://" + d.l.Addr().String() }

// Accepted is how many connections were accepted so far.
func (d *Dropping) Accepted() int64 { return d.accepted.Load() }

// Close stops listening and closes the connections held.
func (d *Dropping) Close() {
	d.l.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.held {
		c.Close()
	}
	d.held = nil
}
