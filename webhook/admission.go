package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// Webhook paths of the contract, one per kind.
const (
	EC2NodeClassPath = "/validate-karpenter-k8s-aws-ec2nodeclass"
	NodePoolPath     = "/validate-karpenter-sh-nodepool"
	NodeClassPath    = "/validate-eks-amazonaws-com-nodeclass"
)

// Metrics counts admission verdicts by kind and code, and what the
// webhook server refused before any rule ran.
type Metrics struct {
	Verdicts *prometheus.CounterVec
	// Refused counts requests and connections the server refused, by
	// reason: connections, source_connections (one client address's
	// share), in_flight, source_in_flight, body_bytes_in_flight,
	// too_large, read, method, content_type, version.
	Refused *prometheus.CounterVec
}

// NewMetrics creates the counters.
func NewMetrics() *Metrics {
	return &Metrics{
		Verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_verdicts_total",
			Help: "Admission verdicts by kind, verdict (allowed, denied) and reason code (\"\" for a clean allow).",
		}, []string{"kind", "verdict", "code"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeclass_guard_webhook_refused_total",
			Help: "Connections and requests the webhook server refused before any rule ran, by reason (connections, source_connections, in_flight, source_in_flight, body_bytes_in_flight, too_large, read, method, content_type, version).",
		}, []string{"reason"}),
	}
}

// MustRegister registers the metrics with reg.
func (m *Metrics) MustRegister(reg prometheus.Registerer) { reg.MustRegister(m.Verdicts, m.Refused) }

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.Refused.WithLabelValues(reason).Inc()
	}
}

// refuser returns a func counting one refusal for reason.
func (m *Metrics) refuser(reason string) func() {
	return func() { m.refused(reason) }
}

func (m *Metrics) observe(kind string, v rules.Verdict) {
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
func Handlers(c *rules.Checker, m *Metrics) map[string]*admission.Webhook {
	scheme := rules.AdmissionScheme()
	a := &adapter{checker: c, metrics: m}
	hooks := map[string]*admission.Webhook{
		EC2NodeClassPath: guardKind(rules.EC2NodeClassGK, admission.WithValidator[*rules.EC2NodeClass](scheme, &validator[*rules.EC2NodeClass]{
			adapter: a, kind: rules.EC2NodeClassKind, check: c.CheckEC2NodeClass,
			checkUpdate: c.CheckEC2NodeClassUpdate,
		})),
		NodePoolPath: guardKind(rules.NodePoolGK, admission.WithValidator[*rules.NodePool](scheme, &validator[*rules.NodePool]{
			adapter: a, kind: rules.NodePoolKind, check: c.CheckNodePool,
			checkUpdate: c.CheckNodePoolUpdate,
		})),
		NodeClassPath: guardKind(rules.EKSNodeClassGK, admission.WithValidator[*rules.NodeClass](scheme, &validator[*rules.NodeClass]{
			adapter: a, kind: rules.NodeClassKind, check: c.CheckNodeClass,
			checkUpdate: c.CheckNodeClassUpdate,
		})),
	}
	for _, wh := range hooks {
		wh.LogConstructor = requestLogger
	}
	return hooks
}

// requestLogger is the admissions' logger: the base logger as it is.
// controller-runtime's default gives every request a child logger with
// eight fields (about 30 allocations and their encoding, a sixth of an
// admission), which controller-runtime itself logs with only at debug
// levels; the one admission line (adapter.admit) writes the request's
// fields itself.
func requestLogger(base logr.Logger, _ *admission.Request) logr.Logger { return base }

// guardKind answers 400 with a clear message when a request for another
// kind reaches this path (a misconfigured ValidatingWebhookConfiguration),
// instead of a decoder error, and when the operation is not one the
// registration sends (CONNECT, or none at all), instead of judging it as a
// CREATE.
func guardKind(gk schema.GroupKind, wh *admission.Webhook) *admission.Webhook {
	inner := wh.Handler
	wh.Handler = admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		switch req.Operation {
		case admissionv1.Create, admissionv1.Update, admissionv1.Delete:
		default:
			return admission.Errored(http.StatusBadRequest, fmt.Errorf(
				"unknown operation %s (uid %s): this webhook validates CREATE and UPDATE: check the ValidatingWebhookConfiguration's rules",
				quote(string(req.Operation)), req.UID))
		}
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
	checker *rules.Checker
	metrics *Metrics
}

// KnownObjects says whether the cluster has an object, by its name and
// UID: the name in a request is no proof, anyone reaching the port can
// send one.
type KnownObjects interface {
	Has(ctx context.Context, obj client.Object) bool
}

// priority marks ctx for the IAM call budget's priority lane when the
// object admitted is one the cluster has (an update of it), found by name
// and UID in the manager's cache (Config.Classes, when it is a
// KnownObjects): its questions then come before new objects'. Any other
// admission, a create or a forged name, takes the lane of new questions.
func (a *adapter) priority(ctx context.Context, obj client.Object) context.Context {
	if k, ok := a.checker.Config().Classes.(KnownObjects); ok && k.Has(ctx, obj) {
		return authz.WithPriority(ctx)
	}
	return ctx
}

// admit turns a verdict into the validator's answer and records it.
func (a *adapter) admit(ctx context.Context, kind, name string, start time.Time, v rules.Verdict) (admission.Warnings, error) {
	// Whoever reaches the port may ask; the details wait for a real role.
	withholdForUnknownIdentity(&v)
	a.metrics.observe(kind, v)
	verdict := "allowed"
	if !v.Allowed() {
		verdict = "denied"
	}
	// One Info call with every field: WithValues would encode a child
	// logger's fields on every admission before the line is written.
	kv := []any{"kind", kind, "name", name, "verdict", verdict, "codes", v.Codes(), "iamTime", v.IAMTime.String(), "duration", time.Since(start).String()}
	if req, err := admission.RequestFromContext(ctx); err == nil {
		kv = append(kv, "uid", req.UID, "operation", req.Operation, "dryRun", req.DryRun != nil && *req.DryRun, "user", req.UserInfo.Username)
	}
	logf.FromContext(ctx).Info("admission", kv...)
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

// validator is the admission.Validator of one kind: creates are checked,
// updates only when they change what the rules read (rules.Reads), deletes
// never.
type validator[T client.Object] struct {
	*adapter
	kind  string
	check func(context.Context, T) rules.Verdict
	// checkUpdate, when set, checks an update with the old object too.
	checkUpdate func(ctx context.Context, old, obj T) rules.Verdict
}

func (v *validator[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	start := time.Now()
	verdict := v.check(v.priority(ctx, obj), obj)
	withholdUnnamedIDs(&verdict, obj)
	return v.admit(ctx, v.kind, obj.GetName(), start, verdict)
}

// ValidateUpdate never blocks an object being deleted (a finalizer
// removal) nor an update that leaves the checked fields alone (status,
// metadata, other spec fields).
func (v *validator[T]) ValidateUpdate(ctx context.Context, oldObj, obj T) (admission.Warnings, error) {
	if obj.GetDeletionTimestamp() != nil {
		return v.skip(ctx, v.kind, obj.GetName(), "being deleted")
	}
	if rules.Unchanged(v.kind, oldObj, obj) {
		return v.skip(ctx, v.kind, obj.GetName(), strings.Join(rules.Reads[v.kind], ", ")+" unchanged")
	}
	if v.checkUpdate != nil {
		start := time.Now()
		verdict := v.checkUpdate(v.priority(ctx, obj), oldObj, obj)
		withholdUnnamedIDs(&verdict, oldObj, obj)
		return v.admit(ctx, v.kind, obj.GetName(), start, verdict)
	}
	return v.ValidateCreate(ctx, obj)
}

// ValidateDelete always allows.
func (v *validator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

var (
	_ admission.Validator[*rules.EC2NodeClass] = (*validator[*rules.EC2NodeClass])(nil)
	_ admission.Validator[*rules.NodePool]     = (*validator[*rules.NodePool])(nil)
	_ admission.Validator[*rules.NodeClass]    = (*validator[*rules.NodeClass])(nil)
)

// quote and shown render a user-supplied value in the transport's own
// messages, as the rules do in theirs.
func quote(s string) string { return rules.Quote(s) }
func shown(s string) string { return rules.Shown(s) }
