package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
)

// Organization is what AWS Organizations adds to a role's evaluation:
// the service control policies that apply to its account. IAM's own
// evaluation (SimulatePrincipalPolicy) counts them; the policies a role
// can read about itself do not show them.
type Organization struct {
	// SCPs apply to the account, each as its name or ARN; empty means
	// AWS's default, FullAWSAccess (allow everything).
	SCPs []NamedPolicy
}

// FullAWSAccess is the SCP AWS Organizations attaches by default.
var FullAWSAccess = func() NamedPolicy {
	p, err := ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`))
	if err != nil {
		panic(err)
	}
	return NamedPolicy{Name: "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess/FullAWSAccess", Policy: p}
}()

// organizationDoc is the optional Organization section of a snapshot:
//
//	"Organization": {"ServiceControlPolicies": [{"PolicyName": "...", "Arn": "...", "Document": {...}}]}
//
// (the documents as `aws organizations describe-policy` prints their
// Content). The section present means the account is in an organization.
type organizationDoc struct {
	ServiceControlPolicies []struct {
		PolicyName string
		Arn        string
		Document   json.RawMessage
	}
}

// buildOrganization parses the Organization section; nil stays nil.
func buildOrganization(doc *organizationDoc) (*Organization, error) {
	if doc == nil {
		return nil, nil
	}
	org := &Organization{}
	for i, p := range doc.ServiceControlPolicies {
		name := p.Arn
		if name == "" {
			name = p.PolicyName
		}
		if name == "" {
			return nil, fmt.Errorf("Organization: ServiceControlPolicies[%d]: neither PolicyName nor Arn", i)
		}
		pol, err := ParsePolicy(p.Document)
		if err != nil {
			return nil, fmt.Errorf("Organization: ServiceControlPolicies[%d] (policy %q): Document: %w", i, name, err)
		}
		org.SCPs = append(org.SCPs, NamedPolicy{Name: name, Policy: pol})
	}
	return org, nil
}

// Organization returns the snapshot's Organization section, nil when the
// account is not in an organization.
func (s *Snapshot) Organization() *Organization { return s.org }

// SCPDecision is what an organization's SCPs say of one request.
type SCPDecision struct {
	Allowed bool
	// Explicit is set when a Deny statement matched.
	Explicit bool
	// DeniedBy names the SCP and statement that denied, where one did.
	DeniedBy Denier
	// Referenced lists the condition keys the SCP statements matching the
	// action and resource test that the request does not carry, whatever
	// the operator (Null included): what IAM's simulator reports in
	// MissingContextValues for them.
	Referenced []string
}

// EvaluateSCPs decides q against an organization's SCPs as AWS does for
// the one level of SCPs a snapshot can hold: the request must be allowed
// by some statement of every SCP and denied by none. No SCP means
// FullAWSAccess. An SCP without any Allow statement is a deny list,
// which AWS applies beside FullAWSAccess (an account whose SCPs allowed
// nothing could do nothing at all): it only denies.
func EvaluateSCPs(org *Organization, q Question) SCPDecision {
	scps := org.SCPs
	if len(scps) == 0 {
		scps = []NamedPolicy{FullAWSAccess}
	}
	if q.Resource == "" {
		q.Resource = "*"
	}
	d := SCPDecision{Allowed: true}
	for _, np := range scps {
		if np.Policy == nil {
			continue
		}
		allows := false
		for i := range np.Policy.Statements {
			s := &np.Policy.Statements[i]
			if !s.matchesAction(q.Action) || !s.matchesResource(q.Resource) {
				continue
			}
			for j := range s.conditions {
				k := s.conditions[j].key
				if len(lookupContext(q.Context, k)) == 0 && !containsFold(d.Referenced, k) {
					d.Referenced = append(d.Referenced, k)
				}
			}
			if !s.conditionsHold(q, nil) {
				continue
			}
			if s.Effect == Deny {
				if !d.Explicit {
					d.Explicit = true
					d.DeniedBy = Denier{Source: DeniedBySCP, Policy: np.Name, Statement: s.Label()}
				}
				continue
			}
			allows = true
		}
		if !allows && !denyList(np.Policy) && d.DeniedBy.Source == "" {
			d.DeniedBy = Denier{Source: DeniedBySCP, Policy: np.Name}
		}
		d.Allowed = d.Allowed && (allows || denyList(np.Policy))
	}
	if d.Explicit {
		d.Allowed = false
	}
	return d
}

// Shapes reports whether the organization's SCPs say more of action than
// allowing it everywhere: an SCP with a Deny statement that can match it,
// or one whose only Allows of it are narrowed by a resource or a
// condition, or that allows it nowhere. The local IAM endpoint's SCP
// fault knob fails only the calls such an SCP decides.
func (o *Organization) Shapes(action string) bool {
	scps := o.SCPs
	if len(scps) == 0 {
		return false // FullAWSAccess
	}
	for _, np := range scps {
		if np.Policy == nil {
			continue
		}
		everywhere := false
		for i := range np.Policy.Statements {
			s := &np.Policy.Statements[i]
			if !s.matchesAction(action) {
				continue
			}
			if s.Effect == Deny {
				return true
			}
			if len(s.conditions) == 0 && s.matchesResource("*") && len(s.NotResource) == 0 {
				everywhere = true
			}
		}
		if !everywhere && !denyList(np.Policy) {
			return true
		}
	}
	return false
}

// scpFile is what `aws organizations describe-policy` prints.
type scpFile struct {
	Policy *struct {
		PolicySummary struct {
			Id, Arn, Name, Type string
		}
		Content json.RawMessage
	}
}

// LoadSCPFile reads one SCP: the JSON `aws organizations describe-policy
// --policy-id p-...` prints ({"Policy": {"PolicySummary": {..., "Name",
// "Arn"}, "Content": "<the document as a JSON string>"}}), or a bare
// policy document. The SCP is named by its ARN, else its name, else the
// file. Errors name the file and what is wrong.
func LoadSCPFile(path string) (NamedPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return NamedPolicy{}, fmt.Errorf("service control policy: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return NamedPolicy{}, fmt.Errorf("%s: empty file; want the JSON printed by `aws organizations describe-policy`, or a policy document", path)
	}
	var f scpFile
	if err := json.Unmarshal(trimmed, &f); err != nil {
		return NamedPolicy{}, jsonError(path, trimmed, err)
	}
	if f.Policy == nil {
		// A bare policy document.
		p, err := ParsePolicy(trimmed)
		if err != nil {
			return NamedPolicy{}, fmt.Errorf("%s: not an SCP (neither the output of `aws organizations describe-policy` nor a policy document): %w", path, err)
		}
		return NamedPolicy{Name: path, Policy: p}, nil
	}
	sum := f.Policy.PolicySummary
	name := sum.Arn
	if name == "" {
		name = sum.Name
	}
	if name == "" {
		name = path
	}
	if sum.Type != "" && sum.Type != "SERVICE_CONTROL_POLICY" {
		return NamedPolicy{}, fmt.Errorf("%s: Policy.PolicySummary.Type is %s; want SERVICE_CONTROL_POLICY", path, sum.Type)
	}
	if len(f.Policy.Content) == 0 || string(f.Policy.Content) == "null" {
		return NamedPolicy{}, fmt.Errorf("%s: Policy.Content is missing; want the SCP's document", path)
	}
	p, err := ParsePolicy(f.Policy.Content)
	if err != nil {
		return NamedPolicy{}, fmt.Errorf("%s: Policy.Content (SCP %q): %w", path, name, err)
	}
	return NamedPolicy{Name: name, Policy: p}, nil
}

// OrganizationView is a View that applies an organization's SCPs, as IAM
// does, to what an inner View without them (a snapshot) answers: a request
// the inner view allows is denied when an SCP does not allow it or denies
// it. Its denials read as the live path's (DeniedBySCP, the request tags
// the SCP tests that the request lacks), naming the SCP and statement,
// which only the offline evaluator knows.
type OrganizationView struct {
	View
	org *Organization
}

var (
	_ View    = (*OrganizationView)(nil)
	_ Batcher = (*OrganizationView)(nil)
)

// WithOrganization returns inner with org's SCPs applied; a nil org
// (the account in no organization) returns inner itself.
func WithOrganization(inner View, org *Organization) View {
	if org == nil {
		return inner
	}
	return &OrganizationView{View: inner, org: org}
}

// Organization returns the organization whose SCPs v applies.
func (v *OrganizationView) Organization() *Organization { return v.org }

// Decide implements View.
func (v *OrganizationView) Decide(ctx context.Context, q Question) (Decision, error) {
	d, err := v.View.Decide(ctx, q)
	if err != nil {
		return d, err
	}
	return v.apply(d, q), nil
}

// DecideAll implements Batcher.
func (v *OrganizationView) DecideAll(ctx context.Context, qs []Question) ([]Decision, []error) {
	ds, errs := DecideAll(ctx, v.View, qs)
	for i := range ds {
		if errs[i] == nil {
			ds[i] = v.apply(ds[i], qs[i])
		}
	}
	return ds, errs
}

// apply turns d, the inner view's answer to q, into IAM's with the SCPs.
// A request the identity policies deny stays as they deny it (the live
// path asks the SCPs only of what they allow).
func (v *OrganizationView) apply(d Decision, q Question) Decision {
	if !d.Allowed {
		return d
	}
	sd := EvaluateSCPs(v.org, q)
	if sd.Allowed {
		return d
	}
	out := Decision{Explicit: sd.Explicit, DeniedBy: sd.DeniedBy, AllowedButForDeny: sd.Explicit, Served: d.Served}
	out.MissingContext = append([]string(nil), d.MissingContext...)
	for _, k := range sd.Referenced {
		if !containsFold(out.MissingContext, k) {
			out.MissingContext = append(out.MissingContext, k)
		}
	}
	out.MissingRequestTags = missingRequestTags(out.MissingContext, q)
	return knownAbsent(out, q)
}

// denyList reports whether p has no Allow statement.
func denyList(p *Policy) bool {
	for i := range p.Statements {
		if p.Statements[i].Effect == Allow {
			return false
		}
	}
	return true
}
