// Package deploydryrun checks that what deploy/ installs is accepted by a
// real kube-apiserver. Its tests start their own envtest control plane with
// the CRDs an installation meets in a cluster (cert-manager's, read from the
// cert-manager Go module this repository pins; Karpenter's; a ServiceMonitor
// CRD written for the test), render deploy/base, deploy/overlays/snapshot,
// the base with each component of deploy/components, and the Helm chart
// with the pinned kustomize and helm from bin/tools, and
// send every rendered object to the API server as a server-side dry-run
// create with strict field validation. The API server then runs everything
// it runs on a real install short of persisting: OpenAPI and CRD schema
// validation (CEL rules of cert-manager's CRDs included), compilation of
// the webhook's matchConditions, RBAC escalation checks and Pod Security
// admission. A rejection, an unknown field or a warning fails the test,
// naming the object and quoting the server.
//
// It has no Go API; everything is in its tests. Missing envtest binaries or
// CRDs skip the tests unless NCG_REQUIRE_ENVTEST=1, missing tools unless
// NCG_REQUIRE_TOOLS=1; `make test` sets both.
package deploydryrun
