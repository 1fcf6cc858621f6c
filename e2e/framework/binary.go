package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// binary is the nodeclass-guard binary shared by every Env of this process:
// built once (go build's cache makes a rebuild after the last Env stopped
// cheap) and removed when the last Env using it stops.
var binary struct {
	mu    sync.Mutex
	path  string
	dir   string // temporary folder holding a built binary; "" for NCG_BINARY
	users int
}

// acquireBinary returns the path of a nodeclass-guard binary built from the
// repository's ./cmd/nodeclass-guard, or NCG_BINARY when set.
func acquireBinary(ctx context.Context, root string, logf func(string, ...any)) (string, error) {
	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.path != "" {
		binary.users++
		return binary.path, nil
	}
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		binary.path, binary.users = p, 1
		return p, nil
	}
	logf("building nodeclass-guard (./cmd/nodeclass-guard)")
	dir, err := os.MkdirTemp("", "nodeclass-guard-bin-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "nodeclass-guard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/nodeclass-guard")
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/nodeclass-guard: %v\n%s", err, buf.Bytes())
	}
	binary.path, binary.dir, binary.users = out, dir, 1
	return out, nil
}

// releaseBinary drops one user; the last one removes a built binary.
func releaseBinary() {
	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.users == 0 {
		return
	}
	binary.users--
	if binary.users == 0 {
		if binary.dir != "" {
			os.RemoveAll(binary.dir)
		}
		binary.path, binary.dir = "", ""
	}
}
