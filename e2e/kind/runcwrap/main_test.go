package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		cmd  string
		rest []string
	}{
		{[]string{"--root", "/run/x", "--log", "l.json", "--log-format", "json", "create", "--bundle", "/b", "id"}, "create", []string{"--bundle", "/b", "id"}},
		{[]string{"--systemd-cgroup", "exec", "--process", "/p.json", "id"}, "exec", []string{"--process", "/p.json", "id"}},
		{[]string{"--version"}, "", nil},
	} {
		cmd, rest := command(tc.args)
		if cmd != tc.cmd || !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("command(%q) = %q %q, want %q %q", tc.args, cmd, rest, tc.cmd, tc.rest)
		}
	}
}

func TestFlagValue(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bundle", "/b", "id"}, "/b"},
		{[]string{"-b", "/c", "id"}, "/c"},
		{[]string{"--bundle=/d", "id"}, "/d"},
		{[]string{"id"}, ""},
	} {
		if got := flagValue(tc.args, "bundle", "b"); got != tc.want {
			t.Errorf("flagValue(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func caps(t *testing.T, raw []byte, spec bool) map[string][]string {
	t.Helper()
	var doc struct {
		Process      *struct{ Capabilities map[string][]string } `json:"process"`
		Capabilities map[string][]string                         `json:"capabilities"`
		Other        string                                      `json:"other"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if spec {
		return doc.Process.Capabilities
	}
	return doc.Capabilities
}

func TestRewriteCreateAndExec(t *testing.T) {
	dir := t.TempDir()
	spec := `{"ociVersion":"1.2.0","other":"kept","process":{"args":["/sbin/init"],"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE"],"effective":["CAP_SYS_RESOURCE","CAP_SYS_ADMIN"],"permitted":["CAP_SYS_RESOURCE"]}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(dir, "process.json")
	if err := os.WriteFile(proc, []byte(`{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	drop := []string{"CAP_SYS_RESOURCE"}
	if err := rewrite([]string{"--root", "/r", "create", "--bundle", dir, "id"}, drop); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"exec", "--process", proc, "--detach", "id"}, drop); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	want := map[string][]string{"bounding": {"CAP_CHOWN"}, "effective": {"CAP_SYS_ADMIN"}, "permitted": {}}
	if got := caps(t, raw, true); !reflect.DeepEqual(got, want) {
		t.Errorf("config.json capabilities = %v, want %v", got, want)
	}
	var other struct{ Other string }
	_ = json.Unmarshal(raw, &other)
	if other.Other != "kept" {
		t.Errorf("config.json lost its other fields: %s", raw)
	}
	raw, _ = os.ReadFile(proc)
	if got := caps(t, raw, false); !reflect.DeepEqual(got, map[string][]string{"bounding": {"CAP_KILL"}}) {
		t.Errorf("process.json capabilities = %v", got)
	}
}

func TestRewriteLeavesOthersAlone(t *testing.T) {
	dir := t.TempDir()
	spec := `{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}}}`
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"create", "-b", dir, "id"}, []string{"CAP_SYS_RESOURCE"}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != spec {
		t.Errorf("unchanged spec rewritten: %s", raw)
	}
	// Commands that hand no capabilities are not touched, even with a bundle.
	if err := rewrite([]string{"delete", "--force", "id"}, []string{"CAP_SYS_RESOURCE"}); err != nil {
		t.Fatal(err)
	}
}
