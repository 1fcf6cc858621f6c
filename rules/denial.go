package rules

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// What a permission denial's DeniedBy says, when the decision says it.
const (
	// DeniedByExplicitDeny: a Deny statement matched (an identity policy,
	// the permissions boundary or a service control policy).
	DeniedByExplicitDeny = "explicit deny"
	// DeniedByBoundary: the permissions boundary does not allow it.
	DeniedByBoundary = "permissions boundary"
	// DeniedBySCP: an Organizations service control policy does not allow it.
	DeniedBySCP = "service control policy"
)

// denials are the usable denied questions of one rule, with IAM's
// decision for each, index for index.
type denials struct {
	questions []authz.Question
	decisions []authz.Decision
}

// first is the first denial's decision, which the message explains.
func (d denials) first() authz.Decision { return d.decisions[0] }

// deniedOf returns the usable denied questions of qs, answered by as; it
// records what every answer says about IAM.
func deniedOf(n *notes, path *field.Path, qs []authz.Question, as []Answer) denials {
	var d denials
	for i, a := range as {
		if !n.decision(path, a) || a.Decision.Allowed {
			continue
		}
		d.questions = append(d.questions, qs[i])
		d.decisions = append(d.decisions, a.Decision)
	}
	return d
}

// permissionDenial is a denial of the controller's permissions, carrying
// the denied questions, IAM's decisions and what denied the first as data.
func permissionDenial(code Code, path *field.Path, d denials, format string, args ...any) Finding {
	f := deny(code, path, format, args...)
	f.Requests, f.Decisions = d.questions, d.decisions
	f.DeniedBy = deniedBy(d.first())
	return f
}

// deniedBy names what denied a decision: "" when no statement allows it.
func deniedBy(d authz.Decision) string {
	switch {
	case d.Explicit:
		return DeniedByExplicitDeny
	case d.DeniedBy.Source == authz.DeniedByBoundary:
		return DeniedByBoundary
	case d.DeniedBy.Source == authz.DeniedBySCP:
		return DeniedBySCP
	}
	return ""
}

// fix says how to repair a denial, by what denied it.
func fix(d authz.Decision, allow string) string {
	switch {
	case d.DeniedBy.Source == authz.DeniedBySCP:
		return fixSCP(d)
	case d.Explicit:
		return "Narrow that Deny statement, or use a role or resource it does not cover"
	case d.DeniedBy.Source == authz.DeniedByBoundary:
		return allow + ", in the permissions boundary as well as in the role's policies"
	}
	return allow
}

// fixSCP says how to repair a denial by a service control policy. The
// SCP is not the account's to change: the fix goes to whoever owns it,
// the AWS Organizations administrator, unless a tag the class can set is
// what the SCP requires.
func fixSCP(d authz.Decision) string {
	owner := "ask your AWS Organizations administrator, who owns the service control policies, to "
	if d.Explicit {
		owner += "exempt the Karpenter controller role from that Deny"
	} else {
		owner += "allow it in them"
	}
	var settable []string
	for _, t := range d.MissingRequestTags {
		if userTag(t) {
			settable = append(settable, t)
		}
	}
	if len(settable) == 0 {
		return strings.ToUpper(owner[:1]) + owner[1:]
	}
	what, it := "the tag "+shown(settable[0]), "it"
	if len(settable) > 1 {
		it = "them"
		quoted := make([]string, len(settable))
		for i, t := range settable {
			quoted[i] = shown(t)
		}
		what = "the tags " + strings.Join(quoted, ", ")
	}
	return "The service control policy tests " + what + ", which the request does not carry: add " + it + " to spec.tags (Karpenter puts spec.tags on what it creates), or " + owner
}

// userTag reports whether a tag key is one spec.tags may set: Karpenter
// refuses keys it sets itself (its own domains, the cluster's tag, EKS's),
// and aws: is AWS's.
func userTag(key string) bool {
	k := strings.ToLower(key)
	for _, p := range []string{"aws:", "karpenter.sh/", "karpenter.k8s.aws/", "kubernetes.io/cluster/", "eks:"} {
		if strings.HasPrefix(k, p) {
			return false
		}
	}
	return true
}

// tag is a tag Karpenter puts on what it creates.
type tag struct{ key, value string }

// tagContext is the request context of tags: aws:RequestTag/ and
// aws:TagKeys when they are in the request, aws:ResourceTag/ when they are
// on the resource.
func tagContext(tags []tag, request, resource bool) map[string][]string {
	ctx := make(map[string][]string, 2*len(tags)+1)
	keys := make([]string, 0, len(tags))
	for _, t := range tags {
		if request {
			ctx["aws:RequestTag/"+t.key] = []string{t.value}
		}
		if resource {
			ctx["aws:ResourceTag/"+t.key] = []string{t.value}
		}
		keys = append(keys, t.key)
	}
	if request {
		ctx["aws:TagKeys"] = keys
	}
	return ctx
}

func tagList(tags []tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		v := shown(t.value)
		if t.value == "" {
			v = `""` // the validation's karpenter.sh/nodepool: empty, not missing
		}
		parts[i] = shown(t.key) + "=" + v
	}
	return strings.Join(parts, ", ")
}

func actionsOf(qs []authz.Question) string {
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Action
	}
	return strings.Join(names, ", ")
}

func resourcesOf(qs []authz.Question) string {
	names := make([]string, len(qs))
	for i, q := range qs {
		names[i] = q.Resource
	}
	return strings.Join(names, ", ")
}
