package audit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

type event struct{ typ, reason, note string }

type recorder struct{ events []event }

func (r *recorder) Eventf(_ runtime.Object, _ runtime.Object, typ, reason, _ string, note string, args ...interface{}) {
	r.events = append(r.events, event{typ, reason, fmt.Sprintf(note, args...)})
}

func (r *recorder) take() []event {
	out := r.events
	r.events = nil
	return out
}

func denial(code rules.Code, msg string) rules.Finding {
	return rules.Finding{Code: code, Field: field.NewPath("spec", "role"), Message: msg, Deny: true}
}

// TestRecordEmitsOnChangeOnly walks one object through the states the
// audit sees and checks the Events, the gauge and the kept state.
func TestRecordEmitsOnChangeOnly(t *testing.T) {
	rec := &recorder{}
	m := NewMetrics()
	a := New(Options{Recorder: rec, Metrics: m, Log: logr.Discard()})
	key := Key{Kind: rules.EC2NodeClassKind, Name: "default"}
	obj := &rules.EC2NodeClass{}
	obj.Name = "default"
	gaugeOf := func(code string) float64 {
		return value(m.Violations.WithLabelValues(rules.EC2NodeClassKind, code))
	}
	passRole := denial(rules.PassRoleDenied, "may not iam:PassRole")

	steps := []struct {
		name    string
		v       rules.Verdict
		want    []event
		gauge   float64
		codes   []string
		comment string
	}{
		{"first seen, passing", rules.Verdict{}, nil, 0, nil, "no Event for an object that was never failing"},
		{"revoked", rules.Verdict{Denials: []rules.Finding{passRole}},
			[]event{{"Warning", "PassRoleDenied", passRole.DenialLine()}}, 1, []string{"PassRoleDenied"}, "a Warning per new finding"},
		{"same again", rules.Verdict{Denials: []rules.Finding{passRole}}, nil, 1, []string{"PassRoleDenied"}, "not on every pass"},
		{"IAM down", rules.Verdict{Warnings: []rules.Finding{{Code: rules.IAMUnavailable, Field: field.NewPath("spec")}}},
			nil, 1, []string{"PassRoleDenied"}, "an inconclusive pass keeps the last state"},
		{"message changes", rules.Verdict{Denials: []rules.Finding{denial(rules.PassRoleDenied, "denied by SCP")}},
			[]event{{"Warning", "PassRoleDenied", denial(rules.PassRoleDenied, "denied by SCP").DenialLine()}}, 1, []string{"PassRoleDenied"}, "a changed finding is emitted again"},
		{"restored", rules.Verdict{}, []event{{"Normal", ReasonPassed, "nodeclass-guard: passes every check again (resolved: PassRoleDenied)"}}, 0, nil, "a Normal Event when fine again"},
		{"still fine", rules.Verdict{}, nil, 0, nil, "and only once"},
	}
	for _, s := range steps {
		a.record(key, obj, s.v)
		got := rec.take()
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: Events %+v, want %+v (%s)", s.name, got, s.want, s.comment)
		}
		if g := gaugeOf("PassRoleDenied"); g != s.gauge {
			t.Errorf("%s: gauge %g, want %g", s.name, g, s.gauge)
		}
		if got := strings.Join(a.Violations()[key], ","); got != strings.Join(s.codes, ",") {
			t.Errorf("%s: violations %q, want %q", s.name, got, s.codes)
		}
	}

	a.record(key, obj, rules.Verdict{Denials: []rules.Finding{passRole}})
	rec.take()
	a.forget(key)
	if g := gaugeOf("PassRoleDenied"); g != 0 {
		t.Errorf("after the object is deleted: gauge %g, want 0", g)
	}
	if len(rec.take()) != 0 {
		t.Error("a deleted object got an Event")
	}
}

// TestGaugeCountsObjects checks that the gauge counts objects per code, a
// code raised twice on one object (two fields) counting once.
func TestGaugeCountsObjects(t *testing.T) {
	m := NewMetrics()
	a := New(Options{Metrics: m, Log: logr.Discard()})
	two := rules.Verdict{Denials: []rules.Finding{
		denial(rules.LaunchDenied, "a"),
		{Code: rules.LaunchDenied, Field: field.NewPath("spec", "instanceProfile"), Message: "b", Deny: true},
	}}
	for _, name := range []string{"a", "b"} {
		obj := &rules.EC2NodeClass{}
		obj.Name = name
		a.record(Key{Kind: rules.EC2NodeClassKind, Name: name}, obj, two)
	}
	if g := value(m.Violations.WithLabelValues(rules.EC2NodeClassKind, "LaunchDenied")); g != 2 {
		t.Errorf("gauge %g, want 2 objects", g)
	}
}

func TestSameChecked(t *testing.T) {
	a, b := &rules.EC2NodeClass{}, &rules.EC2NodeClass{}
	a.Spec.Role, b.Spec.Role = "x", "x"
	b.Labels = map[string]string{"status": "changed"}
	if !sameChecked(rules.EC2NodeClassKind, a, b) {
		t.Error("a metadata change counted as a checked-field change")
	}
	b.Spec.Role = "y"
	if sameChecked(rules.EC2NodeClassKind, a, b) {
		t.Error("a spec.role change not seen")
	}
	p, q := &rules.NodePool{}, &rules.NodePool{}
	q.Spec.Template.Spec.NodeClassRef = &rules.NodeClassReference{Name: "c"}
	if sameChecked(rules.NodePoolKind, p, q) {
		t.Error("a nodeClassRef appearing not seen")
	}
	// The rules read a NodePool's requirements (architectures, spot): a
	// change of them alone is a change.
	r := q.DeepCopyObject().(*rules.NodePool)
	r.Spec.Template.Spec.Requirements = []rules.NodeSelectorRequirement{{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"spot"}}}
	if sameChecked(rules.NodePoolKind, q, r) {
		t.Error("a requirements change not seen")
	}
}

func value(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}
