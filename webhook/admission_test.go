package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// admissionFixture serves the three webhooks over HTTP, as the manager's
// webhook server does (minus TLS), with a Checker over the sample snapshot.
type admissionFixture struct {
	url     string
	metrics *Metrics
}

func newAdmissionFixture(t *testing.T) *admissionFixture {
	t.Helper()
	ctl, _ := authz.ParseRoleARN(ctlKarpenter)
	snap := loadSampleSnapshot(t)
	c := rules.NewChecker(rules.Config{IAM: snap, EKS: snap, EC2: snap, KubernetesVersion: "1.34", Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: rules.OnIAMErrorAllow, Classes: testClasses()})
	m := NewMetrics()
	mux := http.NewServeMux()
	hs := Handlers(c, m)
	for _, p := range []string{EC2NodeClassPath, NodePoolPath, NodeClassPath} {
		wh, ok := hs[p]
		if !ok {
			t.Fatalf("Handlers has no webhook for %s", p)
		}
		mux.Handle(p, wh)
	}
	if len(hs) != 3 {
		t.Errorf("Handlers returned %d webhooks, want 3", len(hs))
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &admissionFixture{url: srv.URL, metrics: m}
}

// Object documents as the API server sends them: full objects, with fields
// the webhook does not read.

func ec2NodeClassJSON(version, name, spec string) string {
	return fmt.Sprintf(`{"apiVersion":"karpenter.k8s.aws/%s","kind":"EC2NodeClass","metadata":{"name":%q,"uid":"6f0c0d1e-0000-4000-8000-000000000001","generation":1},
		"spec":%s,"status":{"conditions":[{"type":"Ready","status":"True"}]}}`, version, name, spec)
}

func ec2Spec(role, profile string) string {
	fields := []string{`"amiSelectorTerms":[{"alias":"al2023@latest"}]`, `"subnetSelectorTerms":[{"tags":{"karpenter.sh/discovery":"demo"}}]`}
	if role != "" {
		fields = append(fields, fmt.Sprintf(`"role":%q`, role))
	}
	if profile != "" {
		fields = append(fields, fmt.Sprintf(`"instanceProfile":%q`, profile))
	}
	return "{" + strings.Join(fields, ",") + "}"
}

func nodePoolJSON(version, name, ref string) string {
	return fmt.Sprintf(`{"apiVersion":"karpenter.sh/%s","kind":"NodePool","metadata":{"name":%q},
		"spec":{"template":{"spec":{"nodeClassRef":%s,"requirements":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64"]}]}},"limits":{"cpu":"1000"}}}`, version, name, ref)
}

func eksNodeClassJSON(name, spec string) string {
	return fmt.Sprintf(`{"apiVersion":"eks.amazonaws.com/v1","kind":"NodeClass","metadata":{"name":%q},"spec":%s}`, name, spec)
}

// request describes one AdmissionReview.
type request struct {
	reviewVersion string // "v1" (default) or "v1beta1"
	group         string
	version       string
	kind          string
	op            admissionv1.Operation
	object        string
	oldObject     string
	dryRun        bool
}

var uidSeq int

func (r request) body() []byte {
	uidSeq++
	v := r.reviewVersion
	if v == "" {
		v = "v1"
	}
	resource := map[string]string{rules.EC2NodeClassKind: "ec2nodeclasses", rules.NodePoolKind: "nodepools", rules.NodeClassKind: "nodeclasses"}[r.kind]
	req := admissionv1.AdmissionRequest{
		UID:             types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", uidSeq)),
		Kind:            metav1.GroupVersionKind{Group: r.group, Version: r.version, Kind: r.kind},
		Resource:        metav1.GroupVersionResource{Group: r.group, Version: r.version, Resource: resource},
		RequestKind:     &metav1.GroupVersionKind{Group: r.group, Version: r.version, Kind: r.kind},
		RequestResource: &metav1.GroupVersionResource{Group: r.group, Version: r.version, Resource: resource},
		Name:            "obj",
		Operation:       r.op,
		DryRun:          &r.dryRun,
	}
	if r.object != "" {
		req.Object = runtime.RawExtension{Raw: []byte(r.object)}
	}
	if r.oldObject != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(r.oldObject)}
	}
	review := map[string]any{"apiVersion": "admission.k8s.io/" + v, "kind": "AdmissionReview", "request": req}
	data, err := json.Marshal(review)
	if err != nil {
		panic(err)
	}
	return data
}

// reviewResponse is an AdmissionReview answer, with its type header.
type reviewResponse struct {
	APIVersion string                         `json:"apiVersion"`
	Kind       string                         `json:"kind"`
	Response   *admissionv1.AdmissionResponse `json:"response"`
}

func (f *admissionFixture) post(t *testing.T, path, contentType string, body io.Reader) (int, reviewResponse) {
	t.Helper()
	resp, err := http.Post(f.url+path, contentType, body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	var rr reviewResponse
	if err := json.Unmarshal(data, &rr); err != nil {
		t.Fatalf("answer is not an AdmissionReview: %v\n%s", err, data)
	}
	if rr.Response == nil {
		t.Fatalf("answer has no response: %s", data)
	}
	return resp.StatusCode, rr
}

func (f *admissionFixture) review(t *testing.T, path string, r request) *admissionv1.AdmissionResponse {
	t.Helper()
	body := r.body()
	status, rr := f.post(t, path, "application/json", bytes.NewReader(body))
	if status != http.StatusOK {
		t.Errorf("HTTP status %d, want 200 (answers are in the AdmissionReview)", status)
	}
	var sent struct {
		Request struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	_ = json.Unmarshal(body, &sent)
	if rr.Response.UID != sent.Request.UID {
		t.Errorf("response uid %q, want the request's %q", rr.Response.UID, sent.Request.UID)
	}
	wantVersion := "admission.k8s.io/v1"
	if r.reviewVersion == "v1beta1" {
		wantVersion = "admission.k8s.io/v1beta1"
	}
	if rr.APIVersion != wantVersion || rr.Kind != "AdmissionReview" {
		t.Errorf("answer is %s %s, want %s AdmissionReview", rr.APIVersion, rr.Kind, wantVersion)
	}
	return rr.Response
}

// denialLine and warningLine are the contract's formats.
var (
	denialLineRE  = regexp.MustCompile(`^spec(\.[A-Za-z.]+)?: \[[A-Za-z0-9]+\] \S.*$`)
	warningLineRE = regexp.MustCompile(`^\[[A-Za-z0-9]+\] spec(\.[A-Za-z.]+)?: \S.*$`)
)

// expectAllowed asserts an allowed answer with exactly these warning codes.
func expectAllowed(t *testing.T, resp *admissionv1.AdmissionResponse, warnCodes ...rules.Code) {
	t.Helper()
	if !resp.Allowed {
		t.Fatalf("denied, want allowed: %+v", resp.Result)
	}
	if resp.Result != nil && resp.Result.Code != 0 && resp.Result.Code != http.StatusOK {
		t.Errorf("allowed with status code %d", resp.Result.Code)
	}
	expectWarnings(t, resp, warnCodes...)
}

func expectWarnings(t *testing.T, resp *admissionv1.AdmissionResponse, warnCodes ...rules.Code) {
	t.Helper()
	if len(resp.Warnings) != len(warnCodes) {
		t.Fatalf("warnings %q, want codes %v", resp.Warnings, warnCodes)
	}
	for i, w := range resp.Warnings {
		if !warningLineRE.MatchString(w) || !strings.HasPrefix(w, "["+string(warnCodes[i])+"] ") {
			t.Errorf("warning %q: want `[%s] <field>: <text>`", w, warnCodes[i])
		}
		if len(w) >= 256 {
			t.Errorf("warning is %d characters, want < 256: %q", len(w), w)
		}
	}
}

// expectDenied asserts a 403 denial whose message has one line per code.
func expectDenied(t *testing.T, resp *admissionv1.AdmissionResponse, denyCodes ...rules.Code) []string {
	t.Helper()
	if resp.Allowed {
		t.Fatalf("allowed, want denied with %v (warnings %q)", denyCodes, resp.Warnings)
	}
	if resp.Result == nil || resp.Result.Code != http.StatusForbidden || resp.Result.Reason != metav1.StatusReasonForbidden {
		t.Fatalf("status %+v, want code 403, reason Forbidden", resp.Result)
	}
	lines := strings.Split(resp.Result.Message, "\n")
	if len(lines) != len(denyCodes) {
		t.Fatalf("message has %d lines, want one per code %v:\n%s", len(lines), denyCodes, resp.Result.Message)
	}
	for i, l := range lines {
		if !denialLineRE.MatchString(l) || !strings.Contains(l, ": ["+string(denyCodes[i])+"] ") {
			t.Errorf("line %q: want `<field>: [%s] <text>`", l, denyCodes[i])
		}
	}
	return lines
}

// expectErrored asserts an answer that is neither allow nor deny but an
// error with this HTTP code in status.code.
func expectErrored(t *testing.T, resp *admissionv1.AdmissionResponse, code int32, msg string) {
	t.Helper()
	if resp.Allowed {
		t.Fatalf("allowed, want an error %d", code)
	}
	if resp.Result == nil || resp.Result.Code != code {
		t.Fatalf("status %+v, want code %d", resp.Result, code)
	}
	if !strings.Contains(resp.Result.Message, msg) {
		t.Errorf("message %q does not contain %q", resp.Result.Message, msg)
	}
}

func ec2Req(op admissionv1.Operation, object, oldObject string) request {
	return request{group: rules.KarpenterAWSGroup, version: "v1", kind: rules.EC2NodeClassKind, op: op, object: object, oldObject: oldObject}
}

func nodePoolReq(op admissionv1.Operation, object, oldObject string) request {
	return request{group: rules.KarpenterGroup, version: "v1", kind: rules.NodePoolKind, op: op, object: object, oldObject: oldObject}
}

func eksReq(op admissionv1.Operation, object, oldObject string) request {
	return request{group: rules.EKSGroup, version: "v1", kind: rules.NodeClassKind, op: op, object: object, oldObject: oldObject}
}

const roleARN = "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"

func TestAdmissionEC2NodeClass(t *testing.T) {
	f := newAdmissionFixture(t)
	good := ec2NodeClassJSON("v1", "default", ec2Spec("KarpenterNodeRole-demo", ""))
	bad := ec2NodeClassJSON("v1", "role-arn", ec2Spec(roleARN, ""))
	pathed := ec2NodeClassJSON("v1", "pathed", ec2Spec("team/KarpenterNodeRole-team", ""))

	t.Run("create good", func(t *testing.T) {
		expectAllowed(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, good, "")))
	})
	t.Run("create bad", func(t *testing.T) {
		lines := expectDenied(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, bad, "")), rules.RoleIsARN)
		if !strings.HasPrefix(lines[0], "spec.role: [RoleIsARN] ") || !strings.Contains(lines[0], "Set spec.role: KarpenterNodeRole-demo") {
			t.Errorf("line %q", lines[0])
		}
	})
	t.Run("create with a denial and a warning", func(t *testing.T) {
		resp := f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, pathed, ""))
		expectDenied(t, resp, rules.PassRoleDenied)
		expectWarnings(t, resp, rules.RoleHasPath)
	})
	t.Run("create with several denials", func(t *testing.T) {
		obj := ec2NodeClassJSON("v1", "x", ec2Spec("arn:aws:iam::444455556666:role/X", ""))
		expectDenied(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, obj, "")), rules.RoleIsARN, rules.RoleCrossAccount)
	})
	t.Run("update changing spec.role is validated", func(t *testing.T) {
		expectDenied(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, bad, good)), rules.RoleIsARN)
	})
	t.Run("update changing spec.instanceProfile is validated", func(t *testing.T) {
		obj := ec2NodeClassJSON("v1", "default", ec2Spec("KarpenterNodeRole-demo", "KarpenterNodeInstanceProfile-demo"))
		expectDenied(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, obj, good)), rules.RoleInstanceProfileExclusive)
	})
	t.Run("update changing spec.role to a good one", func(t *testing.T) {
		expectAllowed(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, good, bad)))
	})
	t.Run("update leaving spec.role alone is allowed even when bad", func(t *testing.T) {
		// A selector change is judged by the selector rules only: the
		// role the class already had is not refused by an unrelated edit.
		newer := strings.Replace(bad, `"generation":1`, `"generation":2,"labels":{"team":"a"}`, 1)
		newer = strings.Replace(newer, `{"tags":{"karpenter.sh/discovery":"demo"}}`, `{"id":"subnet-0a1demo"}`, 1)
		expectAllowed(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, newer, bad)), rules.SelectorUpdateChanges)
	})
	t.Run("status update of a bad object is allowed", func(t *testing.T) {
		newer := strings.Replace(bad, `"status":"True"`, `"status":"False"`, 1)
		expectAllowed(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, newer, bad)))
	})
	t.Run("update of an object being deleted is allowed", func(t *testing.T) {
		deleting := strings.Replace(bad, `"generation":1`, `"generation":1,"deletionTimestamp":"2025-06-01T12:00:00Z","finalizers":[]`, 1)
		deletingChanged := strings.Replace(deleting, roleARN, "not a role!", 1)
		expectAllowed(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, deletingChanged, bad)))
	})
	t.Run("delete is allowed", func(t *testing.T) {
		expectAllowed(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Delete, "", bad)))
	})
	// The registration never sends CONNECT: one reaching the webhook is a
	// misconfiguration or a direct caller, answered as such rather than
	// with an allow that looks like a passed check.
	t.Run("connect is refused", func(t *testing.T) {
		resp := f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Connect, "", ""))
		if resp.Allowed || resp.Result == nil || resp.Result.Code != 400 || !strings.Contains(resp.Result.Message, "unknown operation") {
			t.Errorf("CONNECT: %+v, want a 400 saying unknown operation", resp.Result)
		}
	})
	t.Run("dry run answers like a real request", func(t *testing.T) {
		for _, obj := range []string{good, bad, pathed} {
			real := f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, obj, ""))
			dr := ec2Req(admissionv1.Create, obj, "")
			dr.dryRun = true
			dry := f.review(t, EC2NodeClassPath, dr)
			if dry.Allowed != real.Allowed || fmt.Sprint(dry.Result) != fmt.Sprint(real.Result) || fmt.Sprint(dry.Warnings) != fmt.Sprint(real.Warnings) {
				t.Errorf("dry run answered %v %+v %q, real %v %+v %q", dry.Allowed, dry.Result, dry.Warnings, real.Allowed, real.Result, real.Warnings)
			}
		}
	})
	t.Run("v1beta1 object", func(t *testing.T) {
		r := ec2Req(admissionv1.Create, ec2NodeClassJSON("v1beta1", "old", ec2Spec(roleARN, "")), "")
		r.version = "v1beta1"
		expectDenied(t, f.review(t, EC2NodeClassPath, r), rules.RoleIsARN)
		r.object = ec2NodeClassJSON("v1beta1", "old", ec2Spec("KarpenterNodeRole-demo", ""))
		expectAllowed(t, f.review(t, EC2NodeClassPath, r))
	})
	t.Run("v1beta1 AdmissionReview", func(t *testing.T) {
		r := ec2Req(admissionv1.Create, bad, "")
		r.reviewVersion = "v1beta1"
		expectDenied(t, f.review(t, EC2NodeClassPath, r), rules.RoleIsARN)
	})
	t.Run("null spec", func(t *testing.T) {
		obj := ec2NodeClassJSON("v1", "x", "null")
		expectDenied(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, obj, "")), rules.RoleInstanceProfileExclusive)
	})
	t.Run("missing spec", func(t *testing.T) {
		obj := `{"apiVersion":"karpenter.k8s.aws/v1","kind":"EC2NodeClass","metadata":{"name":"x"}}`
		expectDenied(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, obj, "")), rules.RoleInstanceProfileExclusive)
	})
	t.Run("role of the wrong type", func(t *testing.T) {
		obj := ec2NodeClassJSON("v1", "x", `{"role":42}`)
		expectErrored(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, obj, "")), http.StatusBadRequest, "role")
	})
	t.Run("create without an object", func(t *testing.T) {
		expectErrored(t, f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, "", "")), http.StatusBadRequest, "no content")
	})
	t.Run("unknown version of the kind", func(t *testing.T) {
		r := ec2Req(admissionv1.Create, ec2NodeClassJSON("v9", "x", ec2Spec("KarpenterNodeRole-demo", "")), "")
		r.version = "v9"
		expectErrored(t, f.review(t, EC2NodeClassPath, r), http.StatusBadRequest, "v9")
	})
}

func TestAdmissionNodePool(t *testing.T) {
	f := newAdmissionFixture(t)
	v1Ref := func(name string) string {
		return fmt.Sprintf(`{"group":"karpenter.k8s.aws","kind":"EC2NodeClass","name":%q}`, name)
	}
	good := nodePoolJSON("v1", "default", v1Ref("default"))
	broken := nodePoolJSON("v1", "default", v1Ref("notrust"))

	t.Run("create with a good class", func(t *testing.T) {
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, good, "")))
	})
	t.Run("create with a broken class", func(t *testing.T) {
		lines := expectDenied(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, broken, "")), rules.NodeClassInvalid)
		if !strings.HasPrefix(lines[0], "spec.template.spec.nodeClassRef: [NodeClassInvalid] ") || !strings.Contains(lines[0], "[RoleTrustMissingEC2]") {
			t.Errorf("line %q", lines[0])
		}
	})
	t.Run("create with a missing class warns", func(t *testing.T) {
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, nodePoolJSON("v1", "gpu", v1Ref("gpu")), "")), rules.NodeClassNotFound)
	})
	t.Run("create with an unsupported kind warns", func(t *testing.T) {
		obj := nodePoolJSON("v1", "azure", `{"group":"karpenter.azure.com","kind":"AKSNodeClass","name":"default"}`)
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, obj, "")), rules.NodeClassRefUnsupported)
	})
	t.Run("v1beta1 nodeClassRef with apiVersion", func(t *testing.T) {
		r := nodePoolReq(admissionv1.Create, nodePoolJSON("v1beta1", "old", `{"apiVersion":"karpenter.k8s.aws/v1beta1","kind":"EC2NodeClass","name":"notrust"}`), "")
		r.version = "v1beta1"
		expectDenied(t, f.review(t, NodePoolPath, r), rules.NodeClassInvalid)
		r.object = nodePoolJSON("v1beta1", "old", `{"apiVersion":"karpenter.k8s.aws/v1beta1","kind":"EC2NodeClass","name":"default"}`)
		expectAllowed(t, f.review(t, NodePoolPath, r))
	})
	t.Run("update changing nodeClassRef is validated", func(t *testing.T) {
		expectDenied(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Update, broken, good)), rules.NodeClassInvalid)
	})
	t.Run("update leaving nodeClassRef alone is allowed even when its class is broken", func(t *testing.T) {
		newer := strings.Replace(broken, `"cpu":"1000"`, `"cpu":"2000"`, 1)
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Update, newer, broken)))
	})
	t.Run("update of a NodePool being deleted is allowed", func(t *testing.T) {
		deleting := strings.Replace(broken, `"name":"default"}`, `"name":"default","deletionTimestamp":"2025-06-01T12:00:00Z"}`, 1)
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Update, deleting, good)))
	})
	t.Run("delete is allowed", func(t *testing.T) {
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Delete, "", broken)))
	})
	t.Run("dry run answers like a real request", func(t *testing.T) {
		real := f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, broken, ""))
		dr := nodePoolReq(admissionv1.Create, broken, "")
		dr.dryRun = true
		dry := f.review(t, NodePoolPath, dr)
		if dry.Allowed != real.Allowed || fmt.Sprint(dry.Result) != fmt.Sprint(real.Result) {
			t.Errorf("dry run answered %v %+v, real %v %+v", dry.Allowed, dry.Result, real.Allowed, real.Result)
		}
	})
	t.Run("null spec", func(t *testing.T) {
		obj := `{"apiVersion":"karpenter.sh/v1","kind":"NodePool","metadata":{"name":"x"},"spec":null}`
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, obj, "")))
	})
	t.Run("missing spec", func(t *testing.T) {
		obj := `{"apiVersion":"karpenter.sh/v1","kind":"NodePool","metadata":{"name":"x"}}`
		expectAllowed(t, f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, obj, "")))
	})
}

func TestAdmissionEKSNodeClass(t *testing.T) {
	f := newAdmissionFixture(t)
	t.Run("create good", func(t *testing.T) {
		obj := eksNodeClassJSON("auto", `{"role":"EKSAutoNodeRole-demo","subnetSelectorTerms":[{"tags":{"karpenter.sh/discovery":"demo"}}]}`)
		expectAllowed(t, f.review(t, NodeClassPath, eksReq(admissionv1.Create, obj, "")))
	})
	t.Run("warning in response.warnings", func(t *testing.T) {
		obj := eksNodeClassJSON("auto", `{"instanceProfile":"AutoNodeProfile-demo"}`)
		resp := f.review(t, NodeClassPath, eksReq(admissionv1.Create, obj, ""))
		expectAllowed(t, resp, rules.InstanceProfileNamePrefix)
		if !strings.HasPrefix(resp.Warnings[0], "[InstanceProfileNamePrefix] spec.instanceProfile: ") {
			t.Errorf("warning %q", resp.Warnings[0])
		}
	})
	t.Run("create bad", func(t *testing.T) {
		obj := eksNodeClassJSON("auto", `{"role":"EKSAutoNodeRole-notrust"}`)
		expectDenied(t, f.review(t, NodeClassPath, eksReq(admissionv1.Create, obj, "")), rules.RoleTrustMissingEC2)
	})
	t.Run("update leaving spec alone", func(t *testing.T) {
		obj := eksNodeClassJSON("auto", `{"role":"EKSAutoNodeRole-notrust"}`)
		newer := strings.Replace(obj, `"name":"auto"`, `"name":"auto","labels":{"a":"b"}`, 1)
		expectAllowed(t, f.review(t, NodeClassPath, eksReq(admissionv1.Update, newer, obj)))
	})
	t.Run("update of an object being deleted", func(t *testing.T) {
		old := eksNodeClassJSON("auto", `{"role":"EKSAutoNodeRole-demo"}`)
		obj := strings.Replace(eksNodeClassJSON("auto", `{"role":"EKSAutoNodeRole-notrust"}`), `"name":"auto"`, `"name":"auto","deletionTimestamp":"2025-06-01T12:00:00Z"`, 1)
		expectAllowed(t, f.review(t, NodeClassPath, eksReq(admissionv1.Update, obj, old)))
	})
	t.Run("delete", func(t *testing.T) {
		obj := eksNodeClassJSON("auto", `{"role":"arn:aws:iam::111122223333:role/EKSAutoNodeRole-demo"}`)
		expectAllowed(t, f.review(t, NodeClassPath, eksReq(admissionv1.Delete, "", obj)))
	})
}

// TestAdmissionWrongKind sends every kind to every other kind's path: the
// answer is a 400 naming what the path validates, not a decoder error.
func TestAdmissionWrongKind(t *testing.T) {
	f := newAdmissionFixture(t)
	reqs := map[string]request{
		EC2NodeClassPath: ec2Req(admissionv1.Create, ec2NodeClassJSON("v1", "x", ec2Spec("KarpenterNodeRole-demo", "")), ""),
		NodePoolPath:     nodePoolReq(admissionv1.Create, nodePoolJSON("v1", "x", `{"group":"karpenter.k8s.aws","kind":"EC2NodeClass","name":"default"}`), ""),
		NodeClassPath:    eksReq(admissionv1.Create, eksNodeClassJSON("x", `{"role":"EKSAutoNodeRole-demo"}`), ""),
	}
	validates := map[string]string{EC2NodeClassPath: "EC2NodeClass.karpenter.k8s.aws", NodePoolPath: "NodePool.karpenter.sh", NodeClassPath: "NodeClass.eks.amazonaws.com"}
	for path := range reqs {
		for other, r := range reqs {
			if other == path {
				continue
			}
			t.Run(fmt.Sprintf("%s to %s", r.kind+"."+r.group, path), func(t *testing.T) {
				resp := f.review(t, path, r)
				expectErrored(t, resp, http.StatusBadRequest, "this webhook path validates "+validates[path])
				if !strings.Contains(resp.Result.Message, r.kind) || !strings.Contains(resp.Result.Message, "ValidatingWebhookConfiguration") {
					t.Errorf("message %q names neither the request's kind nor the fix", resp.Result.Message)
				}
			})
		}
	}
	t.Run("a kind of the right group", func(t *testing.T) {
		r := request{group: rules.KarpenterAWSGroup, version: "v1", kind: "EC2NodeClassList", op: admissionv1.Create, object: `{"apiVersion":"karpenter.k8s.aws/v1","kind":"EC2NodeClassList"}`}
		expectErrored(t, f.review(t, EC2NodeClassPath, r), http.StatusBadRequest, "this webhook path validates")
	})
}

// TestAdmissionBadRequests covers bodies that are not AdmissionReviews.
func TestAdmissionBadRequests(t *testing.T) {
	f := newAdmissionFixture(t)
	for _, path := range []string{EC2NodeClassPath, NodePoolPath, NodeClassPath} {
		t.Run(path+" malformed body", func(t *testing.T) {
			_, rr := f.post(t, path, "application/json", strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{`))
			expectErrored(t, rr.Response, http.StatusBadRequest, "")
		})
		t.Run(path+" not JSON", func(t *testing.T) {
			_, rr := f.post(t, path, "application/json", strings.NewReader("apiVersion: v1\n\tkind: x"))
			expectErrored(t, rr.Response, http.StatusBadRequest, "")
		})
		t.Run(path+" empty body", func(t *testing.T) {
			_, rr := f.post(t, path, "application/json", http.NoBody)
			expectErrored(t, rr.Response, http.StatusBadRequest, "request body is empty")
		})
		t.Run(path+" wrong content type", func(t *testing.T) {
			body := ec2Req(admissionv1.Create, ec2NodeClassJSON("v1", "x", ec2Spec(roleARN, "")), "").body()
			_, rr := f.post(t, path, "text/plain", bytes.NewReader(body))
			expectErrored(t, rr.Response, http.StatusBadRequest, "expected application/json")
		})
	}
	t.Run("body over 7 MiB", func(t *testing.T) {
		// A valid review whose object carries 7 MiB of padding.
		pad := strings.Repeat("x", 7<<20)
		obj := ec2NodeClassJSON("v1", "x", fmt.Sprintf(`{"role":"KarpenterNodeRole-demo","pad":%q}`, pad))
		body := ec2Req(admissionv1.Create, obj, "").body()
		_, rr := f.post(t, EC2NodeClassPath, "application/json", bytes.NewReader(body))
		expectErrored(t, rr.Response, http.StatusRequestEntityTooLarge, "too large")
	})
	t.Run("body just under 7 MiB is answered", func(t *testing.T) {
		obj := ec2NodeClassJSON("v1", "x", `{"role":"KarpenterNodeRole-demo","pad":"PAD"}`)
		body := ec2Req(admissionv1.Create, obj, "").body()
		body = bytes.Replace(body, []byte("PAD"), bytes.Repeat([]byte("x"), 7<<20-len(body)-16), 1)
		_, rr := f.post(t, EC2NodeClassPath, "application/json", bytes.NewReader(body))
		expectAllowed(t, rr.Response)
	})
	t.Run("unknown operation", func(t *testing.T) {
		r := ec2Req("PATCH", ec2NodeClassJSON("v1", "x", ec2Spec(roleARN, "")), "")
		expectErrored(t, f.review(t, EC2NodeClassPath, r), http.StatusBadRequest, "unknown operation")
	})
}

func counterValue(t *testing.T, m *Metrics, kind, verdict, code string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Verdicts.WithLabelValues(kind, verdict, code).Write(&out); err != nil {
		t.Fatalf("reading the counter: %v", err)
	}
	return out.GetCounter().GetValue()
}

// TestAdmissionVerdictMetric checks that every verdict is counted once per
// code, and that skipped admissions (unchanged updates, deletes) are not.
func TestAdmissionVerdictMetric(t *testing.T) {
	f := newAdmissionFixture(t)
	type label struct{ kind, verdict, code string }
	watch := []label{
		{rules.EC2NodeClassKind, "allowed", ""}, {rules.EC2NodeClassKind, "denied", "RoleIsARN"},
		{rules.EC2NodeClassKind, "denied", "PassRoleDenied"}, {rules.EC2NodeClassKind, "denied", "RoleHasPath"},
		{rules.NodePoolKind, "allowed", "NodeClassNotFound"}, {rules.NodeClassKind, "allowed", "InstanceProfileNamePrefix"},
	}
	before := map[label]float64{}
	for _, l := range watch {
		before[l] = counterValue(t, f.metrics, l.kind, l.verdict, l.code)
	}
	good := ec2NodeClassJSON("v1", "default", ec2Spec("KarpenterNodeRole-demo", ""))
	bad := ec2NodeClassJSON("v1", "bad", ec2Spec(roleARN, ""))
	pathed := ec2NodeClassJSON("v1", "pathed", ec2Spec("team/KarpenterNodeRole-team", ""))
	f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, good, ""))
	f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, bad, ""))
	f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, bad, ""))
	f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Create, pathed, ""))
	f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Update, bad, bad)) // skipped
	f.review(t, EC2NodeClassPath, ec2Req(admissionv1.Delete, "", bad))  // skipped
	f.review(t, NodePoolPath, nodePoolReq(admissionv1.Create, nodePoolJSON("v1", "gpu", `{"group":"karpenter.k8s.aws","kind":"EC2NodeClass","name":"gpu"}`), ""))
	f.review(t, NodeClassPath, eksReq(admissionv1.Create, eksNodeClassJSON("auto", `{"instanceProfile":"AutoNodeProfile-demo"}`), ""))
	want := map[label]float64{
		{rules.EC2NodeClassKind, "allowed", ""}: 1, {rules.EC2NodeClassKind, "denied", "RoleIsARN"}: 2,
		{rules.EC2NodeClassKind, "denied", "PassRoleDenied"}: 1, {rules.EC2NodeClassKind, "denied", "RoleHasPath"}: 1,
		{rules.NodePoolKind, "allowed", "NodeClassNotFound"}: 1, {rules.NodeClassKind, "allowed", "InstanceProfileNamePrefix"}: 1,
	}
	for _, l := range watch {
		if got := counterValue(t, f.metrics, l.kind, l.verdict, l.code) - before[l]; got != want[l] {
			t.Errorf("nodeclass_guard_verdicts_total%v grew by %v, want %v", l, got, want[l])
		}
	}
}

// TestAdmissionAsksTheClassUID: an admission (CREATE included) asks about
// the instance profile under the class's own metadata.uid, and the
// class's spec.tags go into the requests.
func TestAdmissionAsksTheClassUID(t *testing.T) {
	ctl, _ := authz.ParseRoleARN(ctlLimited)
	c := rules.NewChecker(rules.Config{IAM: loadSampleSnapshot(t), Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: rules.OnIAMErrorAllow})
	srv := httptest.NewServer(Handlers(c, NewMetrics())[EC2NodeClassPath])
	t.Cleanup(srv.Close)
	spec := strings.TrimSuffix(ec2Spec("KarpenterNodeRole-demo", ""), "}") + `,"tags":{"team":"payments"}}`
	f := &admissionFixture{url: srv.URL}
	resp := f.review(t, "", ec2Req(admissionv1.Create, ec2NodeClassJSON("v1", "uid-class", spec), ""))
	lines := expectDenied(t, resp, rules.InstanceProfileActionsDenied, rules.LaunchDenied)
	want := "instance-profile/karpenter/" + testRegion + "/" + testCluster + "/6f0c0d1e-0000-4000-8000-000000000001/" + testCluster + "_"
	if !strings.Contains(lines[0], want) || strings.Contains(lines[0], karpenter.PlaceholderUID) {
		t.Errorf("the profile's ARN is not the class's own:\n%s", lines[0])
	}
	for _, l := range lines {
		if !strings.Contains(l, "team=payments") {
			t.Errorf("spec.tags are not in the requests:\n%s", l)
		}
	}
}
