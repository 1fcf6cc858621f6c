// Command nodeclass-guard validates Karpenter EC2NodeClass, NodePool and EKS
// Auto Mode NodeClass objects against IAM: as an admission webhook (`serve`)
// or over manifests in CI (`check`). The wiring lives here; the rules live
// in package webhook, IAM in package authz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of the contract.
const (
	exitOK      = 0
	exitDenied  = 1
	exitUsage   = 2
	exitFailure = 3
)

const usage = `nodeclass-guard validates Karpenter node classes and NodePools against IAM.

Usage:
  nodeclass-guard serve [flags]          run the admission webhook
  nodeclass-guard check [flags] PATH...  check manifests (files, directories or - for stdin)
  nodeclass-guard audit [flags]          check every class and NodePool of a live cluster (read-only)
  nodeclass-guard version

Run 'nodeclass-guard <command> -h' for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "check":
		return runCheck(ctx, args[1:], stdin, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "nodeclass-guard", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "nodeclass-guard: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseFlags parses a subcommand's flags, printing errors the usual way.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}
