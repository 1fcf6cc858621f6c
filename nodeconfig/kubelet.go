package nodeconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// KubeletTypes names the types spec.kubelet is decoded against: those of
// the k8s.io/kubelet release karpenter-provider-aws v1.15.1 is built
// against (its go.mod), pinned at that version in this module's go.mod.
const KubeletTypes = "KubeletConfiguration of k8s.io/kubelet v0.37.0"

// why is what Karpenter does with a refused spec.kubelet, for messages.
const why = "Karpenter 1.15 would mark the class ValidationSucceeded=False and launch no node"

// Kubelet judges spec.kubelet (at path) of a class of AMI family family
// ("" when unknown: the family rules are then skipped) as Karpenter 1.15
// validates the free-form map: unknown fields and wrong types against
// KubelTypes, the values the kubelet refuses, the CEL expressions of
// maxPods, kubeReserved and systemReserved, and the fields the family
// would drop. Karpenter before 1.15 types spec.kubelet in its CRD, and the
// API server checks it: call Kubelet only for 1.15 and later.
func Kubelet(path *field.Path, kc map[string]json.RawMessage, family string) []Finding {
	if len(kc) == 0 {
		return nil
	}
	var out []Finding
	out = append(out, kubeletShape(path, kc)...)
	out = append(out, kubeletSemantics(path, kc)...)
	out = append(out, kubeletExpressions(path, kc)...)
	out = append(out, kubeletFamily(path, kc, family)...)
	return out
}

var (
	kubeletType     = reflect.TypeFor[kubeletv1beta1.KubeletConfiguration]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	fieldsCache     sync.Map // reflect.Type -> fieldSet
)

// fieldSet is a struct's JSON field names, in declaration order, and
// their types.
type fieldSet struct {
	names []string
	types map[string]reflect.Type
}

// jsonFields returns t's JSON fields, inlined structs' included.
func jsonFields(t reflect.Type) fieldSet {
	if fs, ok := fieldsCache.Load(t); ok {
		return fs.(fieldSet)
	}
	fs := fieldSet{types: map[string]reflect.Type{}}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) && f.Type.Kind() == reflect.Struct {
				add(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs.names = append(fs.names, name)
			fs.types[name] = f.Type
		}
	}
	add(t)
	fieldsCache.Store(t, fs)
	return fs
}

// opaque reports whether t decodes itself (a Duration, a Quantity): its
// inside is not walked for fields.
func opaque(t reflect.Type) bool {
	return t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
}

// unknownFields reports the keys of raw (a JSON object at path, of Go type
// t) that t has no field for, with the nearest field name, and walks the
// known ones.
func unknownFields(path *field.Path, raw json.RawMessage, t reflect.Type, in string) []Finding {
	return unknownFieldsAs(path, raw, t, KubeletConfigInvalid, func(k string, names []string) string {
		return fmt.Sprintf("unknown field %q.%s %s has no such field (names are case-sensitive), so %s (InvalidKubeletConfiguration)",
			k, didYouMean(k, names), in, why)
	})
}

// unknownFieldsAs is unknownFields reporting check, with msg's message
// for an unknown key k among names.
func unknownFieldsAs(path *field.Path, raw json.RawMessage, t reflect.Type, check Check, msg func(k string, names []string) string) []Finding {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if opaque(t) {
		return nil
	}
	var out []Finding
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil // a wrong type, reported by kubeletShape
		}
		fs := jsonFields(t)
		keys := sortedKeys(m)
		for _, k := range keys {
			ft, ok := fs.types[k]
			if !ok {
				out = append(out, finding(check, path.Child(k), msg(k, fs.names)))
				continue
			}
			out = append(out, unknownFieldsAs(path.Child(k), m[k], ft, check, msg)...)
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		for _, k := range sortedKeys(m) {
			out = append(out, unknownFieldsAs(path.Key(k), m[k], t.Elem(), check, msg)...)
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var l []json.RawMessage
		if json.Unmarshal(raw, &l) != nil {
			return nil
		}
		for i, e := range l {
			out = append(out, unknownFieldsAs(path.Index(i), e, t.Elem(), check, msg)...)
		}
	}
	return out
}

// kubeletShape reports unknown fields and wrong types against
// KubeletTypes. Each top-level field is decoded on its own, so that one
// wrong type does not hide the others (Karpenter reports the first).
func kubeletShape(path *field.Path, kc map[string]json.RawMessage) []Finding {
	obj, _ := json.Marshal(kc)
	in := "The kubelet's " + KubeletTypes + " (what Karpenter 1.15.1 decodes spec.kubelet against)"
	out := unknownFields(path, obj, kubeletType, in)
	fs := jsonFields(kubeletType)
	// One decode of the whole map first: a valid map (the common case)
	// costs one decode, not one per field.
	whole := kc
	if v, ok := kc["maxPods"]; ok && isJSONString(v) {
		whole = maps.Clone(kc)
		whole["maxPods"] = json.RawMessage("0")
	}
	if all, err := json.Marshal(whole); err == nil && json.Unmarshal(all, &kubeletv1beta1.KubeletConfiguration{}) == nil {
		return out
	}
	for _, k := range sortedKeys(kc) {
		ft, ok := fs.types[k]
		if !ok {
			continue
		}
		v := kc[k]
		if k == "maxPods" && isJSONString(v) {
			continue // a CEL expression, judged by kubeletExpressions
		}
		one, _ := json.Marshal(map[string]json.RawMessage{k: v})
		var into kubeletv1beta1.KubeletConfiguration
		err := json.Unmarshal(one, &into)
		if err == nil {
			continue
		}
		var te *json.UnmarshalTypeError
		p := path.Child(k)
		if errors.As(err, &te) {
			if te.Field != "" {
				p = path
				for _, seg := range strings.Split(te.Field, ".") {
					p = p.Child(seg)
				}
			}
			want := describe(te.Type)
			if te.Field == k || te.Field == "" {
				want = describe(ft)
			}
			out = append(out, finding(KubeletConfigInvalid, p, fmt.Sprintf(
				"is %s (%s), but the kubelet's %s wants %s there, so %s (InvalidKubeletConfiguration).%s",
				article(te.Value), shown(v), KubeletTypes, want, why, example(k, ft))))
			continue
		}
		out = append(out, finding(KubeletConfigInvalid, p, fmt.Sprintf(
			"%s does not decode as the kubelet's %s: %s, so %s",
			shown(v), KubeletTypes, err.Error(), why)))
	}
	return out
}

// describe says what JSON a Go type t takes, for a message.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.String() {
	case "v1.Duration":
		return `a duration string such as "5m0s"`
	case "resource.Quantity":
		return `a quantity such as "100Mi"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + plural(describe(t.Elem()))
	case reflect.Map:
		return "an object of " + plural(describe(t.Elem()))
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

func plural(s string) string {
	for _, a := range []string{"an ", "a "} {
		if rest, ok := strings.CutPrefix(s, a); ok {
			switch {
			case strings.HasSuffix(rest, "integer"), strings.HasSuffix(rest, "string"), strings.HasSuffix(rest, "number"), strings.HasSuffix(rest, "object"):
				return rest + "s"
			}
			return rest
		}
	}
	return s
}

func article(jsonKind string) string {
	switch jsonKind {
	case "object", "array":
		return "an " + jsonKind
	case "":
		return "a value"
	}
	return "a " + jsonKind
}

// example shows the field written right, for the common fields.
func example(k string, t reflect.Type) string {
	switch k {
	case "evictionHard", "evictionSoft", "evictionMinimumReclaim":
		return fmt.Sprintf(` Write it as %s: {memory.available: "100Mi"}`, k)
	case "evictionSoftGracePeriod":
		return ` Write it as evictionSoftGracePeriod: {memory.available: "1m"}`
	case "kubeReserved", "systemReserved":
		return fmt.Sprintf(` Write it as %s: {cpu: "100m", memory: "512Mi"}`, k)
	case "clusterDNS":
		return ` Write it as clusterDNS: ["10.100.0.10"]`
	}
	switch d := describe(t); {
	case strings.HasPrefix(d, "an integer"):
		return fmt.Sprintf(" Write the number without quotes (%s: 110)", k)
	case d == "true or false":
		return fmt.Sprintf(" Write it without quotes (%s: true)", k)
	}
	return ""
}

// evictionSignals are the signals an eviction map may name (the kubelet
// ignores others); reservedResources the resources kubeReserved and
// systemReserved may reserve. As Karpenter 1.15.1 lists them.
var (
	evictionSignals   = []string{"memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree", "pid.available"}
	reservedResources = []string{"cpu", "memory", "ephemeral-storage", "pid"}
)

// kubeletSemantics are the rules the upstream types cannot say, as
// Karpenter 1.15.1 enforces them.
func kubeletSemantics(path *field.Path, kc map[string]json.RawMessage) []Finding {
	var out []Finding
	bad := func(p *field.Path, format string, args ...any) {
		out = append(out, finding(KubeletConfigInvalid, p, fmt.Sprintf(format, args...)))
	}
	if _, ok := kc["registerWithTaints"]; ok {
		bad(path.Child("registerWithTaints"), "Karpenter sets registerWithTaints itself from the NodeClaim's taints (so the node registers unschedulable until ready) and refuses a value here; %s. Remove it and set taints or startupTaints on the NodePool", why)
	}
	maps := map[string]map[string]string{}
	for _, f := range []string{"evictionHard", "evictionSoft", "evictionSoftGracePeriod", "evictionMinimumReclaim", "kubeReserved", "systemReserved"} {
		var m map[string]string
		if raw, ok := kc[f]; ok && json.Unmarshal(raw, &m) == nil {
			maps[f] = m
		}
	}
	for _, f := range []string{"evictionHard", "evictionSoft", "evictionSoftGracePeriod", "evictionMinimumReclaim"} {
		m, ok := maps[f]
		if !ok {
			continue
		}
		for _, k := range sortedKeys(m) {
			p := path.Child(f).Key(k)
			if !slices.Contains(evictionSignals, k) {
				bad(p, "%q is not an eviction signal, and the kubelet would ignore the threshold; %s. Use one of %s.%s", k, why, strings.Join(evictionSignals, ", "), didYouMean(k, evictionSignals))
			}
			val := m[k]
			if f == "evictionSoftGracePeriod" {
				if d, err := time.ParseDuration(val); err != nil {
					bad(p, "%q is not a duration; %s. Write a Go duration such as \"1m30s\"", val, why)
				} else if d < 0 {
					bad(p, "%q is a negative duration; %s", val, why)
				}
				continue
			}
			if pct, ok := strings.CutSuffix(val, "%"); ok {
				if x, err := strconv.ParseFloat(pct, 64); err != nil || x < 0 || x > 100 {
					bad(p, "%q must be a percentage from 0%% to 100%% or a quantity such as \"500Mi\"; %s", val, why)
				}
				continue
			}
			q, err := resource.ParseQuantity(val)
			switch {
			case err != nil:
				bad(p, "%q must be a percentage such as \"10%%\" or a quantity such as \"500Mi\"; %s", val, why)
			case q.Sign() < 0:
				bad(p, "%q is a negative quantity; %s", val, why)
			}
		}
	}
	soft, grace := maps["evictionSoft"], maps["evictionSoftGracePeriod"]
	for _, k := range sortedKeys(soft) {
		if _, ok := grace[k]; !ok {
			bad(path.Child("evictionSoft").Key(k), "has no evictionSoftGracePeriod[%s], and the kubelet ignores a soft threshold without one; %s. Add evictionSoftGracePeriod: {%s: \"1m\"}", k, why, k)
		}
	}
	for _, k := range sortedKeys(grace) {
		if _, ok := soft[k]; !ok {
			bad(path.Child("evictionSoftGracePeriod").Key(k), "has no evictionSoft[%s] threshold it applies to; %s. Add the evictionSoft threshold or remove the grace period", k, why)
		}
	}
	for _, f := range []string{"kubeReserved", "systemReserved"} {
		for _, k := range sortedKeys(maps[f]) {
			p := path.Child(f).Key(k)
			if !slices.Contains(reservedResources, k) {
				bad(p, "%q is not a resource the kubelet reserves; %s. Use one of %s.%s", k, why, strings.Join(reservedResources, ", "), didYouMean(k, reservedResources))
			}
			if strings.HasPrefix(maps[f][k], "-") {
				bad(p, "%q is a negative reservation; %s", maps[f][k], why)
			}
		}
	}
	for _, f := range []string{"imageGCHighThresholdPercent", "imageGCLowThresholdPercent"} {
		if x, ok := intField(kc, f); ok && (x < 0 || x > 100) {
			bad(path.Child(f), "%d must be from 0 to 100; %s", x, why)
		}
	}
	for _, f := range []string{"podsPerCore", "evictionMaxPodGracePeriod", "maxPods"} {
		if x, ok := intField(kc, f); ok && x < 0 {
			bad(path.Child(f), "%d is negative; %s", x, why)
		}
	}
	high, hok := intField(kc, "imageGCHighThresholdPercent")
	low, lok := intField(kc, "imageGCLowThresholdPercent")
	if hok && lok && high <= low {
		bad(path.Child("imageGCHighThresholdPercent"), "%d must be greater than imageGCLowThresholdPercent (%d), or image garbage collection never runs; %s", high, low, why)
	}
	return out
}

// intField reads an integer field; false when absent or not an integer.
func intField(kc map[string]json.RawMessage, f string) (int64, bool) {
	raw, ok := kc[f]
	if !ok {
		return 0, false
	}
	var x int64
	if json.Unmarshal(raw, &x) != nil {
		return 0, false
	}
	return x, true
}

func isJSONString(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil
}

// managedFields are the kubelet fields Karpenter 1.15.1 maps into every
// family's bootstrap (its ParsedKubeletConfig); only AL2023 (nodeadm)
// passes the others through.
var managedFields = []string{"clusterDNS", "maxPods", "podsPerCore", "systemReserved", "kubeReserved", "evictionHard", "evictionSoft", "evictionSoftGracePeriod", "evictionMaxPodGracePeriod", "imageGCHighThresholdPercent", "imageGCLowThresholdPercent", "cpuCFSQuota"}

// kubeletFamily reports the fields family would drop, as Karpenter 1.15.1
// refuses them: AL2023 applies every field, Custom none (it owns its
// userData), the others only the managed fields, Bottlerocket without
// podsPerCore, and all but AL2023 a single clusterDNS entry.
func kubeletFamily(path *field.Path, kc map[string]json.RawMessage, family string) []Finding {
	if family == "" || family == FamilyAL2023 || family == FamilyCustom {
		return nil
	}
	var out []Finding
	known := jsonFields(kubeletType)
	for _, k := range sortedKeys(kc) {
		if _, ok := known.types[k]; !ok || slices.Contains(managedFields, k) {
			continue // unknown fields are KubeletConfigInvalid
		}
		out = append(out, finding(KubeletConfigUnsupported, path.Child(k), fmt.Sprintf(
			"the %s AMI family does not apply %s (Karpenter passes it only to AL2023's nodeadm; %s applies %s), so Karpenter 1.15 refuses the class (UnsupportedKubeletConfiguration) rather than drop it. Remove it, or use amiFamily AL2023",
			family, k, family, strings.Join(managedFields, ", "))))
	}
	if _, ok := kc["podsPerCore"]; ok && family == FamilyBottlerocket {
		out = append(out, finding(KubeletConfigUnsupported, path.Child("podsPerCore"), fmt.Sprintf(
			"the Bottlerocket AMI family has no setting for podsPerCore, so Karpenter 1.15 refuses the class (UnsupportedKubeletConfiguration) rather than drop it. Remove it, or set maxPods")))
	}
	var dns []string
	if raw, ok := kc["clusterDNS"]; ok && json.Unmarshal(raw, &dns) == nil && len(dns) > 1 {
		out = append(out, finding(KubeletConfigUnsupported, path.Child("clusterDNS"), fmt.Sprintf(
			"the %s AMI family passes a single DNS address to the kubelet, and %d are set, so Karpenter 1.15 refuses the class (UnsupportedKubeletConfiguration). Keep one entry", family, len(dns))))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// shown is a JSON value for a message, shortened.
func shown(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
