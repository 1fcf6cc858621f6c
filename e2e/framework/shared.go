package framework

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Shared is one Env per test binary, started by the first test that asks
// for it and stopped by TestMain:
//
//	var env = &framework.Shared{}
//	func TestMain(m *testing.M) { os.Exit(framework.RunMain(m, env)) }
//	func TestX(t *testing.T) { e := env.Get(t); ... }
type Shared struct {
	Options Options

	once sync.Once
	env  *Env
	err  error
}

// Get returns the running Env, starting it on first use. Missing envtest
// assets skip the test, or fail it when NCG_REQUIRE_ENVTEST=1; any other
// start error fails it (every later caller sees the same error).
func (s *Shared) Get(t testing.TB) *Env {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		opts := s.Options
		if opts.Logf == nil {
			opts.Logf = t.Logf
		}
		s.env, s.err = Start(ctx, opts)
		if s.env != nil {
			// t.Logf must not outlive the test that started the Env.
			s.env.Options.Logf = func(string, ...any) {}
		}
	})
	var missing *MissingAssetsError
	switch {
	case errors.As(s.err, &missing) && !Required():
		t.Skip(s.err.Error())
	case s.err != nil:
		t.Fatal(s.err)
	}
	return s.env
}

// Stop stops the Env if it was started.
func (s *Shared) Stop() error {
	if s.env == nil {
		return nil
	}
	return s.env.Stop()
}

// RunMain runs the tests, then stops every shared Env; a failure to stop
// fails the run.
func RunMain(m *testing.M, shared ...*Shared) int {
	code := m.Run()
	for _, s := range shared {
		if err := s.Stop(); err != nil {
			println("framework: stopping the shared envtest:", err.Error())
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
