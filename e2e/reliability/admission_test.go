package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// Shared scenario of testdata/iam/sample-snapshot.json.
const (
	sampleSnapshot = "../../testdata/iam/sample-snapshot.json"
	controllerARN  = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	clusterName    = "demo"
	region         = "us-west-2"

	// awsSecret is the secret access key serve is given in the tests that
	// check it never reaches a log (AWS's documented example key).
	awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// kindInfo is what an AdmissionReview says about an object's kind.
type kindInfo struct {
	gvk      metav1.GroupVersionKind
	resource metav1.GroupVersionResource
	path     string
}

var (
	ec2NodeClassV1 = kindInfo{
		gvk:      metav1.GroupVersionKind{Group: rules.KarpenterAWSGroup, Version: "v1", Kind: rules.EC2NodeClassKind},
		resource: metav1.GroupVersionResource{Group: rules.KarpenterAWSGroup, Version: "v1", Resource: "ec2nodeclasses"},
		path:     webhook.EC2NodeClassPath,
	}
	nodePoolV1 = kindInfo{
		gvk:      metav1.GroupVersionKind{Group: rules.KarpenterGroup, Version: "v1", Kind: rules.NodePoolKind},
		resource: metav1.GroupVersionResource{Group: rules.KarpenterGroup, Version: "v1", Resource: "nodepools"},
		path:     webhook.NodePoolPath,
	}
	eksNodeClassV1 = kindInfo{
		gvk:      metav1.GroupVersionKind{Group: rules.EKSGroup, Version: "v1", Kind: rules.NodeClassKind},
		resource: metav1.GroupVersionResource{Group: rules.EKSGroup, Version: "v1", Resource: "nodeclasses"},
		path:     webhook.NodeClassPath,
	}
)

// object is one admitted object: its kind and its JSON.
type object struct {
	kind kindInfo
	name string
	json []byte
}

func ec2NodeClass(name, role, profile string) object {
	spec := map[string]string{}
	if role != "" {
		spec["role"] = role
	}
	if profile != "" {
		spec["instanceProfile"] = profile
	}
	return mustObject(ec2NodeClassV1, name, spec)
}

func eksNodeClass(name, role string) object {
	return mustObject(eksNodeClassV1, name, map[string]string{"role": role})
}

func nodePool(name, className string) object {
	return mustObject(nodePoolV1, name, map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeClassRef": map[string]string{"group": rules.KarpenterAWSGroup, "kind": rules.EC2NodeClassKind, "name": className},
	}}})
}

func mustObject(k kindInfo, name string, spec any) object {
	b, err := json.Marshal(map[string]any{
		"apiVersion": k.gvk.Group + "/" + k.gvk.Version,
		"kind":       k.gvk.Kind,
		"metadata":   map[string]any{"name": name, "uid": "0c6f1c5e-0000-4000-8000-" + fmt.Sprintf("%012x", len(name))},
		"spec":       spec,
	})
	if err != nil {
		panic(err)
	}
	return object{kind: k, name: name, json: b}
}

var uidCounter atomic.Uint64

// reviewBody is the AdmissionReview the API server sends to create obj.
func reviewBody(obj object) []byte {
	return reviewBodyRaw(obj.kind, obj.name, admissionv1.Create, obj.json)
}

// reviewBodyRaw builds an AdmissionReview around raw, spliced in as it is
// (encoding/json would refuse or repair the hostile objects some tests send).
func reviewBodyRaw(k kindInfo, name string, op admissionv1.Operation, raw []byte) []byte {
	const placeholder = `"__OBJECT__"`
	object := runtime.RawExtension{}
	if raw != nil {
		object.Raw = []byte(placeholder)
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", uidCounter.Add(1))),
			Kind:      k.gvk,
			Resource:  k.resource,
			Name:      name,
			Operation: op,
			UserInfo:  authUser,
			Object:    object,
		},
	}
	b, err := json.Marshal(ar)
	if err != nil {
		panic(err)
	}
	if raw != nil {
		b = bytes.Replace(b, []byte(placeholder), raw, 1)
	}
	return b
}

// authUser is the user every test admission comes from.
var authUser = authenticationv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}}

// answer is a decoded admission response and what it took to get it.
type answer struct {
	status   int // HTTP status of the reply
	body     []byte
	response *admissionv1.AdmissionResponse
	elapsed  time.Duration
}

func (a answer) allowed() bool { return a.response != nil && a.response.Allowed }

// code returns status.code of the answer (200 when absent).
func (a answer) code() int32 {
	if a.response == nil || a.response.Result == nil {
		return http.StatusOK
	}
	return a.response.Result.Code
}

func (a answer) message() string {
	if a.response == nil || a.response.Result == nil {
		return ""
	}
	return a.response.Result.Message
}

// codes returns the reason codes in the denial message and the warnings.
func (a answer) codes() map[string]bool {
	out := map[string]bool{}
	var texts []string
	if a.response != nil {
		texts = append(texts, a.response.Warnings...)
	}
	texts = append(texts, strings.Split(a.message(), "\n")...)
	for _, t := range texts {
		for {
			i := strings.Index(t, "[")
			if i < 0 {
				break
			}
			j := strings.Index(t[i:], "]")
			if j < 0 {
				break
			}
			code := t[i+1 : i+j]
			if code != "" && !strings.ContainsAny(code, " \"") {
				out[code] = true
			}
			t = t[i+j:]
		}
	}
	return out
}

func (a answer) String() string {
	if a.response == nil {
		return fmt.Sprintf("HTTP %d, no admission response: %.300s", a.status, a.body)
	}
	return fmt.Sprintf("allowed=%v code=%d message=%q warnings=%q (in %v)", a.response.Allowed, a.code(), a.message(), a.response.Warnings, a.elapsed)
}

// post sends an AdmissionReview body to url (base + path) and decodes the
// answer. A transport error is returned as such.
func post(ctx context.Context, hc *http.Client, url string, body []byte) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	// Bounded read: a reply this large would itself be a finding.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	elapsed := time.Since(start)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, body: b, elapsed: elapsed}
	var ar admissionv1.AdmissionReview
	if json.Unmarshal(b, &ar) == nil && ar.Response != nil {
		a.response = ar.Response
	}
	return a, nil
}

// admit posts obj's creation to base and fails the test on a transport
// error or a reply that is not an AdmissionReview.
func admit(t *testing.T, hc *http.Client, base string, obj object) answer {
	t.Helper()
	a, err := post(context.Background(), hc, base+obj.kind.path, reviewBody(obj))
	if err != nil {
		t.Fatalf("admitting %s %s: %v", obj.kind.gvk.Kind, obj.name, err)
	}
	if a.response == nil {
		t.Fatalf("admitting %s %s: %s", obj.kind.gvk.Kind, obj.name, a)
	}
	return a
}
