// Package reliability holds the tests that break things on purpose: IAM
// down, slow, throttling, failing or answering garbage; certificates
// replaced and the process stopped while admissions are in flight; hostile
// admission requests; attacks on what a request, a connection and a caller
// can cost (attacks_test.go); old TLS versions; unauthenticated metrics
// scrapes; secrets in the logs. The webhook must never be the reason a cluster
// cannot change, and never let a broken class through silently.
//
// The fault and hostile-input tests drive webhook.Handlers in this process
// over httptest; the rotation, shutdown and security tests run the real
// `nodeclass-guard serve` binary through e2e/framework (a real
// kube-apiserver), and skip like the envtest tier when its assets are
// missing. docs/failure-model.md describes what these tests pin down.
package reliability
