// Command nodeclass-guard validates Karpenter EC2NodeClass, NodePool and EKS
// Auto Mode NodeClass objects against IAM: as an admission webhook (`serve`)
// or over manifests in CI (`check`). The wiring lives here; the rules live
// in package webhook, IAM in package authz.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// Exit codes of the contract.
const (
	exitOK      = 0
	exitDenied  = 1
	exitUsage   = 2
	exitFailure = 3
)

// version and commit are set at build time (make release) with
// -ldflags "-X main.version=v0.2.0 -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs one command line and returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := exitOK
	root := newRootCommand(ctx, stdin, stdout, stderr, &code)
	root.SetArgs(modernArgs(root, args))
	if err := root.ExecuteContext(ctx); err != nil {
		cmd, _, ferr := root.Find(args)
		name := root.Name()
		if ferr == nil && cmd != root {
			name = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if cmd == nil || cmd == root || ferr != nil {
			fmt.Fprintf(stderr, "\n%s", root.UsageString())
		} else {
			fmt.Fprintf(stderr, "Run '%s --help' for its flags.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	return code
}

// newRootCommand builds the command tree; a command's exit code goes to
// *code.
func newRootCommand(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, code *int) *cobra.Command {
	root := &cobra.Command{
		Use:   "nodeclass-guard",
		Short: "nodeclass-guard validates Karpenter node classes and NodePools against IAM.",
		Long: `nodeclass-guard validates Karpenter node classes and NodePools against IAM:
as an admission webhook (serve), over manifests in CI (check), over a live
cluster (audit), and it writes the IAM snapshot check reads (snapshot).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		Example: `  nodeclass-guard check --offline manifests/
  nodeclass-guard snapshot --controller-role ARN --cluster-name prod --region us-west-2 manifests/ > snapshot.json
  nodeclass-guard check --iam-snapshot snapshot.json --controller-role ARN --cluster-name prod --region us-west-2 manifests/`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v, _ := cmd.Flags().GetBool("version"); v {
				printVersion(stdout)
				return nil
			}
			fmt.Fprint(stderr, cmd.UsageString())
			*code = exitUsage
			return nil
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.Flags().Bool("version", false, "print the version")

	var checkOpts checkOptions
	checkCmd := &cobra.Command{
		Use:   "check [flags] PATH...",
		Short: "Check manifests (files, directories or - for stdin)",
		Long: `Checks EC2NodeClass, NodePool and EKS NodeClass manifests (files, directories
walked for .yaml, .yml and .json, or - for stdin) as the webhook would, against
an IAM snapshot (--iam-snapshot), the live AWS APIs, or format only (--offline).

Exit codes: 0 all allowed, 1 at least one denied, 2 unusable input or flags.`,
		Example: `  nodeclass-guard check --offline manifests/
  nodeclass-guard check --iam-snapshot snapshot.json --controller-role arn:aws:iam::111122223333:role/KarpenterControllerRole \
    --cluster-name prod --region us-west-2 -o sarif manifests/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			*code = runCheck(cmd.Context(), &checkOpts, args, stdin, stdout, stderr)
			return nil
		},
		ValidArgsFunction: manifestArgs,
	}
	checkOpts.register(checkCmd.Flags())
	completeFlags(checkCmd)

	var auditOpts auditOptions
	auditCmd := &cobra.Command{
		Use:   "audit [flags]",
		Short: "Check every class and NodePool of a live cluster (read-only)",
		Long: `Checks every EC2NodeClass, NodePool and EKS NodeClass of a cluster (read-only) and prints check's report.

Exit codes: 0 all allowed, 1 at least one denied, 2 unusable flags or cluster.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			*code = runAudit(cmd.Context(), &auditOpts, args, stdout, stderr)
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	auditOpts.register(auditCmd.Flags())
	completeFlags(auditCmd)

	var serveOpts serveOptions
	serveCmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the admission webhook",
		RunE: func(cmd *cobra.Command, args []string) error {
			*code = runServe(cmd.Context(), &serveOpts, args, stderr)
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	serveOpts.register(serveCmd.Flags())
	completeFlags(serveCmd)

	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the modelled Karpenter releases",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			printVersion(stdout)
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}

	root.AddCommand(serveCmd, checkCmd, auditCmd, newSnapshotCommand(stdin, stdout, stderr, code), versionCmd)
	root.CompletionOptions.HiddenDefaultCmd = false
	return root
}

// noArgs refuses arguments with the message the old commands gave.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return nil
}

// printVersion prints the version, the commit and the Karpenter releases
// whose requests the permission checks model.
func printVersion(w io.Writer) {
	c := commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	fmt.Fprintf(w, "nodeclass-guard %s\ncommit %s\nkarpenter %s–%s\n", version, c, karpenter.Oldest, karpenter.Newest)
}

// manifestArgs completes check's PATHs with YAML and JSON files and
// folders.
func manifestArgs(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"yaml", "yml", "json"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeFlags gives the flags that take a file or a fixed set of values
// their completions.
func completeFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	files := map[string][]string{"iam-snapshot": {"json"}, "kubeconfig": nil}
	for name, ext := range files {
		if fs.Lookup(name) != nil {
			_ = cmd.MarkFlagFilename(name, ext...)
		}
	}
	dirs := []string{"cert-dir", "metrics-cert-dir"}
	for _, name := range dirs {
		if fs.Lookup(name) != nil {
			_ = cmd.MarkFlagDirname(name)
		}
	}
	fixed := map[string][]string{"on-iam-error": {"allow", "deny"}, "output": {"text", "json", "sarif"}}
	if cmd.Name() == "audit" {
		fixed["output"] = []string{"text", "json"}
	}
	for name, values := range fixed {
		if fs.Lookup(name) != nil {
			_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

// modernArgs rewrites the single-dash long flags Go's flag package took
// (-cluster-name x, -offline) into pflag's --cluster-name x, so that the
// command lines written for earlier releases keep working. Only names the
// command defines are rewritten, shorthands (-o json, -h) stay, and
// nothing after "--" is touched.
func modernArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		cmd = root
	}
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.AddFlagSet(cmd.Flags())
	fs.AddFlagSet(cmd.InheritedFlags())
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		long := strings.HasPrefix(a, "--")
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case long:
			f = fs.Lookup(name)
		case len(name) > 1:
			if f = fs.Lookup(name); f != nil {
				a = "-" + a
			}
		default:
			f = fs.ShorthandLookup(name)
		}
		out = append(out, a)
		// A flag's value in the next argument is no flag, whatever it
		// looks like.
		if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}
