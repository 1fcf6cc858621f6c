package authz

import (
	"sort"
	"strings"
)

// NamedPolicy is a policy with the name messages should use for it.
type NamedPolicy struct {
	// Name is the inline policy's name or the managed policy's ARN.
	Name   string
	Policy *Policy
}

// PolicySet is what IAM evaluates for a request made by a role within its
// own account: the role's identity policies (inline and attached managed,
// default version) and its permissions boundary, if any.
type PolicySet struct {
	Identity []NamedPolicy
	Boundary *NamedPolicy
}

// maxNearMisses bounds Decision.NearMisses so that messages stay short.
const maxNearMisses = 5

// Evaluate decides q against set the way IAM's documented evaluation logic
// does for identity-based policies within one account:
//
//  1. An explicit Deny in an identity policy or in the permissions boundary
//     denies the request.
//  2. Otherwise the request is allowed only if some identity statement
//     allows it and, when there is a boundary, the boundary allows it too
//     (the effective permissions are the intersection).
//  3. Otherwise it is implicitly denied.
//
// Actions match case-insensitively, resources case-sensitively; '*' and '?'
// are wildcards and '*' spans '/'. Policy variables such as
// ${aws:username} are not substituted: they match only themselves
// literally. Principal elements of identity policies are ignored, and a
// statement without Resource or NotResource matches no resource (IAM
// rejects such identity policies). A statement using a condition operator
// the evaluator does not know never matches, neither to allow nor to deny,
// and the operator is reported in Decision.Unsupported.
//
// SCPs, RCPs, resource-based policies and session policies are outside a
// snapshot and are not considered.
func Evaluate(set PolicySet, q Question) Decision {
	var d Decision
	identityAllows := false
	for _, np := range set.Identity {
		allows, deny := evalPolicy(np.Policy, q, &d)
		if deny != nil {
			d.Explicit = true
			d.DeniedBy = Denier{Source: DeniedByIdentity, Policy: np.Name, Statement: deny.Label()}
			d.AllowedButForDeny = allowsIgnoringDenies(set, q)
			return finish(d)
		}
		identityAllows = identityAllows || allows
	}
	boundaryAllows := true
	if set.Boundary != nil {
		allows, deny := evalPolicy(set.Boundary.Policy, q, &d)
		if deny != nil {
			d.Explicit = true
			d.DeniedBy = Denier{Source: DeniedByBoundary, Policy: set.Boundary.Name, Statement: deny.Label()}
			d.AllowedButForDeny = allowsIgnoringDenies(set, q)
			return finish(d)
		}
		boundaryAllows = allows
	}
	switch {
	case identityAllows && boundaryAllows:
		d.Allowed = true
	case identityAllows:
		d.DeniedBy = Denier{Source: DeniedByBoundary, Policy: set.Boundary.Name}
	default:
		d.NearMisses, d.FailedConditions = nearMisses(set.Identity, q)
		if !boundaryAllows {
			d.AlsoDeniedByBoundary = set.Boundary.Name
		}
	}
	return finish(d)
}

// allowsIgnoringDenies reports whether set would allow q if it had no
// Deny statements: whether narrowing a Deny is enough to allow it.
func allowsIgnoringDenies(set PolicySet, q Question) bool {
	allows := func(p *Policy) bool {
		if p == nil {
			return false
		}
		for i := range p.Statements {
			s := &p.Statements[i]
			if s.Effect == Allow && s.matchesAction(q.Action) && s.matchesResource(q.Resource) && s.conditionsHold(q, nil) {
				return true
			}
		}
		return false
	}
	identity := false
	for _, np := range set.Identity {
		identity = identity || allows(np.Policy)
	}
	return identity && (set.Boundary == nil || allows(set.Boundary.Policy))
}

// evalPolicy reports whether some statement of p allows q, and returns the
// first matching Deny statement, if any.
func evalPolicy(p *Policy, q Question, d *Decision) (allows bool, deny *Statement) {
	if p == nil {
		return false, nil
	}
	for i := range p.Statements {
		s := &p.Statements[i]
		if !s.matchesAction(q.Action) || !s.matchesResource(q.Resource) {
			continue
		}
		if !s.conditionsHold(q, d) {
			continue
		}
		if s.Effect == Deny {
			return allows, s
		}
		allows = true
	}
	return allows, nil
}

// matchesAction applies Action or NotAction.
func (s *Statement) matchesAction(action string) bool {
	return matchAny(s.actions, action) != s.notAction
}

// matchesResource applies Resource or NotResource; a statement with
// neither matches nothing.
func (s *Statement) matchesResource(resource string) bool {
	if s.noResource {
		return false
	}
	return matchAny(s.resources, resource) != s.notRes
}

// conditionsHold evaluates every clause (so that all missing keys and
// unsupported operators are reported, not just the first) and ANDs them.
// d may be nil when nothing should be recorded.
func (s *Statement) conditionsHold(q Question, d *Decision) bool {
	holds := true
	for i := range s.conditions {
		c := &s.conditions[i]
		if c.unsupported {
			holds = false
			if d != nil {
				d.Unsupported = appendUnique(d.Unsupported, c.operator)
			}
			continue
		}
		ok, missing, needsSet := c.eval(q.Context, q.Complete)
		if missing && d != nil {
			d.MissingContext = appendUnique(d.MissingContext, c.key)
		}
		if needsSet && d != nil {
			d.NeedsSetOperator = appendUnique(d.NeedsSetOperator, c.operator+" "+c.key)
		}
		holds = holds && ok
	}
	return holds
}

// nearMisses lists, for an implicit deny, what the Allow statements whose
// action matched but whose resource or conditions did not do cover: their
// resource patterns, and, of those whose resource matched, each condition
// that failed as "operator key values", so that a message names the
// condition rather than a resource that did match.
func nearMisses(identity []NamedPolicy, q Question) (resources, conditions []string) {
	for _, np := range identity {
		if np.Policy == nil {
			continue
		}
		for i := range np.Policy.Statements {
			s := &np.Policy.Statements[i]
			if s.Effect != Allow || s.notRes || s.noResource || !s.matchesAction(q.Action) {
				continue
			}
			if s.matchesResource(q.Resource) {
				if s.conditionsHold(q, nil) {
					continue
				}
				for j := range s.conditions {
					c := &s.conditions[j]
					if c.unsupported {
						continue
					}
					if ok, _, _ := c.eval(q.Context, q.Complete); ok {
						continue
					}
					desc := c.operator + " " + c.key + " " + strings.Join(c.values, "|")
					if !contains(conditions, desc) && len(conditions) < maxNearMisses {
						conditions = append(conditions, desc)
					}
				}
			}
			for _, r := range s.Resource {
				short := shortenPattern(r)
				if !contains(resources, short) && len(resources) < maxNearMisses {
					resources = append(resources, short)
				}
			}
		}
	}
	return resources, conditions
}

// shortenPattern strips "arn:PARTITION:iam::ACCOUNT:" from IAM resource
// patterns so that a message reads role/KarpenterNodeRole-*; other
// patterns are kept whole.
func shortenPattern(p string) string {
	a, err := ParseARN(p)
	if err != nil || a.Service != "iam" || a.Resource == "" {
		return p
	}
	return a.Resource
}

// finish sorts the reported lists so that decisions compare stably.
func finish(d Decision) Decision {
	sort.Strings(d.Unsupported)
	sort.Strings(d.MissingContext)
	sort.Strings(d.NeedsSetOperator)
	return d
}

// appendUnique appends s unless an equal string (ignoring case: condition
// keys are case-insensitive) is already there.
func appendUnique(list []string, s string) []string {
	for _, have := range list {
		if strings.EqualFold(have, s) {
			return list
		}
	}
	return append(list, s)
}

func contains(list []string, s string) bool {
	for _, have := range list {
		if have == s {
			return true
		}
	}
	return false
}

// TrustAllows reports whether a role's trust policy lets the service
// principal (for example ec2.amazonaws.com) perform action (sts:AssumeRole).
//
// A statement applies when its Principal names the service (or is "*") or
// its NotPrincipal does not name it, and its Action matches. Resource, when
// present, is not checked. Conditions in trust statements are NOT
// evaluated: we cannot know the context the service sends (aws:SourceArn,
// aws:SourceAccount...). So an Allow with conditions counts as allowing and
// a Deny with conditions does not count as denying; both errors lean
// towards "trusted", so that a guess never blocks a valid configuration.
func TrustAllows(trust *Policy, servicePrincipal string, action string) bool {
	if trust == nil {
		return false
	}
	allowed := false
	for i := range trust.Statements {
		s := &trust.Statements[i]
		if !s.matchesAction(action) || !s.namesService(servicePrincipal) {
			continue
		}
		if s.Effect == Deny {
			if len(s.conditions) == 0 {
				return false
			}
			continue
		}
		allowed = true
	}
	return allowed
}

// namesService applies Principal or NotPrincipal to a service principal.
func (s *Statement) namesService(service string) bool {
	switch {
	case s.Principal != nil:
		return s.Principal.hasService(service)
	case s.NotPrincipal != nil:
		return !s.NotPrincipal.hasService(service)
	}
	return false
}

func (p *Principals) hasService(service string) bool {
	if p.Any {
		return true
	}
	for _, s := range p.Service {
		if s == "*" || strings.EqualFold(s, service) {
			return true
		}
	}
	return false
}
