package authz

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Denial is a permission question IAM denied, with its answer.
type Denial struct {
	Question Question
	Decision Decision
}

// Fix says which policy documents to change so that denied questions are
// allowed and, where an Allow can do it, the statements to add.
type Fix struct {
	// Summary says what to do, in one line.
	Summary string `json:"summary"`
	// Changes are the documents to change, the explicit Denies first.
	Changes []Change `json:"changes"`
}

// Change is one policy document to change.
type Change struct {
	// Document is the policy document to change.
	Document DocumentRef `json:"document"`
	// Policy holds the Allow statements to add to Document, as a policy
	// document ready to paste; nil when no Allow can help (an explicit
	// Deny wins over every Allow: the Deny named by Document must change).
	Policy *PolicyDocument `json:"policy,omitempty"`
	// Summary says what to do with Document, in one line.
	Summary string `json:"summary"`
}

// DocumentRef names a policy document.
type DocumentRef struct {
	// Type is "identity policy", "permissions boundary" or "service
	// control policy" (DenySource's values).
	Type string `json:"type"`
	// Role is the role whose identity policy or boundary it is: the
	// principal of the questions.
	Role string `json:"role,omitempty"`
	// Policy is the inline policy's name or the managed policy's ARN; ""
	// when any identity policy of Role will do (or a new inline one), or
	// when the source is not known.
	Policy string `json:"policy,omitempty"`
	// Statement is the Sid (or "#<index>") of the Deny statement to narrow
	// or remove, when an explicit Deny is the cause.
	Statement string `json:"statement,omitempty"`
}

// PolicyDocument is an IAM policy document.
type PolicyDocument struct {
	Version   string               `json:"Version"`
	Statement []SuggestedStatement `json:"Statement"`
}

// SuggestedStatement is an IAM policy statement, spelled as IAM spells it.
type SuggestedStatement struct {
	Sid       string                        `json:"Sid"`
	Effect    Effect                        `json:"Effect"`
	Action    Strings                       `json:"Action"`
	Resource  Strings                       `json:"Resource"`
	Condition map[string]map[string]Strings `json:"Condition,omitempty"`
}

// Strings is a policy element holding one string or several: written as
// a string when it holds one, as IAM's own documents are.
type Strings []string

// MarshalJSON writes one value as a string, several as a list.
func (s Strings) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]string(s))
}

// UnmarshalJSON reads a string or a list of strings.
func (s *Strings) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = Strings{one}
		return nil
	}
	return json.Unmarshal(data, (*[]string)(s))
}

// objectTagKeys are the tags whose value names one Karpenter object (a
// NodePool, an EC2NodeClass). One controller policy serves every class and
// pool of the cluster, so a suggested statement accepts any value for them
// (StringLike "*", as Karpenter's reference policy does) while still
// requiring the tag: pinning the value the check happened to ask with
// would allow this class only.
var objectTagKeys = []string{"karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"}

// SuggestFix returns what would turn every denial into an allow: a pure
// function of the questions and of what denied them.
//
// The cause decides the document. An explicit Deny (identity policy,
// permissions boundary or SCP) wins over any Allow, so its change names
// that Deny and offers no statement; an Allow in an identity policy
// follows unless the decision says the policies allow the request once
// the Deny is narrowed (Decision.AllowedButForDeny). Otherwise the Allow statements go
// where the allow is missing: the permissions boundary when the identity
// policies allow but the boundary does not, an SCP when Organizations
// denies, an identity policy of the principal when no identity statement
// allows (and the boundary too when it does not allow either).
//
// Each statement allows exactly the actions asked, on the exact resource
// ARNs asked (or the patterns the questions carry, such as
// instance-profile/*), under a condition on every context key the request
// carries with the value it carries: StringEquals, or StringLike "*" for
// the tags naming one Karpenter object (objectTagKeys). aws:TagKeys is not
// pinned, since Karpenter adds tags (user tags, Name) beyond those the
// check models and ForAllValues on the modelled set would deny them.
// Questions with the same resource and conditions share one statement.
func SuggestFix(denials []Denial) Fix {
	type target struct {
		ref  DocumentRef
		rank int
		qs   []Question
		// tags are the request tags an SCP tests that the requests lack.
		tags []string
	}
	var targets []*target
	var tags []string
	add := func(ref DocumentRef, rank int, q Question) {
		for _, t := range targets {
			if t.ref == ref {
				t.qs = append(t.qs, q)
				t.tags = appendFold(t.tags, tags...)
				return
			}
		}
		targets = append(targets, &target{ref: ref, rank: rank, qs: []Question{q}, tags: appendFold(nil, tags...)})
	}
	for _, d := range denials {
		q, dec := d.Question, d.Decision
		if dec.Allowed {
			continue
		}
		tags = nil
		if dec.DeniedBy.Source == DeniedBySCP {
			tags = dec.MissingRequestTags
		}
		switch src := dec.DeniedBy.Source; {
		case dec.Explicit:
			ref := DocumentRef{Type: string(src), Role: q.Principal, Policy: dec.DeniedBy.Policy, Statement: dec.DeniedBy.Statement}
			if ref.Type == "" {
				ref.Type = string(DeniedByIdentity)
			}
			if src == DeniedBySCP || src == DeniedByRCP {
				ref.Role = ""
			}
			add(ref, 0, q)
			if !dec.AllowedButForDeny {
				// Unless the policies are known to allow it once the
				// Deny is narrowed, an Allow is needed too.
				add(DocumentRef{Type: string(DeniedByIdentity), Role: q.Principal}, 3, q)
			}
		case src == DeniedBySCP || src == DeniedByRCP:
			add(DocumentRef{Type: string(src)}, 1, q)
		case src == DeniedByBoundary:
			add(DocumentRef{Type: string(DeniedByBoundary), Role: q.Principal, Policy: dec.DeniedBy.Policy}, 2, q)
		default:
			add(DocumentRef{Type: string(DeniedByIdentity), Role: q.Principal}, 3, q)
			if dec.AlsoDeniedByBoundary != "" {
				add(DocumentRef{Type: string(DeniedByBoundary), Role: q.Principal, Policy: dec.AlsoDeniedByBoundary}, 2, q)
			}
		}
	}
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].rank < targets[j].rank })
	fix := Fix{Changes: make([]Change, 0, len(targets))}
	summaries := make([]string, 0, len(targets))
	for _, t := range targets {
		c := Change{Document: t.ref}
		actions := actionList(t.qs)
		switch {
		case t.rank == 0:
			c.Summary = fmt.Sprintf("an explicit Deny in %s denies %s, and no Allow can override it: narrow or remove that Deny statement", describe(t.ref), actions)
			if t.ref.Type == string(DeniedBySCP) || t.ref.Type == string(DeniedByRCP) {
				c.Summary += " (ask your AWS Organizations administrator)"
			}
			c.Summary += tagHint(t.tags)
		default:
			stmts := Statements(t.qs)
			c.Policy = &PolicyDocument{Version: "2012-10-17", Statement: stmts}
			c.Summary = fmt.Sprintf("add %d statement(s) allowing %s to %s", len(stmts), actions, describe(t.ref))
			switch t.rank {
			case 1:
				c.Summary += " (ask your AWS Organizations administrator)" + tagHint(t.tags)
			case 2:
				c.Summary += ": a permissions boundary caps what the identity policies allow"
			}
		}
		fix.Changes = append(fix.Changes, c)
		summaries = append(summaries, c.Summary)
	}
	fix.Summary = strings.Join(summaries, "; and ")
	return fix
}

func actionList(qs []Question) string {
	var names []string
	for _, q := range qs {
		if !containsFold(names, q.Action) {
			names = append(names, q.Action)
		}
	}
	return strings.Join(names, ", ")
}

func describe(ref DocumentRef) string {
	var b strings.Builder
	switch ref.Type {
	case string(DeniedByIdentity):
		if ref.Policy != "" {
			fmt.Fprintf(&b, "identity policy %q of role %s", ref.Policy, ref.Role)
		} else {
			fmt.Fprintf(&b, "an identity policy of role %s", ref.Role)
		}
	case string(DeniedByBoundary):
		b.WriteString("the permissions boundary")
		if ref.Policy != "" {
			fmt.Fprintf(&b, " %s", ref.Policy)
		}
		fmt.Fprintf(&b, " of role %s", ref.Role)
	default:
		b.WriteString("a " + ref.Type)
		if ref.Policy != "" {
			fmt.Fprintf(&b, " %q", ref.Policy)
		}
	}
	if ref.Statement != "" {
		fmt.Fprintf(&b, " (statement %q)", ref.Statement)
	}
	return b.String()
}

// Statements returns the minimal Allow statements that allow every
// question: one per resource and condition set, listing its actions (see
// SuggestFix for the conditions). Principals are not part of an identity
// statement and are ignored.
func Statements(qs []Question) []SuggestedStatement {
	type group struct {
		resource string
		cond     map[string]map[string]Strings
		actions  Strings
	}
	var groups []*group
	index := map[string]*group{}
	for _, q := range qs {
		cond := conditionFor(q.Context)
		ck, _ := json.Marshal(cond) // maps marshal with sorted keys
		key := q.Resource + "\x00" + string(ck)
		g, ok := index[key]
		if !ok {
			g = &group{resource: q.Resource, cond: cond}
			index[key] = g
			groups = append(groups, g)
		}
		if !containsFold(g.actions, q.Action) {
			g.actions = append(g.actions, q.Action)
		}
	}
	out := make([]SuggestedStatement, len(groups))
	sids := map[string]int{}
	for i, g := range groups {
		sid := "Allow"
		for _, a := range g.actions {
			sid += sidPart(a)
		}
		sids[sid]++
		if n := sids[sid]; n > 1 {
			sid += fmt.Sprint(n)
		}
		out[i] = SuggestedStatement{Sid: sid, Effect: Allow, Action: g.actions, Resource: Strings{g.resource}}
		if len(g.cond) > 0 {
			out[i].Condition = g.cond
		}
	}
	return out
}

// conditionFor turns a request context into the condition block that
// holds for it (and for the same request about any other Karpenter
// object of the cluster).
func conditionFor(ctx map[string][]string) map[string]map[string]Strings {
	cond := map[string]map[string]Strings{}
	add := func(op, key string, values []string) {
		if cond[op] == nil {
			cond[op] = map[string]Strings{}
		}
		cond[op][key] = values
	}
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := ctx[k]
		switch {
		case strings.EqualFold(k, "aws:TagKeys") || len(vs) == 0 || describesResource(k):
			continue
		case namesObject(k):
			add("StringLike", k, []string{"*"})
		case len(vs) == 1:
			add("StringEquals", k, []string{vs[0]})
		default:
			add("ForAllValues:StringEquals", k, append([]string(nil), vs...))
		}
	}
	return cond
}

// describesResource reports whether a context key describes the resource
// itself (ec2:VolumeSize, ec2:ImageID, ec2:ResourceTag/...; not ec2:Region
// or ec2:CreateAction): a statement for Karpenter's requests does not pin
// those.
func describesResource(key string) bool {
	lower := strings.ToLower(key)
	return strings.HasPrefix(lower, "ec2:") && lower != "ec2:region" && lower != "ec2:createaction"
}

// namesObject reports whether a context key is a request or resource tag
// whose value names one Karpenter object.
func namesObject(key string) bool {
	lower := strings.ToLower(key)
	for _, prefix := range []string{"aws:requesttag/", "aws:resourcetag/"} {
		if tag, ok := strings.CutPrefix(lower, prefix); ok {
			for _, t := range objectTagKeys {
				if tag == t {
					return true
				}
			}
		}
	}
	return false
}

// sidPart is an action's name without its service, keeping only what a
// Sid may hold ([A-Za-z0-9]).
func sidPart(action string) string {
	if _, name, ok := strings.Cut(action, ":"); ok {
		action = name
	}
	return strings.Map(func(r rune) rune {
		if ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return -1
	}, action)
}

func containsFold(list []string, s string) bool {
	for _, have := range list {
		if strings.EqualFold(have, s) {
			return true
		}
	}
	return false
}

// appendFold appends each of add not already in list (case-insensitively).
func appendFold(list []string, add ...string) []string {
	for _, s := range add {
		if !containsFold(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// tagHint names the request tags an SCP tests that the requests lack,
// "" when none: carrying them may be all the fix needs.
func tagHint(tags []string) string {
	if len(tags) == 0 {
		return ""
	}
	return "; or make the requests carry the tag(s) it tests: " + strings.Join(tags, ", ")
}
