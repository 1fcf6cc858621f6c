package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/check"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// snapshotOptions are snapshot's flags: check's IAM flags (the same
// endpoints, Karpenter version and timeouts), the cluster, and where to
// write.
type snapshotOptions struct {
	iamf       iamFlags
	kubeconfig string
	outFile    string
}

func (o *snapshotOptions) register(fs *pflag.FlagSet) {
	o.iamf.register(fs, "deny")
	_ = fs.MarkHidden("iam-snapshot") // snapshot reads the live APIs
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the cluster: its classes and NodePools when no PATH is given, the classes NodePools name, and kube-system/aws-auth when the cluster reads it")
	fs.StringVar(&o.outFile, "output-file", "-", "where to write the snapshot (- for stdout)")
}

func newSnapshotCommand(stdin io.Reader, stdout, stderr io.Writer, code *int) *cobra.Command {
	var o snapshotOptions
	cmd := &cobra.Command{
		Use:   "snapshot [flags] [PATH...]",
		Short: "Write the IAM snapshot check needs for these manifests, from the live AWS APIs",
		Long: `Reads from AWS exactly what check needs for the manifests (or, with --kubeconfig
and no PATH, for the cluster's classes and NodePools) and writes it as a
snapshot for check --iam-snapshot: the controller role's policies and
permissions boundary, the node roles and instance profiles the classes name,
the cluster and the node roles' access entries, the subnets, security groups,
images and capacity reservations their selector terms match, the SSM
parameters their AMI aliases read for the cluster's Kubernetes version, the
KMS keys their encrypted volumes name (key policy, grants, aliases), and
aws-auth when the cluster reads it (with --kubeconfig).

It asks through the same SDK clients as serve and check (the default
credential chain), prints a line per AWS service on stderr as it first asks
it, and a summary of what it wrote and what it could not read. An answer it
could not get (a permission it lacks, throttling) is named and is not fatal:
its section is left out, and check reports those checks skipped.

Exit codes: 0 written, 2 unusable input or flags, 3 the snapshot could not be written.`,
		Example: `  nodeclass-guard snapshot --controller-role arn:aws:iam::111122223333:role/KarpenterControllerRole \
    --cluster-name prod --region us-west-2 manifests/ > snapshot.json
  nodeclass-guard check --iam-snapshot snapshot.json --controller-role arn:aws:iam::111122223333:role/KarpenterControllerRole \
    --cluster-name prod --region us-west-2 manifests/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			*code = runSnapshot(cmd.Context(), &o, args, stdin, stdout, stderr)
			return nil
		},
		ValidArgsFunction: manifestArgs,
	}
	o.register(cmd.Flags())
	completeFlags(cmd)
	_ = cmd.MarkFlagFilename("output-file", "json")
	return cmd
}

// runSnapshot is `nodeclass-guard snapshot`: check's run over the
// manifests, its AWS answers recorded (authz.Recorder) and written as a
// snapshot.
func runSnapshot(ctx context.Context, o *snapshotOptions, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	iamf := o.iamf
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nodeclass-guard snapshot: "+format+"\n", a...)
		return exitUsage
	}
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "nodeclass-guard snapshot: "+format+"\n", a...) }
	if iamf.snapshot != "" {
		return fail("--iam-snapshot: snapshot reads the live AWS APIs and writes a snapshot; give it none")
	}
	if iamf.controllerRole == "" {
		return fail("--controller-role is required: the role whose policies check evaluates")
	}
	if len(args) == 0 && o.kubeconfig == "" {
		return fail("no PATH given (a file, a directory, or - for stdin), and no --kubeconfig to read the cluster's classes from")
	}
	if err := iamf.validate(); err != nil {
		return fail("%v", err)
	}

	var (
		docs []check.Document
		cc   *clusterClasses
		err  error
	)
	if o.kubeconfig != "" {
		if cc, err = newClusterClasses(o.kubeconfig); err != nil {
			return fail("--kubeconfig: %v", err)
		}
	}
	if len(args) > 0 {
		if docs, err = check.ReadPaths(args, stdin); err != nil {
			return fail("%v", err)
		}
	} else {
		listCtx, cancel := context.WithTimeout(ctx, time.Minute)
		var skipped []string
		docs, skipped, err = check.ReadCluster(listCtx, cc.Reader)
		cancel()
		if err != nil {
			return fail("--kubeconfig: %v", err)
		}
		for _, s := range skipped {
			say("note: the cluster does not serve %s", s)
		}
	}

	view, eks, err := iamf.view(ctx, nil)
	if err != nil {
		return fail("%v", err)
	}
	iamClient, err := authz.NewIAMClient(ctx, iamf.region, iamf.endpoint, iamf.timeout)
	if err != nil {
		return fail("%v", err)
	}
	// A role's policies take a few calls in a row: they get the command's
	// context, not one object's IAM bound.
	details := func(_ context.Context, role string) (authz.RoleDetail, error) {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return authz.ReadRoleDetail(dctx, authz.NewIAMMethods(iamClient), role)
	}
	services := map[string]string{
		"IAM": "IAM: roles, instance profiles, the controller role's policies",
		"EKS": "EKS: the cluster, access entries",
		"EC2": "EC2: subnets, security groups, images, capacity reservations",
		"SSM": "SSM: AMI alias parameters",
		"KMS": "KMS: the keys of encrypted volumes, their key policies and grants",
	}
	rec := authz.NewRecorder(view, eks, iamf.ec2, details, func(service string) { say("reading %s", services[service]) })
	iamf.ec2 = rec
	if iamf.kms != nil {
		ctl, _ := authz.ParseRoleARN(iamf.controllerRole) // validated
		rec.SetKMS(iamf.kms, ctl.Account)
		iamf.kms = rec
	}
	warn := func(msg string) { say("warning: %s", msg) }
	cfg, err := iamf.config(ctx, rec, rec, iamf.controllerRole, warn)
	if err != nil {
		return fail("%v", err)
	}
	cfg.AWSAuth = check.InputAWSAuth(docs)
	var cluster rules.ClassGetter
	if cc != nil {
		cluster = cc
		cfg.NodeClaims = cc
		if len(args) > 0 {
			if err := check.AgainstCluster(ctx, docs, cc); err != nil {
				return fail("--kubeconfig: %v", err)
			}
		}
		if !check.HasAWSAuth(docs) {
			cfg.AWSAuth = recordedAWSAuth{reader: cc.Reader, rec: rec}
		}
	}
	inputs := check.NewInputClasses(docs, cluster)
	cfg.Classes, cfg.NodePools = inputs, inputs
	iamf.versionFromEKS(ctx, &cfg, warn)
	report := check.Run(ctx, rules.NewChecker(cfg), docs)

	var buf bytes.Buffer
	sum, err := rec.WriteSnapshot(&buf)
	if err == nil {
		if o.outFile == "-" {
			_, err = stdout.Write(buf.Bytes())
		} else {
			err = os.WriteFile(o.outFile, buf.Bytes(), 0o600)
		}
	}
	if err != nil {
		say("writing the snapshot: %v", err)
		return exitFailure
	}
	where := "stdout"
	if o.outFile != "-" {
		where = o.outFile
	}
	say("wrote %s (%d bytes) for %d object(s): %s", where, buf.Len(), len(report.Results), sum)
	failures := rec.Failures()
	if len(failures) == 0 {
		say("read everything check needs for these objects")
	}
	for _, f := range failures {
		say("could not read %s", f)
	}
	return exitOK
}

// recordedAWSAuth reads the cluster's aws-auth for the rules, and records
// it for the snapshot.
type recordedAWSAuth struct {
	reader client.Reader
	rec    *authz.Recorder
}

func (r recordedAWSAuth) AWSAuth(ctx context.Context) (rules.AWSAuth, error) {
	var cm corev1.ConfigMap
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: rules.AWSAuthNamespace, Name: rules.AWSAuthName}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		r.rec.SetAWSAuth(nil, true)
		return rules.AWSAuth{}, nil
	case err != nil:
		r.rec.FailAWSAuth(err)
		return rules.AWSAuth{}, err
	}
	r.rec.SetAWSAuth(cm.Data, false)
	return rules.ParseAWSAuth(cm.Data)
}

// snapshotAWSAuth is the snapshot's awsAuth section as the rules read
// aws-auth; ok is false without a snapshot or the section.
func (f *iamFlags) snapshotAWSAuth() (rules.AWSAuthSource, bool) {
	if f.snap == nil {
		return nil, false
	}
	a, ok := f.snap.AWSAuth()
	if !ok {
		return nil, false
	}
	if a.Absent {
		return rules.StaticAWSAuth{}, true
	}
	auth, err := rules.ParseAWSAuth(a.Data)
	if err != nil {
		return rules.StaticAWSAuth{Err: fmt.Errorf("%s: awsAuth: %w", f.snapshot, err)}, true
	}
	return rules.StaticAWSAuth{Auth: auth}, true
}
