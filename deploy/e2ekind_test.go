package deploy

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EKindSkips runs hack/e2e-kind.sh where no Docker daemon answers and
// it may not start one (E2E_START_DOCKERD=0, or not root), with the docker
// command swapped for an absent or failing one through its DOCKER knob, and
// checks that it skips cleanly: exit 0 and one "e2e: skipped: <why>" line,
// or exit 1 under E2E_REQUIRED=1. It never installs Docker nor reaches a
// cluster.
func TestE2EKindSkips(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script, err := filepath.Abs(filepath.Join("..", "hack", "e2e-kind.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Read by the test itself so that go test's cache notices edits.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}
	fakes := t.TempDir()
	deadDocker := filepath.Join(fakes, "docker-dead")
	if err := os.WriteFile(deadDocker, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(fakes, "missing")
	why := ", and E2E_START_DOCKERD=0"
	if os.Geteuid() != 0 {
		why = ", and not root to start one"
	}

	for _, tc := range []struct {
		name     string
		env      []string
		required bool
		want     string
	}{
		{"no docker", []string{"DOCKER=" + missing}, false,
			"e2e: skipped: no Docker daemon (" + missing + " info failed)" + why + "\n"},
		{"no daemon", []string{"DOCKER=" + deadDocker}, false,
			"e2e: skipped: no Docker daemon (" + deadDocker + " info failed)" + why + "\n"},
		{"required", []string{"DOCKER=" + missing, "E2E_REQUIRED=1"}, true,
			"e2e: failed: no Docker daemon (" + missing + " info failed)" + why + " (E2E_REQUIRED=1)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("bash", script)
			// KIND_CLUSTER_NAME and a private work folder are not needed:
			// the script stops before touching either.
			cmd.Env = append(os.Environ(), "E2E_REQUIRED=", "E2E_START_DOCKERD=0", "DOCKER_HOST=unix://"+filepath.Join(fakes, "no.sock"))
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case tc.required && (!errors.As(err, &exit) || exit.ExitCode() != 1):
				t.Fatalf("exit %v, want 1; stderr: %s", err, stderr.String())
			case !tc.required && err != nil:
				t.Fatalf("exit %v, want 0; stderr: %s", err, stderr.String())
			}
			got := stdout.String()
			if tc.required {
				got = stderr.String()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("output %q, want %q (stdout %q, stderr %q)", got, tc.want, stdout.String(), stderr.String())
			}
			if tc.required {
				return
			}
			if got != tc.want {
				t.Errorf("stdout %q, want exactly %q", got, tc.want)
			}
		})
	}
}
