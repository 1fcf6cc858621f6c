// Package envtest_test is nodeclass-guard's envtest tier: the real binary
// (`nodeclass-guard serve`) behind a real kube-apiserver serving Karpenter's
// real CRDs, registered through deploy/base's ValidatingWebhookConfiguration,
// asking IAM questions of a local IAM endpoint through the real AWS SDK.
// Every assertion is about what a client of the API server sees.
//
// Needs `make envtest-assets crds`; without them the tests skip, unless
// NCG_REQUIRE_ENVTEST=1 (make test), which makes them fail.
package envtest_test

import (
	"os"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// One control plane per configuration for the whole package, each started
// by the first test that asks for it (a start costs seconds):
//   - v1Env: Karpenter's current CRDs, serve asking the local IAM endpoint
//     (--iam-endpoint), --on-iam-error=deny;
//   - v1beta1Env: Karpenter 1.0.x's CRDs (v1 and v1beta1 served);
//   - snapshotEnv: serve reading the sample snapshot file (--iam-snapshot),
//     as deploy/overlays/snapshot runs it;
//   - configMapEnv: the local endpoint serving the sample account with its
//     cluster in CONFIG_MAP authentication mode and no spot service-linked
//     role (join_test.go), written by TestMain.
var (
	v1Env        = &framework.Shared{}
	v1beta1Env   = &framework.Shared{Options: framework.Options{CRDs: framework.CRDsV1beta1}}
	snapshotEnv  = &framework.Shared{Options: framework.Options{IAM: framework.IAMSnapshotFile}}
	configMapEnv = &framework.Shared{}
	// auditEnv: serve with a short audit interval and cache TTL, and leader
	// election, for the audit tests (audit_test.go), whose IAM changes must
	// not leak into other tests.
	auditEnv = &framework.Shared{Options: framework.Options{ServeArgs: []string{
		"--audit-interval=" + auditInterval.String(),
		"--audit-qps=50",
		"--iam-cache-ttl=" + auditTTL.String(),
		"--iam-cache-negative-ttl=" + auditTTL.String(),
		"--leader-elect",
		"--leader-election-namespace=nodeclass-guard",
	}}}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ncg-envtest-")
	if err != nil {
		println("envtest:", err.Error())
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		snap, err := configMapSnapshot(dir)
		if err != nil {
			println("envtest: writing the CONFIG_MAP snapshot:", err.Error())
			return 1
		}
		configMapEnv.Options.Snapshot = snap
		return framework.RunMain(m, v1Env, v1beta1Env, snapshotEnv, configMapEnv, auditEnv)
	}()
	os.Exit(code)
}
