package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serveProcess is one `nodeclass-guard serve` child process.
type serveProcess struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // the process's exit error, set before exited closes
}

// syncBuffer collects the child's output for error messages and ServeLog.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n distinct lines, for error messages: a line that
// repeats the one before it except for its JSON timestamp (a failing
// health check every 100ms) is counted, not repeated, so that the lines
// that explain a failure are not pushed out.
func (b *syncBuffer) tail(n int) string {
	var lines []string
	var repeats []int
	prev := ""
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		key := jsonTimestamp.ReplaceAllString(l, "")
		if len(lines) > 0 && key == prev {
			repeats[len(repeats)-1]++
			continue
		}
		prev = key
		lines = append(lines, l)
		repeats = append(repeats, 0)
	}
	var out []string
	for i, l := range lines {
		if repeats[i] > 0 {
			l += fmt.Sprintf(" (and %d more like it)", repeats[i])
		}
		out = append(out, l)
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

var jsonTimestamp = regexp.MustCompile(`"ts":("[^"]*"|[0-9.e+]+),?`)

// startServe starts the binary with args and environment env; its output
// goes to the returned process's log and, when not nil, to extra.
func startServe(bin string, args, env []string, extra io.Writer) (*serveProcess, error) {
	p := &serveProcess{log: &syncBuffer{}, exited: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out io.Writer = p.log
	if extra != nil {
		out = io.MultiWriter(p.log, extra)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", bin, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls the health endpoint's /readyz until it answers 200, the
// process exits, or ctx ends.
func (p *serveProcess) waitReady(ctx context.Context, healthAddr string) error {
	url := "http://" + healthAddr + "/readyz"
	hc := &http.Client{Timeout: time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s answered %d: %s", url, resp.StatusCode, strings.ReplaceAll(strings.TrimSpace(string(body)), "\n", "; "))
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("nodeclass-guard serve exited before it was ready (%v); its output:\n%s", p.err, p.log.tail(40))
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("waiting for nodeclass-guard serve: %w", ctx.Err())
			}
			return fmt.Errorf("nodeclass-guard serve not ready (%s); last answer: %s; its output:\n%s", ctx.Err(), last, p.log.tail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop asks the process to shut down (SIGTERM) and kills it when it has not
// exited within grace. It returns an error when the process had to be
// killed or exited with a failure after SIGTERM.
func (p *serveProcess) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil // already gone; an early exit was reported by waitReady
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling nodeclass-guard serve: %w", err)
	}
	select {
	case <-p.exited:
		var exit *exec.ExitError
		if p.err != nil && !(errors.As(p.err, &exit) && exit.Exited() && exit.ExitCode() == 0) {
			return fmt.Errorf("nodeclass-guard serve exited with %v after SIGTERM; its output:\n%s", p.err, p.log.tail(20))
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("nodeclass-guard serve did not exit within %s of SIGTERM and was killed", grace)
	}
}

// FreePorts reserves n distinct free TCP ports on 127.0.0.1. They are
// released before returning, so another process could take one in between;
// on a loopback-only test or benchmark machine that is rare enough. The
// benchmark harness (bench/cmd/ncg-bench) uses it too.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ChildEnv is the environment of a child process (serve, the trivial
// webhook): this process's, minus every AWS_ variable (a developer's
// profile or region must not leak into a test or benchmark), plus extra.
func ChildEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
