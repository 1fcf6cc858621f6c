package authz

import (
	"encoding/json"
	"fmt"
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
// FullAWSAccess.
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
		if !allows && d.DeniedBy.Source == "" {
			d.DeniedBy = Denier{Source: DeniedBySCP, Policy: np.Name}
		}
		d.Allowed = d.Allowed && allows
	}
	if d.Explicit {
		d.Allowed = false
	}
	return d
}
