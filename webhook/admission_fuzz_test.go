package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
	"github.com/nodeclass-guard/nodeclass-guard/webhook"
)

// fuzzPaths are the webhook paths; the fuzzer picks one by index.
var fuzzPaths = []string{webhook.EC2NodeClassPath, webhook.NodePoolPath, webhook.NodeClassPath}

// fuzzPathFor returns the index of the path serving a kind, 0 when none.
func fuzzPathFor(kind string) uint8 {
	switch kind {
	case rules.NodePoolKind:
		return 1
	case rules.NodeClassKind:
		return 2
	}
	return 0
}

// denialLine is the contract's "<field>: [<Code>] <text>".
var denialLine = regexp.MustCompile(`^[^ ]+: \[[A-Za-z0-9]+\] .`)

// warningLine is the contract's "[<Code>] <field>: <text>".
var warningLine = regexp.MustCompile(`^\[[A-Za-z0-9]+\] [^ ]+: .`)

// FuzzAdmissionReview feeds arbitrary bytes to the webhook's handlers, as
// a client of the webhook port could send them. Whatever the bytes, the
// answer is an AdmissionReview over HTTP 200 that either allows, denies
// with the contract's 403 lines, or refuses the request with a 4xx; no
// panic, and warnings within the API server's limit.
//
// Seeds: every document of examples/ wrapped as the API server would send
// it (create, and update from an empty spec), plus testdata/fuzz.
func FuzzAdmissionReview(f *testing.F) {
	for _, doc := range fuzzExampleDocuments(f) {
		var head struct{ APIVersion, Kind string }
		if json.Unmarshal(doc, &head) != nil || head.Kind == "" {
			continue
		}
		group, version, _ := strings.Cut(head.APIVersion, "/")
		f.Add(fuzzPathFor(head.Kind), fuzzReview(group, version, head.Kind, "CREATE", doc, nil))
		f.Add(fuzzPathFor(head.Kind), fuzzReview(group, version, head.Kind, "UPDATE", doc, []byte(`{"apiVersion":"`+head.APIVersion+`","kind":"`+head.Kind+`","metadata":{"name":"old"},"spec":{}}`)))
	}

	snap, err := authz.LoadSnapshotFile(filepath.Join("..", "testdata", "iam", "sample-snapshot.json"))
	if err != nil {
		f.Fatal(err)
	}
	const ctl = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	controller, err := authz.ParseRoleARN(ctl)
	if err != nil {
		f.Fatal(err)
	}
	c := rules.NewChecker(rules.Config{IAM: snap, Controller: controller, ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny})
	handlers := webhook.Handlers(c, nil)

	f.Fuzz(func(t *testing.T, pathIndex uint8, body []byte) {
		path := fuzzPaths[int(pathIndex)%len(fuzzPaths)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		handlers[path].ServeHTTP(rec, req)

		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d: %.300q", rec.Code, rec.Body.Bytes())
		}
		if limit := 3*len(body) + 64<<10; rec.Body.Len() > limit {
			t.Fatalf("a %d-byte request got a %d-byte answer", len(body), rec.Body.Len())
		}
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil || ar.Response == nil {
			t.Fatalf("answer is not an AdmissionReview with a response (%v): %.300q", err, rec.Body.Bytes())
		}
		res := ar.Response
		code := int32(http.StatusOK)
		message := ""
		if res.Result != nil {
			code, message = res.Result.Code, res.Result.Message
		}
		switch {
		case res.Allowed:
			if code != http.StatusOK {
				t.Fatalf("allowed with code %d: %q", code, message)
			}
		case code == http.StatusForbidden:
			for _, line := range strings.Split(message, "\n") {
				if !denialLine.MatchString(line) || !utf8.ValidString(line) {
					t.Fatalf("denial line %q is not \"<field>: [<Code>] <text>\" in valid UTF-8", line)
				}
			}
		case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge:
			if message == "" {
				t.Fatalf("refused with code %d and no message", code)
			}
		default:
			t.Fatalf("not allowed, with code %d: %q", code, message)
		}
		for _, w := range res.Warnings {
			if len(w) >= 256 || !warningLine.MatchString(w) || !utf8.ValidString(w) {
				t.Fatalf("warning %q: want \"[<Code>] <field>: <text>\", valid UTF-8, under 256 bytes", w)
			}
		}
	})
}

// fuzzReview wraps object (and oldObject) in an AdmissionReview request.
func fuzzReview(group, version, kind, op string, object, oldObject []byte) []byte {
	req := map[string]any{
		"uid":       "6f0c0d1e-0000-4000-8000-00000000f022",
		"kind":      map[string]string{"group": group, "version": version, "kind": kind},
		"resource":  map[string]string{"group": group, "version": version, "resource": strings.ToLower(kind) + "s"},
		"operation": op,
		"userInfo":  map[string]any{"username": "fuzz"},
		"object":    json.RawMessage(object),
	}
	if oldObject != nil {
		req["oldObject"] = json.RawMessage(oldObject)
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzExampleDocuments returns every YAML document under examples/ as
// JSON, the seeds of the admission and format targets.
func fuzzExampleDocuments(f *testing.F) [][]byte {
	f.Helper()
	var docs [][]byte
	err := filepath.WalkDir(filepath.Join("..", "examples"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, part := range strings.Split(string(data), "\n---") {
			js, err := yaml.YAMLToJSON([]byte(part))
			if err != nil {
				return err
			}
			if len(js) > 0 && js[0] == '{' {
				docs = append(docs, js)
			}
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	if len(docs) == 0 {
		f.Fatal("no seed documents under ../examples")
	}
	return docs
}
