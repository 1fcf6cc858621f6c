package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RegisterWebhook creates (or replaces) the ValidatingWebhookConfiguration
// and returns once the API server consults the webhook for all three kinds.
// edits change the registered copy (for example, dropping matchConditions
// to see what the binary answers on its own); the next call without edits
// restores the shipped configuration.
func (e *Env) RegisterWebhook(ctx context.Context, edits ...func(*admissionregistrationv1.ValidatingWebhookConfiguration)) error {
	want := e.webhookConfig.DeepCopy()
	for _, edit := range edits {
		edit(want)
	}
	cur := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	err := e.Client.Get(ctx, client.ObjectKeyFromObject(want), cur)
	switch {
	case apierrors.IsNotFound(err):
		err = e.Client.Create(ctx, want)
	case err == nil:
		want.ResourceVersion = cur.ResourceVersion
		err = e.Client.Update(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("registering ValidatingWebhookConfiguration %s: %w", want.Name, err)
	}
	e.Options.Logf("registered ValidatingWebhookConfiguration %s", want.Name)
	return e.waitWebhook(ctx, true)
}

// UnregisterWebhook deletes the ValidatingWebhookConfiguration and returns
// once the API server no longer consults the webhook.
func (e *Env) UnregisterWebhook(ctx context.Context) error {
	err := e.Client.Delete(ctx, e.webhookConfig.DeepCopy())
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ValidatingWebhookConfiguration %s: %w", e.webhookConfig.Name, err)
	}
	return e.waitWebhook(ctx, false)
}

// waitWebhook sends server-side dry-run probes until every kind answers as
// the webhook would (effective) or as if it were absent (!effective): an
// EC2NodeClass and an EKS NodeClass whose role is an ARN (denied,
// RoleIsARN: a format check that needs no IAM), and a NodePool naming a
// missing class (admitted with a NodeClassNotFound warning). With
// failurePolicy Ignore, a registered but unreachable webhook admits
// everything, so only an answer proves the registration works.
func (e *Env) waitWebhook(ctx context.Context, effective bool) error {
	ctx, cancel := context.WithTimeout(ctx, e.Options.Timeout)
	defer cancel()
	probes := e.probes()
	var last []string
	for {
		last = last[:0]
		done := true
		for _, p := range probes {
			got := e.runProbe(ctx, p)
			if got.effective != effective {
				done = false
				last = append(last, fmt.Sprintf("%s: %s", p.name, got.detail))
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("waiting for the webhook registration: %w", ctx.Err())
			}
			state := "answering"
			if !effective {
				state = "gone"
			}
			return fmt.Errorf("webhook not %s after %s:\n  %s\nserve's output:\n%s",
				state, e.Options.Timeout, strings.Join(last, "\n  "), e.serve.log.tail(30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type probe struct {
	name string
	obj  func() *unstructured.Unstructured
	// answered tells, from the dry-run's error and warnings, whether the
	// webhook answered.
	answered func(err error, warnings []string) bool
}

type probeResult struct {
	effective bool
	detail    string
}

func (e *Env) runProbe(ctx context.Context, p probe) probeResult {
	obj := p.obj()
	e.probe.TakeWarnings()
	err := e.probe.Create(ctx, obj, client.DryRunAll)
	warnings := e.probe.TakeWarnings()
	detail := "admitted"
	if err != nil {
		detail = err.Error()
	}
	if len(warnings) > 0 {
		detail += " (warnings: " + strings.Join(warnings, "; ") + ")"
	}
	return probeResult{effective: p.answered(err, warnings), detail: detail}
}

func (e *Env) probes() []probe {
	account := "111122223333"
	if parts := strings.Split(e.Options.ControllerRole, ":"); len(parts) > 4 && parts[4] != "" {
		account = parts[4]
	}
	roleARN := "arn:aws:iam::" + account + ":role/nodeclass-guard-probe"
	deniedRoleIsARN := func(err error, _ []string) bool {
		var st apierrors.APIStatus
		return err != nil && errors.As(err, &st) && apierrors.IsForbidden(err) && HasCode(err.Error(), "RoleIsARN")
	}
	return []probe{
		{
			name: "EC2NodeClass probe",
			obj: func() *unstructured.Unstructured {
				return object("karpenter.k8s.aws/v1", "EC2NodeClass", "nodeclass-guard-probe", map[string]any{
					"role":                       roleARN,
					"amiSelectorTerms":           []any{map[string]any{"alias": "al2023@latest"}},
					"subnetSelectorTerms":        []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "probe"}}},
					"securityGroupSelectorTerms": []any{map[string]any{"tags": map[string]any{"karpenter.sh/discovery": "probe"}}},
				})
			},
			answered: deniedRoleIsARN,
		},
		{
			name: "EKS NodeClass probe",
			obj: func() *unstructured.Unstructured {
				return object("eks.amazonaws.com/v1", "NodeClass", "nodeclass-guard-probe", map[string]any{"role": roleARN})
			},
			answered: deniedRoleIsARN,
		},
		{
			name: "NodePool probe",
			obj: func() *unstructured.Unstructured {
				return object("karpenter.sh/v1", "NodePool", "nodeclass-guard-probe", map[string]any{
					"template": map[string]any{"spec": map[string]any{
						"nodeClassRef": map[string]any{"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "nodeclass-guard-probe-missing"},
						"requirements": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}},
					}},
				})
			},
			answered: func(err error, warnings []string) bool {
				if err != nil {
					return false
				}
				for _, w := range warnings {
					if HasCode(w, "NodeClassNotFound") {
						return true
					}
				}
				return false
			},
		},
	}
}

// object builds an unstructured cluster-scoped object.
func object(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
}
