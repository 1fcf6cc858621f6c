package nodeconfig

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The CEL environment of Karpenter 1.15's kubelet expressions
// (karpenter-provider-aws v1.15.1 pkg/cel/environment.go): the instance
// type's variables, and min and max over ints and doubles; an expression
// must return an int or a double.
var (
	celOnce sync.Once
	celEnv  *cel.Env
	celErr  error
)

// instanceShape is one instance type's variables.
type instanceShape struct {
	name                                    string
	vcpus, memoryMiB, enis, ipsPerENI, pods int64
}

// shapes are real instance types at the ends of the range, which every
// region Karpenter runs in offers, with their VPC CNI max pods: an
// expression that fails on one of them fails Karpenter's evaluation over
// every known instance type (KubeletExpressionEvaluationFailed).
var shapes = []instanceShape{
	{"t3.nano", 2, 512, 2, 2, 4},
	{"m5.large", 2, 8192, 3, 10, 29},
	{"m5.24xlarge", 96, 393216, 15, 50, 737},
}

func kubeletCEL() (*cel.Env, error) {
	celOnce.Do(func() {
		opts := []cel.EnvOption{
			cel.Variable("vcpus", cel.IntType),
			cel.Variable("memory_mib", cel.IntType),
			cel.Variable("default_enis", cel.IntType),
			cel.Variable("ips_per_eni", cel.IntType),
			cel.Variable("max_pods", cel.IntType),
			cel.Variable("instance_type", cel.StringType),
		}
		for _, fn := range []struct {
			name string
			pick func(a, b float64) bool // whether a is the result
		}{{"max", func(a, b float64) bool { return a > b }}, {"min", func(a, b float64) bool { return a < b }}} {
			pick := fn.pick
			num := func(v ref.Val) float64 {
				if i, ok := v.(types.Int); ok {
					return float64(i)
				}
				return float64(v.(types.Double))
			}
			choose := func(l, r ref.Val) ref.Val {
				if pick(num(l), num(r)) {
					return l
				}
				return r
			}
			asDouble := func(l, r ref.Val) ref.Val {
				out := choose(l, r)
				if i, ok := out.(types.Int); ok {
					return types.Double(i)
				}
				return out
			}
			opts = append(opts, cel.Function(fn.name,
				cel.Overload(fn.name+"_int_int", []*cel.Type{cel.IntType, cel.IntType}, cel.IntType, cel.BinaryBinding(choose)),
				cel.Overload(fn.name+"_double_double", []*cel.Type{cel.DoubleType, cel.DoubleType}, cel.DoubleType, cel.BinaryBinding(choose)),
				cel.Overload(fn.name+"_int_double", []*cel.Type{cel.IntType, cel.DoubleType}, cel.DoubleType, cel.BinaryBinding(asDouble)),
				cel.Overload(fn.name+"_double_int", []*cel.Type{cel.DoubleType, cel.IntType}, cel.DoubleType, cel.BinaryBinding(asDouble)),
			))
		}
		celEnv, celErr = cel.NewEnv(opts...)
	})
	return celEnv, celErr
}

// kubeletExpressions compiles the expressions of spec.kubelet (a string
// maxPods; a kubeReserved or systemReserved value that is not a quantity)
// as Karpenter does, and evaluates them on a few real instance types.
func kubeletExpressions(path *field.Path, kc map[string]json.RawMessage) []Finding {
	type expr struct {
		path    *field.Path
		text    string
		maxPods bool
	}
	var exprs []expr
	var s string
	if raw, ok := kc["maxPods"]; ok && json.Unmarshal(raw, &s) == nil {
		exprs = append(exprs, expr{path.Child("maxPods"), s, true})
	}
	for _, f := range []string{"kubeReserved", "systemReserved"} {
		var m map[string]string
		if raw, ok := kc[f]; !ok || json.Unmarshal(raw, &m) != nil {
			continue
		}
		for _, k := range sortedKeys(m) {
			if _, err := resource.ParseQuantity(m[k]); err != nil {
				exprs = append(exprs, expr{path.Child(f).Key(k), m[k], false})
			}
		}
	}
	if len(exprs) == 0 {
		return nil
	}
	env, err := kubeletCEL()
	if err != nil {
		return []Finding{finding(KubeletExpressionInvalid, path, "the kubelet expression environment could not be built: "+err.Error())}
	}
	var out []Finding
	for _, e := range exprs {
		if prg, ok := compiled.get(e.text); ok {
			out = append(out, evalShapes(prg, e.path, e.text, e.maxPods)...)
			continue
		}
		ast, iss := env.Compile(e.text)
		if iss != nil && iss.Err() != nil {
			out = append(out, finding(KubeletExpressionInvalid, e.path, fmt.Sprintf(
				"%q does not compile as a kubelet expression: %s; Karpenter 1.15 would mark the class ValidationSucceeded=False (KubeletExpressionInvalid). The variables are vcpus, memory_mib, default_enis, ips_per_eni, max_pods, instance_type; the functions min and max",
				e.text, oneLine(iss.Err().Error()))))
			continue
		}
		if t := ast.OutputType(); t != cel.IntType && t != cel.DoubleType {
			out = append(out, finding(KubeletExpressionInvalid, e.path, fmt.Sprintf(
				"%q returns %s; a kubelet expression must return an int or a double, or Karpenter 1.15 marks the class ValidationSucceeded=False (KubeletExpressionInvalid)", e.text, t)))
			continue
		}
		prg, err := env.Program(ast)
		if err != nil {
			out = append(out, finding(KubeletExpressionInvalid, e.path, fmt.Sprintf("%q: %s", e.text, oneLine(err.Error()))))
			continue
		}
		compiled.put(e.text, prg)
		out = append(out, evalShapes(prg, e.path, e.text, e.maxPods)...)
	}
	out = append(out, Finding{Check: KubeletExpressionsGated, Path: exprs[0].path, Warn: true, Message: fmt.Sprintf(
		"%q is a CEL expression, which Karpenter 1.15 applies only with its feature gate NodeClassCEL=true (off by default: settings.awsFeatureGates.nodeClassCEL); otherwise the class is not Ready (KubeletExpressionsDisabled)", exprs[0].text)})
	return out
}

// evalShapes evaluates prg on each shape, reporting the first failure.
func evalShapes(prg cel.Program, path *field.Path, text string, maxPods bool) []Finding {
	for _, sh := range shapes {
		if msg := evalOn(prg, sh, maxPods); msg != "" {
			return []Finding{finding(KubeletExpressionEvaluationFailed, path, fmt.Sprintf(
				"%q %s on %s (vcpus=%d, memory_mib=%d, max_pods=%d); Karpenter 1.15 evaluates it on every instance type and would mark the class ValidationSucceeded=False (KubeletExpressionEvaluationFailed). Guard it, for example with max(...)",
				text, msg, sh.name, sh.vcpus, sh.memoryMiB, sh.pods))}
		}
	}
	return nil
}

// programCache keeps compiled expressions (as Karpenter does): every
// admission of a class compiles the same few. Bounded: emptied when full.
type programCache struct {
	mu sync.Mutex
	m  map[string]cel.Program
}

const maxPrograms = 256

var compiled = &programCache{m: map[string]cel.Program{}}

func (c *programCache) get(text string) (cel.Program, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[text]
	return p, ok
}

func (c *programCache) put(text string, p cel.Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxPrograms {
		clear(c.m)
	}
	c.m[text] = p
}

// evalOn evaluates prg on sh and says what is wrong with the result, ""
// when nothing.
func evalOn(prg cel.Program, sh instanceShape, maxPods bool) string {
	out, _, err := prg.Eval(map[string]any{
		"vcpus": sh.vcpus, "memory_mib": sh.memoryMiB, "default_enis": sh.enis,
		"ips_per_eni": sh.ipsPerENI, "max_pods": sh.pods, "instance_type": sh.name,
	})
	if err != nil {
		return "fails (" + oneLine(err.Error()) + ")"
	}
	var v float64
	switch x := out.Value().(type) {
	case int64:
		v = float64(x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Sprintf("returns %v", x)
		}
		v = x
	default:
		return fmt.Sprintf("returns a %T", x)
	}
	switch {
	case v < 0:
		return fmt.Sprintf("returns %v, a negative value", v)
	case maxPods && v > math.MaxInt32:
		return fmt.Sprintf("returns %v, beyond maxPods' int32", v)
	}
	return ""
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
