// Command runcwrap is an OCI runtime that drops CAP_SYS_RESOURCE from every
// container and exec'd process, then runs runc with the same arguments.
//
// hack/e2e-kind.sh registers it as dockerd's default runtime on hosts whose
// capability bounding set lacks CAP_SYS_RESOURCE: there runc cannot grant a
// privileged container (a kind node) every capability and fails with
// "unable to apply caps: operation not permitted". Docker writes the
// container's capabilities into the bundle's config.json before `runc
// create`, and the exec'd process's into the file named by `runc exec
// --process`; runcwrap removes the missing capability from both.
//
// RUNCWRAP_RUNC names the runc to run (default: runc on PATH);
// RUNCWRAP_DROP lists the capabilities to drop, comma-separated (default
// CAP_SYS_RESOURCE).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	runc := os.Getenv("RUNCWRAP_RUNC")
	if runc == "" {
		runc = "runc"
	}
	drop := []string{"CAP_SYS_RESOURCE"}
	if v := os.Getenv("RUNCWRAP_DROP"); v != "" {
		drop = strings.Split(v, ",")
	}
	args := os.Args[1:]
	if err := rewrite(args, drop); err != nil {
		fmt.Fprintf(os.Stderr, "runcwrap: %v\n", err)
		os.Exit(1)
	}
	path, err := exec.LookPath(runc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runcwrap: %v\n", err)
		os.Exit(1)
	}
	// exec, not a child: runc's exit status, signals and file descriptors
	// (console sockets, pid files) pass through unchanged.
	if err := syscall.Exec(path, append([]string{path}, args...), os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "runcwrap: exec %s: %v\n", path, err)
		os.Exit(1)
	}
}

// rewrite edits, in place, the file that the runc command line args hands
// the capabilities in: the bundle's config.json for create and run, the
// process file for exec --process. Other commands are left alone.
func rewrite(args []string, drop []string) error {
	cmd, rest := command(args)
	switch cmd {
	case "create", "run":
		bundle := flagValue(rest, "bundle", "b")
		if bundle == "" {
			bundle = "."
		}
		return editFile(filepath.Join(bundle, "config.json"), drop, true)
	case "exec":
		if p := flagValue(rest, "process", "p"); p != "" {
			return editFile(p, drop, false)
		}
	}
	return nil
}

// globalWithValue are runc's global flags that take a separate value.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// command returns runc's subcommand and the arguments after it.
func command(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if globalWithValue[a] {
				i++
			}
			continue
		}
		return a, args[i+1:]
	}
	return "", nil
}

// flagValue returns the value of --long or -short in args (separate or
// joined with '='), or "".
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		for _, name := range []string{"--" + long, "-" + long, "-" + short} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// editFile drops the capabilities from the JSON document at path: an OCI
// runtime spec (its "process" object) when spec, else an OCI process.
func editFile(path string, drop []string, spec bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := dropCaps(raw, drop, spec)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}

// dropCaps removes the capabilities from every set of the process's
// "capabilities" object, keeping every other field as it was.
func dropCaps(raw []byte, drop []string, spec bool) ([]byte, bool, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false, err
	}
	process := doc
	if spec {
		p, ok := doc["process"]
		if !ok {
			return raw, false, nil
		}
		if err := json.Unmarshal(p, &process); err != nil {
			return nil, false, fmt.Errorf("process: %w", err)
		}
	}
	c, ok := process["capabilities"]
	if !ok || string(c) == "null" {
		return raw, false, nil
	}
	var sets map[string][]string
	if err := json.Unmarshal(c, &sets); err != nil {
		return nil, false, fmt.Errorf("process.capabilities: %w", err)
	}
	changed := false
	for name, caps := range sets {
		kept := caps[:0:0]
		for _, cp := range caps {
			if contains(drop, cp) {
				changed = true
				continue
			}
			kept = append(kept, cp)
		}
		sets[name] = kept
	}
	if !changed {
		return raw, false, nil
	}
	var err error
	if process["capabilities"], err = json.Marshal(sets); err != nil {
		return nil, false, err
	}
	if spec {
		if doc["process"], err = json.Marshal(process); err != nil {
			return nil, false, err
		}
	}
	out, err := json.Marshal(doc)
	return out, true, err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
