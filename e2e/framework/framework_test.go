package framework

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// TestLocalWebhookConfigRewritesOnlyClientConfig checks the rewrite on the
// configuration deploy/base really ships: every webhook points at the local
// URL with the path of its service and the CA bundle, and nothing else
// changes (rules, matchConditions, failurePolicy, timeouts...).
func TestLocalWebhookConfigRewritesOnlyClientConfig(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := deployManifests(root)
	if err != nil {
		t.Fatal(err)
	}
	shipped, _, err := webhookConfigFrom(docs)
	if err != nil {
		t.Fatal(err)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	local, err := LocalWebhookConfig(shipped, "127.0.0.1:9443", ca)
	if err != nil {
		t.Fatal(err)
	}
	if len(local.Webhooks) != len(shipped.Webhooks) {
		t.Fatalf("%d webhooks, shipped %d", len(local.Webhooks), len(shipped.Webhooks))
	}
	paths := map[string]bool{}
	for i, wh := range local.Webhooks {
		orig := shipped.Webhooks[i]
		if orig.ClientConfig.Service == nil || orig.ClientConfig.Service.Path == nil {
			t.Fatalf("shipped webhook %s has no service path", orig.Name)
		}
		want := "https://127.0.0.1:9443" + *orig.ClientConfig.Service.Path
		if wh.ClientConfig.URL == nil || *wh.ClientConfig.URL != want {
			t.Errorf("%s: url %v, want %s", wh.Name, wh.ClientConfig.URL, want)
		}
		if wh.ClientConfig.Service != nil {
			t.Errorf("%s: service left in place next to the url", wh.Name)
		}
		if string(wh.ClientConfig.CABundle) != string(ca) {
			t.Errorf("%s: caBundle not set", wh.Name)
		}
		paths[*orig.ClientConfig.Service.Path] = true
		a, b := wh.DeepCopy(), orig.DeepCopy()
		a.ClientConfig, b.ClientConfig = admissionregistrationv1.WebhookClientConfig{}, admissionregistrationv1.WebhookClientConfig{}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the rewrite changed more than clientConfig:\n got  %+v\n want %+v", wh.Name, a, b)
		}
	}
	for _, p := range []string{"/validate-karpenter-k8s-aws-ec2nodeclass", "/validate-karpenter-sh-nodepool", "/validate-eks-amazonaws-com-nodeclass"} {
		if !paths[p] {
			t.Errorf("deploy/base registers no webhook at the contract path %s", p)
		}
	}
	if _, ok := local.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Error("cert-manager's CA injection annotation kept")
	}
	if shipped.Annotations["cert-manager.io/inject-ca-from"] == "" {
		t.Log("note: deploy/base no longer asks cert-manager to inject the CA")
	}
}

func TestLocalWebhookConfigNeedsAPath(t *testing.T) {
	in := &admissionregistrationv1.ValidatingWebhookConfiguration{
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "x.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Name: "x", Namespace: "y"}},
		}},
	}
	if _, err := LocalWebhookConfig(in, "127.0.0.1:1", nil); err == nil || !strings.Contains(err.Error(), "x.example.com") {
		t.Fatalf("want an error naming the webhook, got %v", err)
	}
	url := "https://somewhere:8443/validate-x"
	in.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	out, err := LocalWebhookConfig(in, "127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := *out.Webhooks[0].ClientConfig.URL; got != "https://127.0.0.1:1/validate-x" {
		t.Errorf("url = %s", got)
	}
}

func TestWebhookConfigFromNeedsExactlyOne(t *testing.T) {
	dir := t.TempDir()
	vwc := "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: a\nwebhooks: []\n"
	write(t, filepath.Join(dir, "a.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
	docs, err := ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := webhookConfigFrom(docs); err == nil {
		t.Error("no configuration: want an error")
	}
	write(t, filepath.Join(dir, "b.yaml"), vwc+"---\n"+strings.Replace(vwc, "name: a", "name: b", 1))
	docs, err = ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := webhookConfigFrom(docs); err == nil || !strings.Contains(err.Error(), "b.yaml#2") {
		t.Errorf("two configurations: want an error naming both, got %v", err)
	}
}

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.yaml"), "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n")
	write(t, filepath.Join(dir, "a.yml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: first\n")
	write(t, filepath.Join(dir, "notes.txt"), "not a manifest")
	docs, err := ReadManifests(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, filepath.Base(d.Source)+" "+d.Object.GetName())
	}
	want := []string{"a.yml#1 first", "b.yaml#1 one", "b.yaml#2 two"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	write(t, filepath.Join(dir, "c.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\nmetadata: {name: nokind}\n")
	if _, err := ReadManifests(dir); err == nil || !strings.Contains(err.Error(), "c.yaml#2") {
		t.Errorf("document without kind: want an error naming c.yaml#2, got %v", err)
	}
	write(t, filepath.Join(dir, "c.yaml"), "apiVersion: v1\nkind: [unclosed\n")
	if _, err := ReadManifests(dir); err == nil || !strings.Contains(err.Error(), "c.yaml#1") {
		t.Errorf("invalid YAML: want an error naming c.yaml#1, got %v", err)
	}
}

func TestVersions(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v, err := Versions(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"KUBERNETES_VERSION", "KARPENTER_AWS_VERSION", "KARPENTER_V1BETA1_AWS_VERSION"} {
		if v[k] == "" {
			t.Errorf("hack/versions.env has no %s", k)
		}
	}
}

func TestMissingAssets(t *testing.T) {
	t.Setenv(EnvAssets, t.TempDir())
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	_, err = assetsDir(root)
	missing, ok := err.(*MissingAssetsError)
	if !ok {
		t.Fatalf("want *MissingAssetsError, got %T %v", err, err)
	}
	if !strings.Contains(missing.Error(), "make envtest-assets crds") {
		t.Errorf("the error should say how to get the assets: %v", missing)
	}
	t.Setenv(EnvCRDDir, t.TempDir())
	if _, err := crdFiles(root, CRDsV1); err == nil {
		t.Error("empty CRD folder: want an error")
	} else if _, ok := err.(*MissingAssetsError); !ok {
		t.Errorf("want *MissingAssetsError, got %T %v", err, err)
	}
}

func TestRequired(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true} {
		t.Setenv(EnvRequire, v)
		if got := Required(); got != want {
			t.Errorf("%s=%q: Required() = %v, want %v", EnvRequire, v, got, want)
		}
	}
}

func TestTailCollapsesRepeats(t *testing.T) {
	var b syncBuffer
	b.Write([]byte(`{"ts":"1","msg":"starting"}` + "\n"))
	for i := 0; i < 50; i++ {
		b.Write([]byte(`{"level":"info","ts":"2026-01-01T00:00:0` + string(rune('0'+i%10)) + `Z","msg":"healthz check failed"}` + "\n"))
	}
	got := b.tail(5)
	if !strings.Contains(got, "starting") || !strings.Contains(got, "(and 49 more like it)") {
		t.Errorf("tail:\n%s", got)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
