package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestE2EKindSkips runs hack/e2e-kind.sh where its prerequisites are
// missing (commands swapped for absent or failing ones through its DOCKER,
// KIND and KUBECTL knobs) and checks that it skips cleanly: exit 0 and one
// "e2e: skipped: <why>" line, or exit 1 under E2E_REQUIRED=1. It never
// reaches a cluster: every case lacks something before that.
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
	writeFake := func(name string, code int) string {
		path := filepath.Join(fakes, name)
		if err := os.WriteFile(path, []byte(fmt.Sprintf("#!/bin/sh\nexit %d\n", code)), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	okDocker, deadDocker := writeFake("docker-ok", 0), writeFake("docker-dead", 1)
	okKind := writeFake("kind-ok", 0)
	missing := filepath.Join(fakes, "missing")

	for _, tc := range []struct {
		name     string
		env      []string
		required bool
		want     string
	}{
		{"no docker", []string{"DOCKER=" + missing}, false,
			"e2e: skipped: no docker command (" + missing + ")\n"},
		{"no daemon", []string{"DOCKER=" + deadDocker}, false,
			"e2e: skipped: no Docker daemon (" + deadDocker + " info failed)\n"},
		{"no kind", []string{"DOCKER=" + okDocker, "KIND=" + missing}, false,
			"e2e: skipped: no kind command (" + missing + ")\n"},
		{"no kubectl", []string{"DOCKER=" + okDocker, "KIND=" + okKind, "KUBECTL=" + missing}, false,
			"e2e: skipped: no kubectl command (" + missing + ")\n"},
		{"required", []string{"DOCKER=" + missing, "E2E_REQUIRED=1"}, true,
			"e2e: failed: no docker command (" + missing + ") (E2E_REQUIRED=1)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("bash", script)
			cmd.Env = append(os.Environ(), "E2E_REQUIRED=")
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
			if got != tc.want {
				t.Errorf("output %q, want %q (stdout %q, stderr %q)", got, tc.want, stdout.String(), stderr.String())
			}
		})
	}
}
