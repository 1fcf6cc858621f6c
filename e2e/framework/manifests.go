package framework

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/deploy/render"
)

// Document is one YAML document of a manifest file.
type Document struct {
	Source string // "path#N", N counting from 1
	Object *unstructured.Unstructured
}

// ReadManifests reads every YAML document of the given files or folders
// (folders: their *.yaml, *.yml and *.json files, sorted, not recursive),
// skipping empty documents. Errors name the file and document.
func ReadManifests(paths ...string) ([]Document, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			switch filepath.Ext(e.Name()) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					names = append(names, filepath.Join(p, e.Name()))
				}
			}
		}
		sort.Strings(names)
		files = append(files, names...)
	}
	var docs []Document
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		split, err := render.SplitObjects(b)
		var de *render.DocumentError
		if errors.As(err, &de) {
			return nil, fmt.Errorf("%s#%d: %w", f, de.N, de.Err)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, d := range split {
			if d.Object.GetKind() == "" || d.Object.GetAPIVersion() == "" {
				return nil, fmt.Errorf("%s#%d: a document without apiVersion or kind", f, d.N)
			}
			docs = append(docs, Document{Source: fmt.Sprintf("%s#%d", f, d.N), Object: d.Object})
		}
	}
	return docs, nil
}

// deployManifests returns the documents of deploy/base (the manifests the
// deploy/ kustomize base ships), the source of the webhook configuration and
// RBAC the harness installs.
func deployManifests(root string) ([]Document, error) {
	return ReadManifests(filepath.Join(root, "deploy", "base"))
}

// webhookConfigFrom finds the one ValidatingWebhookConfiguration among docs.
func webhookConfigFrom(docs []Document) (*admissionregistrationv1.ValidatingWebhookConfiguration, string, error) {
	var found []Document
	for _, d := range docs {
		if d.Object.GetKind() == "ValidatingWebhookConfiguration" {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, "", errors.New("no ValidatingWebhookConfiguration in deploy/base")
	case 1:
	default:
		var srcs []string
		for _, d := range found {
			srcs = append(srcs, d.Source)
		}
		return nil, "", fmt.Errorf("more than one ValidatingWebhookConfiguration in deploy/base: %s", strings.Join(srcs, ", "))
	}
	b, err := found[0].Object.MarshalJSON()
	if err != nil {
		return nil, "", err
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(b, vwc); err != nil {
		return nil, "", fmt.Errorf("%s: %w", found[0].Source, err)
	}
	return vwc, found[0].Source, nil
}

// LocalWebhookConfig rewrites a ValidatingWebhookConfiguration shipped for
// a cluster so that it points at a webhook on this machine: each webhook's
// clientConfig becomes url https://<hostPort><path> with caBundle, the path
// taken from its service (or url). Everything else (rules,
// matchConditions, failurePolicy, timeoutSeconds, sideEffects, matchPolicy,
// admissionReviewVersions, selectors) is kept exactly. The cert-manager
// CA-injection annotation is dropped: there is no cert-manager here.
func LocalWebhookConfig(in *admissionregistrationv1.ValidatingWebhookConfiguration, hostPort string, caBundle []byte) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	out := in.DeepCopy()
	out.ResourceVersion, out.UID = "", ""
	delete(out.Annotations, "cert-manager.io/inject-ca-from")
	delete(out.Annotations, "cert-manager.io/inject-ca-from-secret")
	if len(out.Webhooks) == 0 {
		return nil, fmt.Errorf("ValidatingWebhookConfiguration %s has no webhooks", in.Name)
	}
	for i := range out.Webhooks {
		wh := &out.Webhooks[i]
		path := ""
		switch {
		case wh.ClientConfig.Service != nil && wh.ClientConfig.Service.Path != nil:
			path = *wh.ClientConfig.Service.Path
		case wh.ClientConfig.URL != nil:
			u := *wh.ClientConfig.URL
			if i := strings.Index(u, "://"); i >= 0 {
				u = u[i+3:]
			}
			if j := strings.Index(u, "/"); j >= 0 {
				path = u[j:]
			}
		}
		if path == "" || path == "/" {
			return nil, fmt.Errorf("webhook %q has no path in its clientConfig", wh.Name)
		}
		url := "https://" + hostPort + path
		wh.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: append([]byte(nil), caBundle...)}
	}
	return out, nil
}
