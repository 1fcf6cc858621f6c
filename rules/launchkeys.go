package rules

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// The launch's condition keys that the NodePool and the class give
// (karpenter.Launch): the instance types and capacity types the NodePool's
// requirements allow, spec.instanceProfile, and the EBS volumes of
// spec.blockDeviceMappings or, without them, Karpenter's defaults for the
// AMI family (karpenter-provider-aws pkg/providers/amifamily: DefaultEBS is
// encrypted gp3 of 20Gi on /dev/xvda for AL2 and AL2023; Bottlerocket
// adds a 4Gi root on /dev/xvda before the 20Gi data volume on /dev/xvdb;
// Windows has 50Gi on /dev/sda1; Custom takes the AMI's own).

// instanceTypeKey is the well-known label of a node's instance type.
const instanceTypeKey = "node.kubernetes.io/instance-type"

// launchKeysRule asks whether a policy of the controller role tests the
// keys a NodePool's requirements give several values (ec2:InstanceType,
// ec2:InstanceMarketType): only then is the instance asked once per value.
// It gives what the launch's condition keys are (launchOf).
var launchKeysRule = &Rule{
	Name:      "launch keys",
	Demotable: true,
	Fields:    []string{"spec.instanceProfile", "spec.blockDeviceMappings", "spec.amiFamily", "spec.template.spec.requirements"},
	Gives:     []fact{factLaunchKeys},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.perms || o.np == nil {
			return
		}
		reqs := o.np.Spec.Template.Spec.Requirements
		for _, k := range []struct {
			key    string
			values []string
		}{{"ec2:InstanceType", allowedValues(reqs, instanceTypeKey, nil)}, {"ec2:InstanceMarketType", marketTypes(reqs)}} {
			if len(k.values) > 1 && len(k.values) <= maxSplitValues {
				q.query(k.key, Query{Kind: QueryPolicyTests, Name: k.key})
			}
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
		if o.ec2 == nil {
			return
		}
		o.cl.launch = launchOf(o.ec2.Spec, o.np, func(key string) bool {
			ans, ok := a.one(key)
			return ok && ans.Err == nil && ans.Tests
		})
	},
}

// launchOf is what np's requirements and spec give the launch's keys; np
// nil (the class checked alone) leaves the instance and capacity types
// unknown. tests says whether a policy of the controller role tests a key.
func launchOf(spec EC2NodeClassSpec, np *NodePool, tests func(key string) bool) karpenter.Launch {
	l := karpenter.Launch{InstanceProfile: spec.InstanceProfile}
	if np != nil {
		reqs := np.Spec.Template.Spec.Requirements
		l.InstanceTypes = allowedValues(reqs, instanceTypeKey, nil)
		l.MarketTypes = marketTypes(reqs)
	}
	l.Volumes, l.VolumesUnknown = launchVolumes(spec)
	// Each split multiplies the instance's requests: at most
	// maxSplitValues instance requests per call in all.
	asked := 1
	for _, k := range []struct {
		key    string
		values []string
	}{{"ec2:InstanceType", l.InstanceTypes}, {"ec2:InstanceMarketType", l.MarketTypes}} {
		if len(k.values) > 1 && asked*len(k.values) <= maxSplitValues && tests(k.key) {
			l.Split = append(l.Split, k.key)
			asked *= len(k.values)
		}
	}
	return l
}

// maxSplitValues bounds how many requests per call the instance is asked
// with: a NodePool naming more instance types (times capacity types) than
// that leaves the key unknown.
const maxSplitValues = 20

// allowedValues are the values the requirements on key allow, when an In
// requirement names them (each further In narrows them, NotIn removes);
// nil when no In requirement does. universe, when set, is every value
// the key can take, for requirements without In.
func allowedValues(reqs []NodeSelectorRequirement, key string, universe []string) []string {
	var allowed []string
	named := false
	if universe != nil {
		allowed, named = slices.Clone(universe), true
	}
	for _, r := range reqs {
		if r.Key != key {
			continue
		}
		switch r.Operator {
		case "In":
			if !named {
				allowed, named = slices.Clone(r.Values), true
				continue
			}
			allowed = slices.DeleteFunc(allowed, func(v string) bool { return !slices.Contains(r.Values, v) })
		case "NotIn":
			allowed = slices.DeleteFunc(allowed, func(v string) bool { return slices.Contains(r.Values, v) })
		case "Exists":
		default: // DoesNotExist, Gt, Lt: nothing the model can name
			return nil
		}
	}
	if !named || len(allowed) == 0 {
		return nil
	}
	slices.Sort(allowed)
	return slices.Compact(allowed)
}

// marketTypes are the values of ec2:InstanceMarketType the NodePool's
// capacity types allow: without a capacity-type requirement Karpenter
// launches on-demand only. A reserved capacity type (capacity
// reservations, capacity blocks) is not one the model can name.
func marketTypes(reqs []NodeSelectorRequirement) []string {
	seen := slices.ContainsFunc(reqs, func(r NodeSelectorRequirement) bool { return r.Key == capacityTypeKey })
	if !seen {
		return []string{"on-demand"}
	}
	types := allowedValues(reqs, capacityTypeKey, []string{"on-demand", "reserved", "spot"})
	if slices.Contains(types, "reserved") {
		return nil
	}
	return types
}

// launchVolumes are the EBS volumes of the class's instances, or why they
// are not known.
func launchVolumes(spec EC2NodeClassSpec) ([]karpenter.Volume, string) {
	if len(spec.BlockDeviceMappings) > 0 {
		var out []karpenter.Volume
		for _, m := range spec.BlockDeviceMappings {
			if m.EBS == nil {
				continue
			}
			v := karpenter.Volume{Encrypted: m.EBS.Encrypted}
			if m.DeviceName != nil {
				v.Device = *m.DeviceName
			}
			if m.EBS.KMSKeyID != nil {
				v.KMSKeyID = *m.EBS.KMSKeyID
			}
			if m.EBS.VolumeType != nil {
				v.Type = *m.EBS.VolumeType
			}
			if m.EBS.VolumeSize != nil {
				v.SizeGiB = gib(*m.EBS.VolumeSize)
			}
			out = append(out, v)
		}
		if len(out) == 0 {
			return nil, "spec.blockDeviceMappings names no EBS volume, so the AMI's own are used"
		}
		return out, ""
	}
	yes := true
	root := func(device string, size int64) karpenter.Volume {
		return karpenter.Volume{Device: device, Encrypted: &yes, Type: "gp3", SizeGiB: size}
	}
	switch f := effectiveFamily(spec); {
	case f == familyAL2, f == familyAL2023:
		return []karpenter.Volume{root("/dev/xvda", 20)}, ""
	case f == familyBottlerocket:
		return []karpenter.Volume{root("/dev/xvda", 4), root("/dev/xvdb", 20)}, ""
	case strings.HasPrefix(f, "Windows"):
		return []karpenter.Volume{root("/dev/sda1", 50)}, ""
	case f == "":
		return nil, "the class names no AMI family, so the AMI's own block device mappings are used"
	default:
		return nil, fmt.Sprintf("amiFamily %s takes the AMI's own block device mappings", f)
	}
}

// gib is a volume size in GiB, as Karpenter gives it to EC2 (the
// quantity's bytes over 2^30).
func gib(q resource.Quantity) int64 {
	return int64(q.AsApproximateFloat64() / math.Pow(2, 30))
}
