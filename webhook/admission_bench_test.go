package webhook

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var setBenchLogger sync.Once

// BenchmarkAdmission measures one EC2NodeClass admission through the
// webhook handler serve registers (controller-runtime's decoding, the
// typed validator, the rules over a warm cache, the verdict metric, the
// per-admission log line in serve's JSON format, the encoded answer),
// without TLS or the HTTP server: the in-process share of the warm path.
func BenchmarkAdmission(b *testing.B) {
	setBenchLogger.Do(func() {
		// serve's logger: zap's production JSON encoder; the lines go nowhere.
		log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	})
	c := benchChecker(b, warmCache(b))
	wh := Handlers(c, NewMetrics())[EC2NodeClassPath]
	for _, bc := range benchClasses {
		b.Run(bc.name, func(b *testing.B) {
			spec := fmt.Sprintf(`{"role":%q,"instanceProfile":%q,"amiSelectorTerms":[{"alias":"al2023@latest"}],
				"subnetSelectorTerms":[{"tags":{"karpenter.sh/discovery":"demo"}}],
				"securityGroupSelectorTerms":[{"tags":{"karpenter.sh/discovery":"demo"}}]}`, bc.spec.Role, bc.spec.InstanceProfile)
			body := []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
				"uid":"00000000-0000-4000-8000-000000000001","kind":{"group":"karpenter.k8s.aws","version":"v1","kind":"EC2NodeClass"},
				"resource":{"group":"karpenter.k8s.aws","version":"v1","resource":"ec2nodeclasses"},
				"name":"default","operation":"CREATE","userInfo":{"username":"admin"},
				"object":%s,"oldObject":null,"dryRun":false}}`, ec2NodeClassJSON("v1", "default", spec)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, EC2NodeClassPath, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				wh.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("answer %d: %s", rec.Code, rec.Body.Bytes())
				}
			}
		})
	}
}
