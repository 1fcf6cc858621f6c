package framework

import (
	"context"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Warnings records the warnings the API server sends back (the admission
// webhook's warnings arrive as Warning headers), in order.
type Warnings struct {
	mu   sync.Mutex
	list []string
}

var _ rest.WarningHandlerWithContext = (*Warnings)(nil)

// HandleWarningHeaderWithContext records one warning (code 299 is the only
// one the API server sends).
func (w *Warnings) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// Take returns the warnings recorded since the last Take and forgets them.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// Client is a controller-runtime client (unstructured objects work without
// registering types) whose warnings are recorded instead of logged.
type Client struct {
	client.Client
	Warnings *Warnings
}

// newClient builds a Client from cfg with its own warning recorder.
func newClient(cfg *rest.Config) (*Client, error) {
	w := &Warnings{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	return &Client{Client: c, Warnings: w}, nil
}

// TakeWarnings returns the warnings received since the last call.
func (c *Client) TakeWarnings() []string { return c.Warnings.Take() }

// HasCode reports whether text carries the reason code as "[Code]".
func HasCode(text, code string) bool {
	return strings.Contains(text, "["+code+"]")
}
