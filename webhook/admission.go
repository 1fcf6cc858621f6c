package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Webhook paths of the contract, one per kind.
const (
	EC2NodeClassPath = "/validate-karpenter-k8s-aws-ec2nodeclass"
	NodePoolPath     = "/validate-karpenter-sh-nodepool"
	NodeClassPath    = "/validate-eks-amazonaws-com-nodeclass"
)

// Metrics counts admission verdicts by kind and code.
type Metrics struct {
	Verdicts *prometheus.CounterVec
}

// NewMetrics creates the verdict counter.
func NewMetrics() *Metrics {
	return &Metrics{Verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nodeclass_guard_verdicts_total",
		Help: "Admission verdicts by kind, verdict (allowed, denied) and reason code (\"\" for a clean allow).",
	}, []string{"kind", "verdict", "code"})}
}

// MustRegister registers the metrics with reg.
func (m *Metrics) MustRegister(reg prometheus.Registerer) { reg.MustRegister(m.Verdicts) }

func (m *Metrics) observe(kind string, v Verdict) {
	if m == nil {
		return
	}
	verdict := "allowed"
	if !v.Allowed() {
		verdict = "denied"
	}
	codes := v.Codes()
	if len(codes) == 0 {
		m.Verdicts.WithLabelValues(kind, verdict, "").Inc()
	}
	for _, c := range codes {
		m.Verdicts.WithLabelValues(kind, verdict, c).Inc()
	}
}

// Handlers builds the three admission webhooks, keyed by path. They share
// one Checker; the typed plumbing (decoding, responses) is controller-runtime's.
func Handlers(c *Checker, m *Metrics) map[string]*admission.Webhook {
	scheme := AdmissionScheme()
	a := &adapter{checker: c, metrics: m}
	return map[string]*admission.Webhook{
		EC2NodeClassPath: guardKind(EC2NodeClassGK, admission.WithValidator[*EC2NodeClass](scheme, ec2NodeClassValidator{a})),
		NodePoolPath:     guardKind(NodePoolGK, admission.WithValidator[*NodePool](scheme, nodePoolValidator{a})),
		NodeClassPath:    guardKind(EKSNodeClassGK, admission.WithValidator[*NodeClass](scheme, nodeClassValidator{a})),
	}
}

// guardKind answers 400 with a clear message when a request for another
// kind reaches this path (a misconfigured ValidatingWebhookConfiguration),
// instead of a decoder error.
func guardKind(gk schema.GroupKind, wh *admission.Webhook) *admission.Webhook {
	inner := wh.Handler
	wh.Handler = admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		if got := (schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}); got != gk {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf(
				"this webhook path validates %s, but the request (uid %s) is for %s: check the ValidatingWebhookConfiguration's rules",
				gk, req.UID, quote(got.String())))
		}
		return inner.Handle(ctx, req)
	})
	return wh
}

type adapter struct {
	checker *Checker
	metrics *Metrics
}

// admit turns a verdict into the validator's answer and records it.
func (a *adapter) admit(ctx context.Context, kind, name string, start time.Time, v Verdict) (admission.Warnings, error) {
	a.metrics.observe(kind, v)
	log := logf.FromContext(ctx)
	if req, err := admission.RequestFromContext(ctx); err == nil {
		log = log.WithValues("uid", req.UID, "operation", req.Operation, "dryRun", req.DryRun != nil && *req.DryRun)
	}
	verdict := "allowed"
	if !v.Allowed() {
		verdict = "denied"
	}
	log.Info("admission", "kind", kind, "name", name, "verdict", verdict, "codes", v.Codes(), "checkDuration", time.Since(start).String())
	if v.Allowed() {
		return v.WarningLines(), nil
	}
	return v.WarningLines(), errors.New(v.DenialMessage())
}

// skip answers an admission the webhook never blocks, and logs it.
func (a *adapter) skip(ctx context.Context, kind, name, why string) (admission.Warnings, error) {
	logf.FromContext(ctx).V(1).Info("admission skipped", "kind", kind, "name", name, "reason", why)
	return nil, nil
}

type ec2NodeClassValidator struct{ *adapter }

var _ admission.Validator[*EC2NodeClass] = ec2NodeClassValidator{}

func (e ec2NodeClassValidator) ValidateCreate(ctx context.Context, obj *EC2NodeClass) (admission.Warnings, error) {
	start := time.Now()
	return e.admit(ctx, EC2NodeClassKind, obj.Name, start, e.checker.CheckEC2NodeClass(ctx, obj))
}

func (e ec2NodeClassValidator) ValidateUpdate(ctx context.Context, oldObj, obj *EC2NodeClass) (admission.Warnings, error) {
	if obj.DeletionTimestamp != nil {
		return e.skip(ctx, EC2NodeClassKind, obj.Name, "being deleted")
	}
	if oldObj.Spec == obj.Spec {
		return e.skip(ctx, EC2NodeClassKind, obj.Name, "spec.role and spec.instanceProfile unchanged")
	}
	return e.ValidateCreate(ctx, obj)
}

func (e ec2NodeClassValidator) ValidateDelete(context.Context, *EC2NodeClass) (admission.Warnings, error) {
	return nil, nil
}

type nodeClassValidator struct{ *adapter }

var _ admission.Validator[*NodeClass] = nodeClassValidator{}

func (e nodeClassValidator) ValidateCreate(ctx context.Context, obj *NodeClass) (admission.Warnings, error) {
	start := time.Now()
	return e.admit(ctx, NodeClassKind, obj.Name, start, e.checker.CheckNodeClass(ctx, obj))
}

func (e nodeClassValidator) ValidateUpdate(ctx context.Context, oldObj, obj *NodeClass) (admission.Warnings, error) {
	if obj.DeletionTimestamp != nil {
		return e.skip(ctx, NodeClassKind, obj.Name, "being deleted")
	}
	if oldObj.Spec == obj.Spec {
		return e.skip(ctx, NodeClassKind, obj.Name, "spec.role and spec.instanceProfile unchanged")
	}
	return e.ValidateCreate(ctx, obj)
}

func (e nodeClassValidator) ValidateDelete(context.Context, *NodeClass) (admission.Warnings, error) {
	return nil, nil
}

type nodePoolValidator struct{ *adapter }

var _ admission.Validator[*NodePool] = nodePoolValidator{}

func (e nodePoolValidator) ValidateCreate(ctx context.Context, obj *NodePool) (admission.Warnings, error) {
	start := time.Now()
	return e.admit(ctx, NodePoolKind, obj.Name, start, e.checker.CheckNodePool(ctx, obj))
}

func (e nodePoolValidator) ValidateUpdate(ctx context.Context, oldObj, obj *NodePool) (admission.Warnings, error) {
	if obj.DeletionTimestamp != nil {
		return e.skip(ctx, NodePoolKind, obj.Name, "being deleted")
	}
	if sameRef(oldObj.Spec.Template.Spec.NodeClassRef, obj.Spec.Template.Spec.NodeClassRef) {
		return e.skip(ctx, NodePoolKind, obj.Name, "spec.template.spec.nodeClassRef unchanged")
	}
	return e.ValidateCreate(ctx, obj)
}

func (e nodePoolValidator) ValidateDelete(context.Context, *NodePool) (admission.Warnings, error) {
	return nil, nil
}

func sameRef(a, b *NodeClassReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
