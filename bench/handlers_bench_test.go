package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// In-process benchmarks of the three handlers the load harness compares,
// on the harness's own AdmissionReview, without TLS or HTTP: where the
// warm path's CPU time per request goes.
//
//	trivial       TrivialHandler: one encoding/json decode, allowed: true
//	noopValidator NoopHandler: controller-runtime's admission.Webhook with
//	              a typed validator that allows everything: the floor
//	serve         webhook.Handlers over a warm IAM cache: nodeclass-guard

var setLogger sync.Once

// serveLogger gives controller-runtime serve's logger: zap's production
// JSON encoder at Info, the lines discarded.
func serveLogger() {
	setLogger.Do(func() { log.SetLogger(zap.New(zap.WriteTo(io.Discard))) })
}

// warmServeHandler returns serve's EC2NodeClass webhook over a Cached view
// of the sample snapshot, warmed for class.
func warmServeHandler(b *testing.B, class Class) http.Handler {
	b.Helper()
	snap, err := authz.LoadSnapshotFile("../testdata/iam/sample-snapshot.json")
	if err != nil {
		b.Fatal(err)
	}
	ctl, _ := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
	c := rules.NewChecker(rules.Config{IAM: authz.NewCached(snap, authz.CacheOptions{}), Controller: ctl, ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny})
	nc := &rules.EC2NodeClass{}
	nc.Name, nc.Spec.Role, nc.Spec.InstanceProfile = class.Name, class.Role, class.InstanceProfile
	if v := c.CheckEC2NodeClass(context.Background(), nc); !v.Allowed() {
		b.Fatalf("warming the cache: %s", v.DenialMessage())
	}
	return webhook.Handlers(c, webhook.NewMetrics())[webhook.EC2NodeClassPath]
}

func BenchmarkHandler(b *testing.B) {
	serveLogger()
	class := Class{Name: "default", Role: "KarpenterNodeRole-demo"}
	body := ReviewBody(class, "00000000-0000-4000-8000-000000000001")
	handlers := []struct {
		name string
		h    func(*testing.B) http.Handler
	}{
		{"trivial", func(*testing.B) http.Handler { return TrivialHandler{} }},
		{"noopValidator", func(*testing.B) http.Handler { return NoopHandler() }},
		{"serve", func(b *testing.B) http.Handler { return warmServeHandler(b, class) }},
	}
	for _, hc := range handlers {
		b.Run(hc.name, func(b *testing.B) {
			h := hc.h(b)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, webhook.EC2NodeClassPath, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), allowedTrue) {
					b.Fatalf("answer %d: %s", rec.Code, rec.Body.Bytes())
				}
			}
		})
	}
}
