// Package audit re-checks the node classes and NodePools that already exist
// in the cluster, with the same Checker (and so the same rules, cached IAM
// answers and coalesced calls) as admission. An admission webhook sees only
// what is applied; IAM, EKS and the cluster change under objects nobody
// touches, and the audit is what notices.
//
// What users see: a Warning Event per finding on the object (reason = the
// code, note = the admission's one-line text and fix), emitted when a
// finding appears or changes, not on every pass; a Normal Event when the
// object passes again; gauges of current violations and of the last
// complete pass; one log line per change. The audit never writes an
// object's spec or status.
package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// Event reasons of the audit besides the finding codes.
const (
	// ReasonPassed is the Normal Event's reason when an object that had
	// findings passes every check again.
	ReasonPassed = "NodeClassGuardPassed"
	// eventAction is the events.k8s.io action of every audit Event.
	eventAction = "Audit"
	// maxNote is the API server's limit on an Event's note.
	maxNote = 1024
)

// Recorder is what the audit needs of an events.k8s.io recorder
// (controller-runtime's manager.GetEventRecorder).
type Recorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Checker is what the audit needs of the rules: rules.Checker.
type Checker interface {
	CheckEC2NodeClass(ctx context.Context, nc *rules.EC2NodeClass) rules.Verdict
	CheckNodePool(ctx context.Context, np *rules.NodePool) rules.Verdict
	CheckNodeClass(ctx context.Context, nc *rules.NodeClass) rules.Verdict
}

var _ Checker = (*rules.Checker)(nil)

// Options configure an Auditor; New takes them whole.
type Options struct {
	Checker Checker
	// Cache is the manager's cache: objects are listed from it and its
	// informers report changes, so the audit costs the API server nothing
	// beyond the watches admission already holds.
	Cache cache.Cache
	// Recorder emits the Events; nil emits none (the offline command).
	Recorder Recorder
	// Interval is the time between the end of one pass and the start of
	// the next; 0 means no periodic pass (changes are still re-checked).
	Interval time.Duration
	// QPS bounds how many objects are re-checked per second, passes and
	// changes together. A cold class asks IAM at most a handful of batched
	// calls, so this bounds the audit's IAM rate.
	QPS float64
	// Busy reports whether admissions are in flight; nil means never.
	// Before each object the audit waits for a moment without one, for at
	// most MaxYield, so that on a busy replica its CPU and IAM calls fall
	// between admissions rather than beside them.
	Busy func() bool
	// MaxYield bounds that wait per object (default DefaultMaxYield): a
	// replica under sustained admission load still audits, at most
	// 1/MaxYield objects per second.
	MaxYield time.Duration
	// Metrics receives the gauges; nil records none.
	Metrics *Metrics
	Log     logr.Logger
}

// Auditor is a manager.Runnable that needs leader election: one replica
// audits, every replica admits.
type Auditor struct {
	opts    Options
	limiter flowcontrol.RateLimiter

	// checking serialises checks: the pass and the re-checks of changed
	// objects take turns, one object at a time.
	checking sync.Mutex

	mu    sync.Mutex
	state map[Key]objectState
}

var (
	_ manager.Runnable               = (*Auditor)(nil)
	_ manager.LeaderElectionRunnable = (*Auditor)(nil)
)

// Key names one audited object.
type Key struct {
	Kind string
	Name string
}

func (k Key) String() string { return k.Kind + "/" + k.Name }

// objectState is what the last conclusive check of an object found: its
// denials, keyed by code and field, valued by their one-line text.
type objectState struct {
	findings map[string]finding
}

type finding struct {
	code rules.Code
	line string
}

// New returns an Auditor configured by opts.
func New(opts Options) *Auditor {
	if opts.QPS <= 0 {
		opts.QPS = DefaultQPS
	}
	if opts.MaxYield <= 0 {
		opts.MaxYield = DefaultMaxYield
	}
	return &Auditor{
		opts:    opts,
		limiter: flowcontrol.NewTokenBucketRateLimiter(float32(opts.QPS), 1),
		state:   map[Key]objectState{},
	}
}

// Defaults of serve's --audit-interval and --audit-qps (README: "Audit").
const (
	DefaultInterval = 5 * time.Minute
	DefaultQPS      = 2
	// DefaultMaxYield is how long the audit waits, per object, for a
	// moment without admissions.
	DefaultMaxYield = 250 * time.Millisecond
)

// yieldStep is how often the audit looks whether admissions are done.
const yieldStep = 5 * time.Millisecond

// NeedLeaderElection implements manager.LeaderElectionRunnable: one
// replica audits, so that every finding is one Event and one IAM question.
func (a *Auditor) NeedLeaderElection() bool { return true }

// kinds are the audited kinds, each with its list type and a fresh object.
var kinds = []struct {
	kind string
	obj  func() client.Object
	list func() client.ObjectList
}{
	{rules.EC2NodeClassKind, func() client.Object { return &rules.EC2NodeClass{} }, func() client.ObjectList { return &rules.EC2NodeClassList{} }},
	{rules.NodeClassKind, func() client.Object { return &rules.NodeClass{} }, func() client.ObjectList { return &rules.NodeClassList{} }},
	{rules.NodePoolKind, func() client.Object { return &rules.NodePool{} }, func() client.ObjectList { return &rules.NodePoolList{} }},
}

// Start runs the audit until ctx ends: a pass over every object at once and
// every Interval, and a re-check of each object whose checked fields
// change. Both run one object at a time under one rate limit, so that the
// audit never takes more than a sliver of IAM's quota or of the CPU that
// admissions need.
func (a *Auditor) Start(ctx context.Context) error {
	log := a.opts.Log
	served := map[string]bool{}
	queue := workqueue.NewTyped[Key]()
	defer queue.ShutDown()
	for _, k := range kinds {
		inf, err := a.opts.Cache.GetInformer(ctx, k.obj())
		if err != nil {
			var noMatch *meta.NoKindMatchError
			if meta.IsNoMatchError(err) || errors.As(err, &noMatch) || apierrors.IsNotFound(err) {
				log.Info("kind not served by this cluster; not audited", "kind", k.kind)
				continue
			}
			return fmt.Errorf("audit: informer for %s: %w", k.kind, err)
		}
		served[k.kind] = true
		if _, err := inf.AddEventHandler(a.handler(ctx, k.kind, queue)); err != nil {
			return fmt.Errorf("audit: watching %s: %w", k.kind, err)
		}
	}
	if !a.opts.Cache.WaitForCacheSync(ctx) {
		return nil // ctx ended
	}
	log.Info("audit started", "interval", a.opts.Interval.String(), "qps", a.opts.QPS)

	go func() {
		for {
			key, quit := queue.Get()
			if quit {
				return
			}
			if a.wait(ctx) == nil {
				a.checkKey(ctx, key)
			}
			queue.Done(key)
		}
	}()

	for {
		a.pass(ctx, served)
		if a.opts.Interval <= 0 {
			<-ctx.Done()
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(a.opts.Interval):
		}
	}
}

// wait takes a token of the rate limit, then gives way to admissions in
// flight, for at most MaxYield.
func (a *Auditor) wait(ctx context.Context) error {
	if err := a.limiter.Wait(ctx); err != nil {
		return err
	}
	if a.opts.Busy == nil {
		return nil
	}
	deadline := time.Now().Add(a.opts.MaxYield)
	for a.opts.Busy() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(yieldStep):
		}
	}
	return nil
}

// pass re-checks every object of every served kind once.
func (a *Auditor) pass(ctx context.Context, served map[string]bool) {
	start := time.Now()
	var keys []Key
	for _, k := range kinds {
		if !served[k.kind] {
			continue
		}
		list := k.list()
		if err := a.opts.Cache.List(ctx, list); err != nil {
			a.opts.Log.Error(err, "audit: listing", "kind", k.kind)
			return
		}
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			keys = append(keys, Key{Kind: k.kind, Name: o.(client.Object).GetName()})
			return nil
		})
	}
	live := make(map[Key]bool, len(keys))
	for _, key := range keys {
		if err := a.wait(ctx); err != nil {
			return
		}
		a.checkKey(ctx, key)
		live[key] = true
	}
	// Objects deleted while the informer was not watching them are
	// forgotten here.
	a.mu.Lock()
	for key := range a.state {
		if !live[key] {
			delete(a.state, key)
		}
	}
	a.mu.Unlock()
	a.publish(len(keys))
	a.opts.Metrics.passDone(time.Now(), time.Since(start))
	a.opts.Log.V(1).Info("audit pass complete", "objects", len(keys), "duration", time.Since(start).String())
}

// handler queues an object for a re-check when it appears after the
// initial list or when its checked fields change; an EC2NodeClass or
// NodeClass change also re-checks the NodePools that name it.
func (a *Auditor) handler(ctx context.Context, kind string, queue workqueue.TypedInterface[Key]) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if o, ok := obj.(client.Object); ok && !initial {
				queue.Add(Key{Kind: kind, Name: o.GetName()})
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok := newObj.(client.Object)
			if !ok || sameChecked(kind, oldObj, newObj) {
				return
			}
			queue.Add(Key{Kind: kind, Name: o.GetName()})
			if kind != rules.NodePoolKind {
				for _, np := range a.referrers(ctx, kind, o.GetName()) {
					queue.Add(np)
				}
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(client.Object); ok {
				a.forget(Key{Kind: kind, Name: o.GetName()})
			}
		},
	}
}

// sameChecked reports whether an update leaves the fields the rules read
// alone (rules.Reads: the admission's own test of an update).
func sameChecked(kind string, oldObj, newObj any) bool {
	o, ok1 := oldObj.(runtime.Object)
	n, ok2 := newObj.(runtime.Object)
	return ok1 && ok2 && rules.Unchanged(kind, o, n)
}

// referrers lists the NodePools whose nodeClassRef names the class.
func (a *Auditor) referrers(ctx context.Context, kind, name string) []Key {
	var list rules.NodePoolList
	if err := a.opts.Cache.List(ctx, &list); err != nil {
		return nil
	}
	gk := rules.EC2NodeClassGK
	if kind == rules.NodeClassKind {
		gk = rules.EKSNodeClassGK
	}
	var out []Key
	for _, np := range list.Items {
		ref := np.Spec.Template.Spec.NodeClassRef
		if ref != nil && ref.Name == name && ref.GroupKind() == gk {
			out = append(out, Key{Kind: rules.NodePoolKind, Name: np.Name})
		}
	}
	return out
}

// checkKey reads the object from the cache and checks it; a vanished
// object is forgotten.
func (a *Auditor) checkKey(ctx context.Context, key Key) {
	a.checking.Lock()
	defer a.checking.Unlock()
	var obj client.Object
	for _, k := range kinds {
		if k.kind == key.Kind {
			obj = k.obj()
		}
	}
	if obj == nil {
		return
	}
	if err := a.opts.Cache.Get(ctx, types.NamespacedName{Name: key.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			a.forget(key)
		} else if ctx.Err() == nil {
			a.opts.Log.Error(err, "audit: reading", "object", key.String())
		}
		return
	}
	if obj.GetDeletionTimestamp() != nil {
		a.forget(key)
		return
	}
	var v rules.Verdict
	switch o := obj.(type) {
	case *rules.EC2NodeClass:
		v = a.opts.Checker.CheckEC2NodeClass(ctx, o)
	case *rules.NodeClass:
		v = a.opts.Checker.CheckNodeClass(ctx, o)
	case *rules.NodePool:
		v = a.opts.Checker.CheckNodePool(ctx, o)
	}
	if ctx.Err() != nil {
		return
	}
	a.record(key, obj, v)
}

// inconclusive reports whether a verdict rests on IAM being unreachable:
// such a pass says nothing new about the object, and the last conclusive
// state stands.
func inconclusive(v rules.Verdict) bool {
	for _, fs := range [][]rules.Finding{v.Denials, v.Warnings} {
		for _, f := range fs {
			if f.Code == rules.IAMUnavailable {
				return true
			}
		}
	}
	return false
}

// findingsOf keys a verdict's denials by code and field.
func findingsOf(v rules.Verdict) map[string]finding {
	out := map[string]finding{}
	for _, f := range v.Denials {
		out[string(f.Code)+" "+f.Field.String()] = finding{code: f.Code, line: f.DenialLine()}
	}
	return out
}

// record compares a conclusive verdict with the object's last state and
// reports what changed: a Warning Event per new or changed finding, a
// Normal Event when the object passes again, a log line per change.
func (a *Auditor) record(key Key, obj client.Object, v rules.Verdict) {
	log := a.opts.Log.WithValues("kind", key.Kind, "name", key.Name)
	if inconclusive(v) {
		log.V(1).Info("audit: IAM unavailable; keeping the last state")
		return
	}
	now := findingsOf(v)
	a.mu.Lock()
	before, seen := a.state[key]
	a.state[key] = objectState{findings: now}
	a.mu.Unlock()

	changed := false
	for _, id := range sortedKeys(now) {
		f := now[id]
		if old, ok := before.findings[id]; ok && old.line == f.line {
			continue
		}
		changed = true
		log.Info("audit finding", "code", string(f.code), "message", f.line)
		a.event(obj, "Warning", string(f.code), f.line)
	}
	var fixed []string
	for _, id := range sortedKeys(before.findings) {
		if _, ok := now[id]; !ok {
			changed = true
			fixed = append(fixed, string(before.findings[id].code))
			log.Info("audit finding resolved", "code", string(before.findings[id].code))
		}
	}
	if seen && len(now) == 0 && len(before.findings) > 0 {
		a.event(obj, "Normal", ReasonPassed,
			fmt.Sprintf("nodeclass-guard: passes every check again (resolved: %s)", joinCodes(fixed)))
	}
	if changed {
		a.publish(-1)
	}
}

func (a *Auditor) event(obj client.Object, typ, reason, note string) {
	if a.opts.Recorder == nil {
		return
	}
	if len(note) > maxNote {
		note = note[:maxNote-3] + "..."
	}
	a.opts.Recorder.Eventf(obj, nil, typ, reason, eventAction, "%s", note)
}

// forget drops a deleted object's state and its share of the gauges.
func (a *Auditor) forget(key Key) {
	a.mu.Lock()
	_, had := a.state[key]
	delete(a.state, key)
	a.mu.Unlock()
	if had {
		a.publish(-1)
	}
}

// publish sets the violation gauges from the current state; objects >= 0
// also sets the number of audited objects.
func (a *Auditor) publish(objects int) {
	if a.opts.Metrics == nil {
		return
	}
	counts := map[[2]string]float64{}
	a.mu.Lock()
	for key, st := range a.state {
		seen := map[rules.Code]bool{}
		for _, f := range st.findings {
			if !seen[f.code] {
				seen[f.code] = true
				counts[[2]string{key.Kind, string(f.code)}]++
			}
		}
	}
	a.mu.Unlock()
	a.opts.Metrics.setViolations(counts)
	if objects >= 0 {
		a.opts.Metrics.Objects.Set(float64(objects))
	}
}

// Violations returns the current findings by object, for tests and the
// offline report: each object's codes, sorted.
func (a *Auditor) Violations() map[Key][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[Key][]string{}
	for key, st := range a.state {
		for _, f := range st.findings {
			out[key] = append(out[key], string(f.code))
		}
		sort.Strings(out[key])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func joinCodes(codes []string) string {
	if len(codes) == 0 {
		return "none"
	}
	s := codes[0]
	for _, c := range codes[1:] {
		s += ", " + c
	}
	return s
}
