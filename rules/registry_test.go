package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// byRule runs rn on o and returns each rule's findings (after its
// Finish), by rule name.
func byRule(t *testing.T, c *Checker, rn *runner, o *subject) map[string]string {
	t.Helper()
	s := &runScratch{qs: make([]Questions, len(rn.rules))}
	outs := make([]Verdict, len(rn.rules))
	var v Verdict
	rn.runRules(context.Background(), c, o, &v, s, outs)
	out := map[string]string{}
	for i, r := range rn.rules {
		var lines []string
		for _, f := range append(append([]Finding(nil), outs[i].Denials...), outs[i].Warnings...) {
			lines = append(lines, f.DenialLine())
		}
		for _, n := range outs[i].NotChecked {
			lines = append(lines, fmt.Sprintf("not checked: %+v", n))
		}
		if r.Class != nil && o.poolClass != nil {
			cv := o.classVerdict
			lines = append(lines, fmt.Sprintf("class: %s %v %+v", cv.DenialMessage(), cv.WarningLines(), cv.NotChecked))
		}
		out[r.Name] = fmt.Sprint(lines)
	}
	return out
}

// declaredFields are the fields a rule may depend on: those it declares,
// and those of every rule giving a fact it needs.
func declaredFields(rules []*Rule, r *Rule) map[string]bool {
	out := map[string]bool{}
	var add func(r *Rule, seen map[*Rule]bool)
	add = func(r *Rule, seen map[*Rule]bool) {
		if seen[r] {
			return
		}
		seen[r] = true
		for _, f := range r.Fields {
			out[f] = true
		}
		for _, need := range r.Needs {
			for _, g := range rules {
				if slices.Contains(g.Gives, need) {
					add(g, seen)
				}
			}
		}
	}
	add(r, map[*Rule]bool{})
	return out
}

// registryClass is a class on which every rule of the class registry has
// something to say: selectors, tags, volumes with a KMS key, kubelet and
// userData.
func registryClass() *EC2NodeClass {
	nc := kmsClass("arn:aws:kms:us-west-2:111122223333:key/1111aaaa-0000-4000-8000-000000000001")
	spec := goodSpec()
	spec.Role = nc.Spec.Role
	spec.BlockDeviceMappings = nc.Spec.BlockDeviceMappings
	spec.Tags = map[string]string{"team": "a"}
	family := "AL2023"
	spec.AMIFamily = &family
	if err := json.Unmarshal([]byte(`{"maxPods": 110}`), &spec.Kubelet); err != nil {
		panic(err)
	}
	ud := "#!/bin/bash\necho hi\n"
	spec.UserData = &ud
	nc.Spec = spec
	nc.UID = "1a2b"
	return nc
}

// TestRulesReadWhatTheyDeclare: changing one field of an object changes
// the findings of no rule that does not declare it (in Fields, its own or
// those of the rules whose facts it needs). A rule that starts reading a
// field without declaring it fails here, as the update filter, the audit
// and the registration's matchConditions would miss its updates.
func TestRulesReadWhatTheyDeclare(t *testing.T) {
	snap := loadSampleSnapshot(t)
	// The sample's controller may launch with any tags and market type:
	// here it may not launch spot, nor with the tag team=b.
	c := selectorChecker(t, func(cfg *Config) {
		cfg.KMS = snap
		cfg.IAM = denyWhen{snap, func(q authz.Question) bool {
			return q.Action == "ec2:RunInstances" && (slices.Contains(q.Context["aws:RequestTag/team"], "b") ||
				slices.Contains(q.Context["ec2:InstanceMarketType"], "spot"))
		}}
	})
	str := func(s string) *string { return &s }
	classMutations := map[string]func(*EC2NodeClassSpec){
		"spec.role":            func(s *EC2NodeClassSpec) { s.Role = "KarpenterNodeRole-missing" },
		"spec.instanceProfile": func(s *EC2NodeClassSpec) { s.InstanceProfile = "KarpenterNodeInstanceProfile-demo" },
		"spec.tags":            func(s *EC2NodeClassSpec) { s.Tags = map[string]string{"team": "b"} },
		"spec.amiFamily":       func(s *EC2NodeClassSpec) { s.AMIFamily = str("Bottlerocket") },
		"spec.subnetSelectorTerms": func(s *EC2NodeClassSpec) {
			s.SubnetSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "none")}
		},
		"spec.securityGroupSelectorTerms": func(s *EC2NodeClassSpec) {
			s.SecurityGroupSelectorTerms = []SelectorTerm{tagTerm("karpenter.sh/discovery", "none")}
		},
		"spec.amiSelectorTerms": func(s *EC2NodeClassSpec) { s.AMISelectorTerms = []SelectorTerm{{Alias: "bottlerocket@latest"}} },
		"spec.capacityReservationSelectorTerms": func(s *EC2NodeClassSpec) {
			s.CapacityReservationSelectorTerms = []SelectorTerm{{ID: "cr-0none"}}
		},
		"spec.kubelet": func(s *EC2NodeClassSpec) {
			s.Kubelet = map[string]json.RawMessage{"maxPods": json.RawMessage(`"lots"`), "evictionHard": json.RawMessage(`{"memory.available": "200%"}`)}
		},
		"spec.userData": func(s *EC2NodeClassSpec) {
			s.UserData = str("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flagz: [--x]\n")
		},
		"spec.blockDeviceMappings": func(s *EC2NodeClassSpec) {
			s.BlockDeviceMappings = kmsClass("alias/missing").Spec.BlockDeviceMappings
		},
	}
	for field, mutate := range classMutations {
		base := registryClass()
		changed := registryClass()
		mutate(&changed.Spec)
		before := byRule(t, c, classRunner, c.ec2Object(base, nil, true, false, true, nil))
		after := byRule(t, c, classRunner, c.ec2Object(changed, nil, true, false, true, nil))
		moved := false
		for _, r := range classRunner.rules {
			if before[r.Name] == after[r.Name] {
				continue
			}
			moved = true
			if !declaredFields(classRules, r)[field] {
				t.Errorf("rule %q: changing %s changes its findings, but neither it nor the rules it needs declare %s\n  before %s\n  after  %s",
					r.Name, field, field, before[r.Name], after[r.Name])
			}
		}
		if !moved {
			t.Errorf("changing %s changed no rule's findings: the mutation tests nothing", field)
		}
	}

	// A NodePool's requirements and class reference.
	poolMutations := map[string]func(*NodePool){
		"spec.template.spec.nodeClassRef": func(np *NodePool) { np.Spec.Template.Spec.NodeClassRef = refEC2("notrust") },
		"spec.template.spec.requirements": func(np *NodePool) {
			np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "In", Values: []string{"spot"}}}
		},
	}
	for field, mutate := range poolMutations {
		base := nodePool("p", refEC2("default"))
		changed := nodePool("p", refEC2("default"))
		mutate(changed)
		before := byRule(t, c, poolRunner, &subject{np: base, spot: allowsSpot(base.Spec.Template.Spec.Requirements)})
		after := byRule(t, c, poolRunner, &subject{np: changed, spot: allowsSpot(changed.Spec.Template.Spec.Requirements)})
		moved := false
		for _, r := range poolRunner.rules {
			if before[r.Name] == after[r.Name] {
				continue
			}
			moved = true
			if !declaredFields(poolRules, r)[field] {
				t.Errorf("rule %q: changing %s changes its findings, but neither it nor the rules it needs declare %s", r.Name, field, field)
			}
		}
		if !moved {
			t.Errorf("changing %s changed no rule's findings: the mutation tests nothing", field)
		}
	}
}

// TestRegistriesDeclareReads: Reads, per kind, is every field the kind's
// rules declare, and only those: the rules' Fields are its one source
// (the update filter, the audit, deploy/'s matchConditions and the
// README's table follow Reads).
func TestRegistriesDeclareReads(t *testing.T) {
	for kind, reg := range map[string]struct {
		rules []*Rule
		obj   any
	}{
		EC2NodeClassKind: {classRules, EC2NodeClass{}},
		NodeClassKind:    {classRules, NodeClass{}},
		NodePoolKind:     {poolRules, NodePool{}},
	} {
		var leaves []string
		spec, _ := reflect.TypeOf(reg.obj).FieldByName("Spec")
		stop := map[string]bool{}
		for _, p := range Reads[kind] {
			stop[p] = true
		}
		jsonLeaves(spec.Type, "spec.", stop, &leaves)
		declared := map[string]bool{}
		for _, r := range reg.rules {
			for _, f := range r.Fields {
				if slices.Contains(leaves, f) {
					declared[f] = true
				}
			}
		}
		for _, p := range Reads[kind] {
			if !declared[p] {
				t.Errorf("%s: Reads lists %s, which no rule of its registry declares", kind, p)
			}
			delete(declared, p)
		}
		for p := range declared {
			t.Errorf("%s: a rule declares %s, which Reads does not list", kind, p)
		}
	}
}

// TestRegistryRounds: the runner puts every rule that asks AWS of a cold
// class in the first two rounds (an EC2NodeClass admission makes at most
// two sequential AWS round trips: the role or profile, the cluster, the
// selectors' first round, the KMS keys and the Kubernetes reads at once,
// then the images behind SSM parameters and the access entry); the
// permission questions after them are answered from the controller's
// policies, read at start.
func TestRegistryRounds(t *testing.T) {
	round := map[string]int{}
	for i, rs := range classRunner.rounds {
		for _, j := range rs {
			round[classRunner.rules[j].Name] = i
		}
	}
	for _, name := range []string{"role", "instance profile", "cluster", "selector terms", "KMS keys", "NodePools of the class",
		"NodeClaims of the class", "old selector terms", "launch keys"} {
		if round[name] != 0 {
			t.Errorf("rule %q runs in round %d, want the first", name, round[name])
		}
	}
	for _, name := range []string{"selector images", "old selector images", "node join"} {
		if round[name] != 1 {
			t.Errorf("rule %q runs in round %d, want the second", name, round[name])
		}
	}
	if n := len(classRunner.rounds); n > 4 {
		t.Errorf("the class registry runs in %d rounds", n)
	}
	// The permission questions go to IAM together: every late rule runs
	// in the last round.
	last := len(classRunner.rounds) - 1
	for _, r := range classRules {
		if r.Late && round[r.Name] != last {
			t.Errorf("late rule %q runs in round %d, not the last (%d)", r.Name, round[r.Name], last)
		}
	}
	for _, name := range []string{"pass role", "instance profile read", "instance profile actions", "launch", "EKS Auto Mode launch", "KMS"} {
		if round[name] != last {
			t.Errorf("rule %q asks permissions in round %d, not with the others in the last (%d)", name, round[name], last)
		}
	}
	// Every registry's needs are given: newRunner panics otherwise.
	defer func() {
		if r := recover(); r == nil {
			t.Error("a rule needing a fact no rule gives was accepted")
		}
	}()
	newRunner([]*Rule{{Name: "orphan", Needs: []fact{factCluster}}}, nil)
}

// TestRunnerAsksOneRoundAtATime: a cold EC2NodeClass admission puts every
// question of a round to the views at once: counted at the views, the
// selector, role, cluster and KMS lookups of the first round are asked
// before any of the second.
func TestRunnerAsksOneRoundAtATime(t *testing.T) {
	snap := loadSampleSnapshot(t)
	rec := &orderView{}
	c := selectorChecker(t, func(cfg *Config) {
		cfg.IAM = recordIAM{snap, rec}
		cfg.EC2 = recordEC2{snap, rec}
		cfg.EKS = recordEKS{snap, rec}
		cfg.KMS = snap
	})
	v := c.CheckEC2NodeClass(context.Background(), registryClass())
	if len(rec.calls) == 0 {
		t.Fatalf("nothing was asked: %v", v.Codes())
	}
	// The round of each call, as the order says: Describe calls of
	// images by ID (behind SSM) and access entries come after every
	// first-round call.
	lastFirst, firstSecond := -1, len(rec.calls)
	for i, call := range rec.calls {
		switch call {
		case "GetRole", "DescribeCluster", "GetParameter", "DescribeSubnets", "DescribeSecurityGroups":
			lastFirst = i
		case "DescribeImages", "DescribeAccessEntry":
			firstSecond = min(firstSecond, i)
		}
	}
	if lastFirst > firstSecond {
		t.Errorf("a first-round lookup came after a second-round one: %v", rec.calls)
	}
}

// orderView records the order of the lookups the views answer.
type orderView struct{ calls []string }

func (o *orderView) add(op string) { o.calls = append(o.calls, op) }

type recordIAM struct {
	*authz.Snapshot
	rec *orderView
}

func (r recordIAM) Role(ctx context.Context, name string) (authz.Role, error) {
	r.rec.add("GetRole")
	return r.Snapshot.Role(ctx, name)
}

type recordEC2 struct {
	*authz.Snapshot
	rec *orderView
}

func (r recordEC2) Describe(ctx context.Context, q authz.EC2Query) (authz.EC2Resources, error) {
	op := string(q.Resource)
	if len(q.IDs) > 0 && q.Resource == authz.EC2Images {
		op = "DescribeImages"
	}
	r.rec.add(op)
	return r.Snapshot.Describe(ctx, q)
}

func (r recordEC2) Parameter(ctx context.Context, name string) (authz.Parameter, error) {
	r.rec.add("GetParameter")
	return r.Snapshot.Parameter(ctx, name)
}

type recordEKS struct {
	*authz.Snapshot
	rec *orderView
}

func (r recordEKS) Cluster(ctx context.Context, name string) (authz.Cluster, error) {
	r.rec.add("DescribeCluster")
	return r.Snapshot.Cluster(ctx, name)
}

func (r recordEKS) AccessEntry(ctx context.Context, cluster, principal string) (authz.AccessEntry, error) {
	r.rec.add("DescribeAccessEntry")
	return r.Snapshot.AccessEntry(ctx, cluster, principal)
}

// denyWhen is an IAM view that denies, explicitly, the questions deny
// picks, and asks the snapshot the others.
type denyWhen struct {
	snap *authz.Snapshot
	deny func(authz.Question) bool
}

func (d denyWhen) Role(ctx context.Context, name string) (authz.Role, error) {
	return d.snap.Role(ctx, name)
}

func (d denyWhen) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	return d.snap.InstanceProfile(ctx, name)
}

func (d denyWhen) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	if d.deny(q) {
		return authz.Decision{Explicit: true}, nil
	}
	return d.snap.Decide(ctx, q)
}
