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

// One control plane per CRD set for the whole package: each start costs
// seconds. The v1beta1 one starts only if a test asks for it.
var (
	v1Env      = &framework.Shared{}
	v1beta1Env = &framework.Shared{Options: framework.Options{CRDs: framework.CRDsV1beta1}}
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunMain(m, v1Env, v1beta1Env))
}
