package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/check"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// checkOptions are check's flags.
type checkOptions struct {
	iamf       iamFlags
	offline    bool
	output     string
	kubeconfig string
}

// register adds check's flags to fs.
func (o *checkOptions) register(fs *pflag.FlagSet) {
	o.iamf.register(fs, "deny")
	o.iamf.registerSCP(fs)
	fs.BoolVar(&o.offline, "offline", false, "format checks only; no IAM source needed")
	fs.StringVarP(&o.output, "output", "o", "text", "report format: text, json or sarif (SARIF 2.1.0, for code scanning)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "also resolve NodePool references against this cluster, and judge an EC2NodeClass it already has as an update of it (the update guard, with its NodeClaims)")
}

func runCheck(ctx context.Context, o *checkOptions, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	iamf, offline, output, kubeconfig := o.iamf, o.offline, o.output, o.kubeconfig
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nodeclass-guard check: "+format+"\n", a...)
		return exitUsage
	}
	if len(args) == 0 {
		return fail("no PATH given (a file, a directory, or - for stdin)")
	}
	if output != "text" && output != "json" && output != "sarif" {
		return fail("-o %q: want text, json or sarif", output)
	}
	if offline && iamf.snapshot != "" {
		return fail("--offline and --iam-snapshot exclude each other")
	}
	if offline && len(iamf.scpFiles) > 0 {
		return fail("--offline and --scp exclude each other: SCPs apply to the permission checks, which need --iam-snapshot or the live IAM API")
	}
	if err := iamf.validate(); err != nil {
		return fail("%v", err)
	}
	docs, err := check.ReadPaths(args, stdin)
	if err != nil {
		var ie *check.InputError
		if errors.As(err, &ie) {
			return fail("%v", ie)
		}
		return fail("%v", err)
	}
	for _, dup := range check.Duplicates(docs) {
		fmt.Fprintf(stderr, "nodeclass-guard check: warning: %s\n", dup)
	}
	var (
		view authz.View
		eks  authz.EKSView
	)
	if !offline {
		view, eks, err = iamf.view(ctx, nil)
		if err != nil {
			return fail("%v", err)
		}
	}
	cfg, err := iamf.config(ctx, view, eks, iamf.controllerRole, func(msg string) {
		fmt.Fprintf(stderr, "nodeclass-guard check: warning: %s\n", msg)
	})
	if err != nil {
		return fail("%v", err)
	}
	var cluster rules.ClassGetter
	cfg.AWSAuth = check.InputAWSAuth(docs)
	if a, ok := iamf.snapshotAWSAuth(); ok && !check.HasAWSAuth(docs) {
		// The snapshot's aws-auth (nodeclass-guard snapshot --kubeconfig).
		cfg.AWSAuth = a
	}
	if kubeconfig != "" {
		cc, err := newClusterClasses(kubeconfig)
		if err != nil {
			return fail("--kubeconfig: %v", err)
		}
		cluster = cc
		// An EC2NodeClass the cluster has: applying the input updates it.
		cfg.NodeClaims = cc
		if err := check.AgainstCluster(ctx, docs, cc); err != nil {
			return fail("--kubeconfig: %v", err)
		}
		if !check.HasAWSAuth(docs) {
			// The input's aws-auth wins; else the cluster's.
			cfg.AWSAuth = rules.ClusterAWSAuth{Reader: cc.Reader}
		}
	}
	inputs := check.NewInputClasses(docs, cluster)
	cfg.Classes, cfg.NodePools = inputs, inputs
	iamf.versionFromEKS(ctx, &cfg, func(msg string) {
		fmt.Fprintf(stderr, "nodeclass-guard check: warning: %s\n", msg)
	})
	c := rules.NewChecker(cfg)
	report := check.Run(ctx, c, docs)
	switch output {
	case "json":
		err = report.WriteJSON(stdout)
	case "sarif":
		err = report.WriteSARIF(stdout, check.Tool{Name: "nodeclass-guard", Version: version, InformationURI: "https://github.com/nodeclass-guard/nodeclass-guard"})
	default:
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "nodeclass-guard check: writing the report: %v\n", err)
		return exitFailure
	}
	if report.Denied() {
		return exitDenied
	}
	return exitOK
}
