package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// launchRule: the controller may make the EC2 requests of Karpenter's
// launches and of its validation of the class, on the resources the
// selectors resolved.
var launchRule = &Rule{
	Name:      "launch",
	Late:      true,
	Demotable: true,
	Codes:     []Code{LaunchDenied},
	Fields: []string{"spec.role", "spec.instanceProfile", "spec.tags", "spec.amiFamily",
		"spec.subnetSelectorTerms", "spec.securityGroupSelectorTerms", "spec.amiSelectorTerms",
		"spec.blockDeviceMappings", "spec.template.spec.requirements"},
	Needs: []fact{factLaunchKeys, factResolution},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.perms {
			return
		}
		if o.ec2 != nil && c.resolvesSelectors(o.ec2.Spec) {
			// The image, subnets and security groups the selectors
			// resolved to.
			o.cl.ec2 = c.launchResources(o.ec2.Spec, o.sides[sideNew].res)
		}
		lp := c.launchQuestions(o.cl)
		q.keep(&lp)
		q.permissions("launch", lp.questions)
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		lp, ok := a.kept().(*launchPlan)
		if !ok {
			return
		}
		as := a.all("launch")
		v.NotChecked = lp.notChecked
		v.addAll(c.judgeLaunch(&o.n, o.cl, *lp, as))
		if extra := unknownNotChecked(*lp, as); len(extra) > 0 {
			v.NotChecked = append(slices.Clone(v.NotChecked), extra...)
		}
	},
}

// launchPlan is the launch rule's plan: the questions, the model's
// requests they were made from (index for index), and what the model
// could not ask.
type launchPlan struct {
	questions  []authz.Question
	requests   []karpenter.Request
	notChecked []karpenter.NotChecked
}

// launchQuestions plans the EC2 requests of Karpenter's launches and (from
// 1.3) of its validation of cl, as karpenter.LaunchRequests models them for
// the configured version. cl.ec2 holds the image, subnet and security-group
// ARNs the class's selectors resolve to; nil (not resolved) leaves the
// requests on them reported as not checked. Plans are kept at the edge
// (plans.go), keyed by the whole karpenter.Input they are built from:
// callers must not change one.
func (c *Checker) launchQuestions(cl class) launchPlan {
	in := c.karpenterInput(cl)
	in.EC2 = cl.ec2
	b, err := json.Marshal(in)
	if err != nil { // an Input is strings, string lists and maps: never
		return c.buildLaunchPlan(in)
	}
	key := "launch " + string(b)
	return c.plans.plan(key, func() any { return c.buildLaunchPlan(in) },
		func(p any) bool { return cacheablePlan(key, p.(launchPlan)) }).(launchPlan)
}

// buildLaunchPlan is the launch rule's plan: pure in in and the Checker's
// configuration (the Karpenter version, the controller role).
func (c *Checker) buildLaunchPlan(in karpenter.Input) launchPlan {
	reqs, notChecked := karpenter.LaunchRequests(c.cfg.Karpenter.Model, in)
	p := launchPlan{requests: reqs, notChecked: notChecked, questions: make([]authz.Question, len(reqs))}
	for i, r := range reqs {
		p.questions[i] = r.Question(c.controllerARN)
	}
	authz.PrepareKeys(p.questions)
	return p
}

func (c *Checker) judgeLaunch(n *notes, cl class, p launchPlan, as []Answer) []Finding {
	dd := deniedOf(n, specPath, p.questions, as)
	if len(dd.questions) == 0 {
		return nil
	}
	// Name the denied actions, their resources and the steps making them;
	// the finding's Requests carry each request whole.
	denied := make(map[string]bool, len(dd.questions))
	for _, q := range dd.questions {
		denied[q.Key()] = true
	}
	var actions []string
	var where resourceGroups
	var deniedReqs []karpenter.Request
	placeholders := map[string]bool{}
	launch, validation := false, false
	for i, q := range p.questions {
		if !denied[q.Key()] {
			continue
		}
		r := p.requests[i]
		deniedReqs = append(deniedReqs, r)
		actions = appendNew(actions, q.Action)
		where.add(q.Resource)
		launch = launch || r.Step == karpenter.StepLaunch
		validation = validation || r.Step == karpenter.StepValidation
		if r.Placeholder != "" {
			placeholders[r.Placeholder] = true
		}
	}
	ph := ""
	if len(placeholders) > 0 {
		ph = " (" + strings.Join(sortedKeys(placeholders), "; ") + ")"
	}
	// When Karpenter makes them, and with which tags: a launch carries the
	// NodePool's name, the validation (1.3+) an empty one.
	in := c.karpenterInput(cl)
	var when, tags string
	switch {
	case launch:
		pool := "NodePool " + shown(cl.nodePool)
		if cl.nodePool == "" {
			pool = "a NodePool (the class's name stands in for its name)"
		}
		when = "launches a node for " + pool
		if validation {
			when += ` and validates the class (with karpenter.sh/nodepool="")`
		}
		tags = tagList(sortedTags(karpenter.LaunchTags(in, cl.nodePoolOrName())))
	default:
		when = `validates the class, before any NodePool uses it`
		tags = tagList(sortedTags(karpenter.LaunchTags(in, "")))
	}
	// What Karpenter shows for it: a denied validation request sets the
	// class's ValidationSucceeded=False with the reason of the first
	// denied call.
	outcome := ""
	if reason := karpenter.ValidationReason(c.cfg.Karpenter.Model, deniedReqs); reason != "" {
		outcome = fmt.Sprintf("; Karpenter %s would set ValidationSucceeded=False (%s) on the class and launch nothing with it", c.cfg.Karpenter.Model, reason)
	}
	ans := dd.first()
	return []Finding{permissionDenial(LaunchDenied, specPath, dd,
		"role %s may not %s on %s%s, which Karpenter %s asks when it %s, with tags %s: %s%s. %s",
		c.controllerARN, strings.Join(actions, ", "), where.String(), ph, c.cfg.Karpenter.Model, when,
		tags, ans.Reason(), outcome,
		fix(ans, "Allow these EC2 actions in the region for requests carrying these tags, as Karpenter's controller policy does"))}
}

func appendNew(list []string, s string) []string {
	if containsString(list, s) {
		return list
	}
	return append(list, s)
}

// resourceGroups are the denied resources by ARN prefix, in the order
// first named: "fleet/*, instance/* in arn:aws:ec2:us-west-2:111122223333".
// An ARN naming no account (an image's) is named whole, as no prefix of
// it reads as an ARN.
type resourceGroups struct {
	prefixes  []string
	resources [][]string
}

func (g *resourceGroups) add(arn string) {
	res, pre := splitEC2(arn)
	if pre == "" || strings.HasSuffix(pre, ":") {
		res, pre = arn, ""
	}
	for i, p := range g.prefixes {
		if p == pre {
			g.resources[i] = appendNew(g.resources[i], res)
			return
		}
	}
	g.prefixes = append(g.prefixes, pre)
	g.resources = append(g.resources, []string{res})
}

func (g resourceGroups) String() string {
	parts := make([]string, len(g.prefixes))
	for i, p := range g.prefixes {
		parts[i] = strings.Join(g.resources[i], ", ")
		if p != "" {
			parts[i] += " in " + p
		}
	}
	return strings.Join(parts, "; and on ")
}

// splitEC2 splits an EC2 ARN into its resource part ("fleet/*") and the
// rest ("arn:aws:ec2:us-west-2:111122223333").
func splitEC2(arn string) (resource, prefix string) {
	a, err := authz.ParseARN(arn)
	if err != nil || a.Service != "ec2" {
		return arn, ""
	}
	return a.Resource, strings.TrimSuffix(arn, ":"+a.Resource)
}

// cacheablePlan reports whether a launch plan is small enough to keep.
func cacheablePlan(key string, p launchPlan) bool {
	n := len(key)
	for _, q := range p.questions {
		n += len(q.Action) + len(q.Resource) + len(q.Alike)
		for k, vs := range q.Context {
			n += len(k)
			for _, v := range vs {
				n += len(v)
			}
		}
		if n > maxCachedPlanBytes {
			return false
		}
	}
	return true
}

// unknownNotChecked are the condition keys of the plan's requests that a
// controller policy tested (an answer says they were missing) but that
// cannot be known before the launch: the key was taken as absent, which
// is no pass, and the report says so. One entry per action, resource type
// and key.
func unknownNotChecked(p launchPlan, as []Answer) []karpenter.NotChecked {
	var out []karpenter.NotChecked
	for i, r := range p.requests {
		if len(r.Unknown) == 0 || i >= len(as) || as[i].Err != nil {
			continue
		}
		for _, missing := range as[i].Decision.MissingContext {
			for _, u := range r.Unknown {
				if !strings.EqualFold(u.Key, missing) && !(strings.HasSuffix(u.Key, "/") && strings.HasPrefix(strings.ToLower(missing), strings.ToLower(u.Key))) {
					continue
				}
				res := resourceType(r.Resource)
				entry := karpenter.NotChecked{Steps: []karpenter.Step{r.Step}, Action: r.Action, Resource: res,
					Reason: "not checked: a controller policy tests " + missing + ", whose value is not known before the launch (" + u.Why + "); it was taken as absent"}
				j := slices.IndexFunc(out, func(n karpenter.NotChecked) bool {
					return n.Action == entry.Action && n.Resource == entry.Resource && n.Reason == entry.Reason
				})
				if j < 0 {
					out = append(out, entry)
				} else if !slices.Contains(out[j].Steps, r.Step) {
					out[j].Steps = append(out[j].Steps, r.Step)
				}
			}
		}
	}
	return out
}

// resourceType is an EC2 ARN's resource type ("instance" of
// "...:instance/*").
func resourceType(arn string) string {
	res, _ := splitEC2(arn)
	t, _, _ := strings.Cut(res, "/")
	return t
}
