package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// Bounds on what one hostile request may cost. They are generous
// (a bound, not a budget): the point is that cost follows the request
// size limit, not the attacker's imagination.
const (
	// maxAnswerBytes bounds the reply to any request: a denial names the
	// offending value shortened, never echoes it whole.
	maxAnswerBytes = 16 << 10
	// maxAllocPerBodyByte bounds the bytes allocated while answering, per
	// byte of request body (decoding copies the body a few times).
	maxAllocPerBodyByte = 40
	// minAllocBound is the allocation bound for small bodies.
	minAllocBound = 8 << 20
	// requestSizeLimit is controller-runtime's limit on an admission body.
	requestSizeLimit = 7 << 20
)

// snapshotHandlers serves webhook.Handlers over httptest with the sample
// snapshot as IAM.
func snapshotHandlers(t *testing.T) string {
	t.Helper()
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	controller, err := authz.ParseRoleARN(controllerARN)
	if err != nil {
		t.Fatal(err)
	}
	classes := &classMap{ec2: map[string]*rules.EC2NodeClass{}}
	classes.put("good", "KarpenterNodeRole-demo", "")
	c := rules.NewChecker(rules.Config{IAM: snap, Controller: controller, ClusterName: clusterName, Region: region, OnIAMError: rules.OnIAMErrorDeny, Classes: classes})
	// Through the serve's request checks, as serve registers the handlers.
	srv := webhook.NewServer(webhook.ServerOptions{})
	for path, wh := range webhook.Handlers(c, webhook.NewMetrics()) {
		srv.Register(path, wh)
	}
	ts := httptest.NewServer(srv.WebhookMux())
	t.Cleanup(ts.Close)
	return ts.URL
}

// hostileCase is one hostile request and what a clear answer to it is.
type hostileCase struct {
	name string
	path string
	// body is the request body; bodyReader, when set, streams one instead.
	body        []byte
	bodyReader  func() io.Reader
	contentType string
	// want checks the answer; nil means "a denial or a 400, nothing else".
	want func(t *testing.T, a answer)
}

// rawObject is an object's JSON with its spec written by hand.
func rawObject(k kindInfo, name, specJSON string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"` + k.gvk.Group + "/" + k.gvk.Version + `","kind":"` + k.gvk.Kind + `","metadata":{"name":"` + name + `"}`)
	if specJSON != "" {
		b.WriteString(`,"spec":` + specJSON)
	}
	b.WriteString("}")
	return b.Bytes()
}

func createReview(k kindInfo, name string, raw []byte) []byte {
	return reviewBodyRaw(k, name, admissionv1.Create, raw)
}

// nested returns depth levels of JSON arrays around a string.
func nested(depth int) string {
	return strings.Repeat("[", depth) + `"x"` + strings.Repeat("]", depth)
}

func deniedWith(code rules.Code) func(t *testing.T, a answer) {
	return func(t *testing.T, a answer) {
		t.Helper()
		if a.allowed() || a.code() != http.StatusForbidden || !a.codes()[string(code)] {
			t.Errorf("got %s, want a 403 denial with [%s]", a, code)
		}
	}
}

func badRequest(wantInMessage string) func(t *testing.T, a answer) {
	return func(t *testing.T, a answer) {
		t.Helper()
		if a.allowed() || a.code() != http.StatusBadRequest || !strings.Contains(a.message(), wantInMessage) {
			t.Errorf("got %s, want a 400 saying %q", a, wantInMessage)
		}
	}
}

func hostileCases() []hostileCase {
	long := strings.Repeat("R", 10_000)
	return []hostileCase{
		{
			name: "body over the size limit",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "huge", rawObject(ec2NodeClassV1, "huge",
				`{"role":"KarpenterNodeRole-demo","pad":"`+strings.Repeat("p", requestSizeLimit)+`"}`)),
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusRequestEntityTooLarge || !strings.Contains(a.message(), "too large") {
					t.Errorf("got %s, want a 413 saying the request is too large", a)
				}
			},
		},
		{
			name: "endless body",
			path: webhook.EC2NodeClassPath,
			bodyReader: func() io.Reader {
				return io.MultiReader(strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":{"pad":"`),
					io.LimitReader(repeatReader('p'), 64<<20))
			},
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusRequestEntityTooLarge {
					t.Errorf("got %s, want a 413", a)
				}
			},
		},
		{
			name: "NodePool sent to the EC2NodeClass path",
			path: webhook.EC2NodeClassPath,
			body: createReview(nodePoolV1, "pool", nodePool("pool", "good").json),
			want: badRequest("this webhook path validates EC2NodeClass.karpenter.k8s.aws"),
		},
		{
			name: "10,000-character kind sent to a path",
			path: webhook.EC2NodeClassPath,
			body: createReview(kindInfo{gvk: metav1.GroupVersionKind{Group: long, Version: "v1", Kind: long}}, "x", []byte(`{}`)),
			want: badRequest("this webhook path validates EC2NodeClass.karpenter.k8s.aws"),
		},
		{
			name: "request kind and object kind disagree",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "pool", nodePool("pool", "good").json),
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusBadRequest {
					t.Errorf("got %s, want a 400", a)
				}
			},
		},
		{
			name: "null spec",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "null-spec", rawObject(ec2NodeClassV1, "null-spec", "null")),
			want: deniedWith(rules.RoleInstanceProfileExclusive),
		},
		{
			name: "missing spec",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "no-spec", rawObject(ec2NodeClassV1, "no-spec", "")),
			want: deniedWith(rules.RoleInstanceProfileExclusive),
		},
		{
			name: "missing spec, EKS NodeClass",
			path: webhook.NodeClassPath,
			body: createReview(eksNodeClassV1, "no-spec", rawObject(eksNodeClassV1, "no-spec", "")),
			want: deniedWith(rules.RoleInstanceProfileExclusive),
		},
		{
			// Nothing to check: the CRD's own schema requires nodeClassRef.
			name: "null spec, NodePool",
			path: webhook.NodePoolPath,
			body: createReview(nodePoolV1, "null-spec", rawObject(nodePoolV1, "null-spec", "null")),
			want: func(t *testing.T, a answer) {
				if !a.allowed() || len(a.codes()) != 0 {
					t.Errorf("got %s, want a plain allow (nothing references a class)", a)
				}
			},
		},
		{
			name: "spec of the wrong type",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "string-spec", rawObject(ec2NodeClassV1, "string-spec", `"role: x"`)),
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusBadRequest {
					t.Errorf("got %s, want a 400", a)
				}
			},
		},
		{
			name: "no object",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "none", nil),
			want: badRequest("no content"),
		},
		{
			name: "non-UTF-8 role",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "latin1", rawObject(ec2NodeClassV1, "latin1", "{\"role\":\"Karpenter\xff\xfeNode\xc3\"}")),
			want: deniedWith(rules.RoleInvalidName),
		},
		{
			name: "non-UTF-8 name and profile",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "bad\xffname", rawObject(ec2NodeClassV1, "bad\xffname", "{\"instanceProfile\":\"\xed\xa0\x80profile\"}")),
			want: deniedWith(rules.InstanceProfileInvalidName),
		},
		{
			name: "deeply nested JSON in an unknown field",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "deep", rawObject(ec2NodeClassV1, "deep", `{"role":"KarpenterNodeRole-demo","x":`+nested(9_000)+`}`)),
			want: func(t *testing.T, a answer) {
				// Within the JSON decoder's depth limit the object is judged
				// on its role; beyond it, it is a 400 (next case).
				if !a.allowed() && a.code() != http.StatusBadRequest {
					t.Errorf("got %s, want the role's verdict or a 400", a)
				}
			},
		},
		{
			name: "JSON nested past the decoder's depth limit",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "deeper", rawObject(ec2NodeClassV1, "deeper", `{"role":"KarpenterNodeRole-demo","x":`+nested(200_000)+`}`)),
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusBadRequest {
					t.Errorf("got %s, want a 400", a)
				}
			},
		},
		{
			name: "deeply nested JSON where the role should be",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "deep-role", rawObject(ec2NodeClassV1, "deep-role", `{"role":`+nested(5_000)+`}`)),
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusBadRequest {
					t.Errorf("got %s, want a 400", a)
				}
			},
		},
		{
			name: "10,000-character role",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "long-role", rawObject(ec2NodeClassV1, "long-role", `{"role":"`+long+`"}`)),
			want: deniedWith(rules.RoleInvalidName),
		},
		{
			name: "10,000-character role path",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "long-path", rawObject(ec2NodeClassV1, "long-path", `{"role":"`+strings.Repeat("p/", 5_000)+`Name"}`)),
			want: deniedWith(rules.RoleInvalidName),
		},
		{
			name: "10,000-character role ARN",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "long-arn", rawObject(ec2NodeClassV1, "long-arn", `{"role":"arn:aws:iam::111122223333:role/`+long+`"}`)),
			want: deniedWith(rules.RoleARNMalformed),
		},
		{
			name: "10,000-character instance profile",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "long-profile", rawObject(ec2NodeClassV1, "long-profile", `{"instanceProfile":"`+long+`"}`)),
			want: deniedWith(rules.InstanceProfileInvalidName),
		},
		{
			name: "10,000-character role and profile",
			path: webhook.EC2NodeClassPath,
			body: createReview(ec2NodeClassV1, "long-both", rawObject(ec2NodeClassV1, "long-both", `{"role":"`+long+`","instanceProfile":"`+long+`"}`)),
			want: deniedWith(rules.RoleInstanceProfileExclusive),
		},
		{
			name: "10,000-character nodeClassRef name",
			path: webhook.NodePoolPath,
			body: createReview(nodePoolV1, "long-ref", nodePool("long-ref", long).json),
			want: func(t *testing.T, a answer) {
				if !a.allowed() || !a.codes()[string(rules.NodeClassNotFound)] {
					t.Errorf("got %s, want allowed with a [NodeClassNotFound] warning", a)
				}
			},
		},
		{
			name: "10,000-character nodeClassRef kind",
			path: webhook.NodePoolPath,
			body: createReview(nodePoolV1, "long-kind", rawObject(nodePoolV1, "long-kind", `{"template":{"spec":{"nodeClassRef":{"group":"`+long+`","kind":"`+long+`","name":"`+long+`"}}}}`)),
			want: func(t *testing.T, a answer) {
				if !a.allowed() || !a.codes()[string(rules.NodeClassRefUnsupported)] {
					t.Errorf("got %s, want allowed with a [NodeClassRefUnsupported] warning", a)
				}
			},
		},
		{
			name: "unknown operation",
			path: webhook.EC2NodeClassPath,
			body: reviewBodyRaw(ec2NodeClassV1, "op", admissionv1.Operation("EXPLODE"), ec2NodeClass("op", "KarpenterNodeRole-demo", "").json),
			want: badRequest("unknown operation"),
		},
		{
			name: "CONNECT",
			path: webhook.EC2NodeClassPath,
			body: reviewBodyRaw(ec2NodeClassV1, "conn", admissionv1.Connect, ec2NodeClass("conn", "KarpenterNodeRole-demo", "").json),
			want: badRequest("unknown operation"),
		},
		{
			name: "unknown AdmissionReview version",
			path: webhook.EC2NodeClassPath,
			body: bytes.Replace(reviewBody(ec2NodeClass("v9", "NoSuchRole", "")), []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v9"`), 1),
			want: badRequest("not an AdmissionReview of admission.k8s.io/v1"),
		},
		{
			name: "not an AdmissionReview",
			path: webhook.EC2NodeClassPath,
			body: bytes.Replace(reviewBody(ec2NodeClass("kind", "NoSuchRole", "")), []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"Pod"`), 1),
			want: badRequest("not an AdmissionReview"),
		},
		{
			name:        "content type with parameters",
			path:        webhook.EC2NodeClassPath,
			body:        reviewBody(ec2NodeClass("ct-params", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "")),
			contentType: "application/json; charset=utf-8",
			want:        deniedWith(rules.RoleIsARN),
		},
		{
			name: "update without the old object",
			path: webhook.EC2NodeClassPath,
			body: reviewBodyRaw(ec2NodeClassV1, "upd", admissionv1.Update, ec2NodeClass("upd", "KarpenterNodeRole-demo", "").json),
			want: badRequest("no content"),
		},
		{
			name: "empty body",
			path: webhook.EC2NodeClassPath,
			body: []byte{},
			want: badRequest("empty"),
		},
		{
			name: "not JSON",
			path: webhook.EC2NodeClassPath,
			body: []byte("\x00\x01\x02 definitely not an AdmissionReview \xff"),
			want: func(t *testing.T, a answer) {
				if a.allowed() || a.code() != http.StatusBadRequest {
					t.Errorf("got %s, want a 400", a)
				}
			},
		},
		{
			name:        "wrong content type",
			path:        webhook.EC2NodeClassPath,
			body:        reviewBody(ec2NodeClass("ct", "KarpenterNodeRole-demo", "")),
			contentType: "application/yaml",
			want:        badRequest("contentType"),
		},
		{
			name: "AdmissionReview without a request",
			path: webhook.EC2NodeClassPath,
			body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			want: func(t *testing.T, a answer) {
				if a.allowed() {
					t.Errorf("got %s, want no allow for a review without a request", a)
				}
			},
		},
	}
}

// TestHostileInput sends requests no API server would send, and some it
// would, at their worst: each gets a clear denial or a 400, never a panic
// (httptest would report the handler's panic and the reply would be
// missing), a reply of bounded size, and bounded allocation.
func TestHostileInput(t *testing.T) {
	base := snapshotHandlers(t)
	hc := &http.Client{}
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			size := int64(len(tc.body))
			if tc.bodyReader != nil {
				body = tc.bodyReader()
				size = requestSizeLimit
			} else {
				body = bytes.NewReader(tc.body)
			}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)

			allocBefore := totalAlloc()
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
			resp.Body.Close()
			allocated := totalAlloc() - allocBefore
			if err != nil {
				t.Fatalf("reading the reply: %v", err)
			}
			if len(raw) > maxAnswerBytes {
				t.Errorf("reply is over %d bytes", maxAnswerBytes)
			}
			if bound := max(uint64(size)*maxAllocPerBodyByte, minAllocBound); allocated > bound {
				t.Errorf("answering allocated %d MiB for a %d KiB request, over the %d MiB bound", allocated>>20, size>>10, bound>>20)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d: %.300s; an admission webhook answers with an AdmissionReview", resp.StatusCode, raw)
			}
			var ar admissionv1.AdmissionReview
			if err := json.Unmarshal(raw, &ar); err != nil || ar.Response == nil {
				t.Fatalf("reply is not an AdmissionReview with a response (%v): %.300s", err, raw)
			}
			a := answer{status: resp.StatusCode, body: raw, response: ar.Response}
			if !utf8.ValidString(a.message()) {
				t.Errorf("message is not valid UTF-8: %q", a.message())
			}
			for _, w := range a.response.Warnings {
				if len(w) >= 256 || !utf8.ValidString(w) {
					t.Errorf("warning of %d bytes (valid UTF-8: %v): %q", len(w), utf8.ValidString(w), w)
				}
			}
			for _, line := range strings.Split(a.message(), "\n") {
				if len(line) > 1024 {
					t.Errorf("denial line of %d bytes: %.200q...", len(line), line)
				}
			}
			if tc.want != nil {
				tc.want(t, a)
			} else if a.allowed() {
				t.Errorf("got %s, want a denial or a 400", a)
			}
		})
	}
}

// TestOnlyPOSTReachesTheRules: a request with another method is refused
// with 405 and never judged, whatever its body.
func TestOnlyPOSTReachesTheRules(t *testing.T) {
	base := snapshotHandlers(t)
	body := reviewBody(ec2NodeClass("by-get", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ""))
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete, "BREW"} {
		req, err := http.NewRequest(method, base+webhook.EC2NodeClassPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || bytes.Contains(b, []byte("RoleIsARN")) {
			t.Errorf("%s: HTTP %d %.200q, want 405 and no verdict", method, resp.StatusCode, b)
		}
	}
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// repeatReader is an endless stream of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
