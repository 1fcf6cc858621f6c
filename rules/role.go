package rules

import (
	"errors"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// roleRule: the role spec.role names exists, on the path spec.role gives,
// and trusts EC2. It gives the node role.
var roleRule = &Rule{
	Name:      "role",
	Demotable: true,
	Codes:     []Code{RoleNotFound, RolePathMismatch, RoleTrustMissingEC2},
	Fields:    []string{"spec.role", "spec.instanceProfile"},
	Gives:     []fact{factNodeRole},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if o.iam && o.roleOK {
			q.query("role", roleQuery(o.ref.Name))
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		ans, ok := a.one("role")
		if !ok || !c.judgeRole(v, &o.n, o.ref, ans) {
			return
		}
		if o.ref.Path != "" && ans.Role.Path != o.ref.Path {
			o.realRoleARN = ans.Role.ARN
		}
		o.nodeRole, o.nodeRoleFound, o.path = ans.Role, true, rolePath
	},
}

// nodeRoleARN is the ARN spec.role implies before IAM is asked: its path
// ("/" when it gave none) in the account it named or the cluster's.
func (c *Checker) nodeRoleARN(ref RoleRef) string {
	path := ref.Path
	if path == "" {
		path = "/"
	}
	account := ref.Account
	if account == "" {
		account = c.Account()
	}
	return authz.RoleARN{Partition: c.partition, Account: account, Path: path, Name: ref.Name}.String()
}

// judgeRole judges IAM's answer about the role spec.role names: missing,
// on another path than spec.role gave, not trusting EC2. It reports whether
// the role was found, so that iam:PassRole on its ARN can be judged.
func (c *Checker) judgeRole(v *Verdict, n *notes, ref RoleRef, a Answer) bool {
	switch {
	case errors.Is(a.Err, authz.ErrNotFound):
		v.add(deny(RoleNotFound, rolePath,
			"no IAM role named %s in account %s. Create the role, or set spec.role to an existing role's name",
			ref.Name, c.accountOr(ref.Account)))
		return false
	case a.Err != nil:
		// Without the role's real ARN, a PassRole answer for the guessed
		// one could be about another ARN: report only the unavailability.
		n.unavailable(rolePath, "GetRole", a.Err)
		return false
	}
	role := a.Role
	n.served(role.Served)
	if ref.Path != "" && role.Path != ref.Path {
		v.add(deny(RolePathMismatch, rolePath,
			"spec.role gives the path %s, but role %s has the path %s (ARN %s). Set spec.role: %s",
			ref.Path, ref.Name, role.Path, role.ARN, ref.Name))
	}
	c.judgeTrust(v, rolePath, role)
	return true
}

// judgeTrust denies a role whose trust policy does not let EC2 assume it.
func (c *Checker) judgeTrust(v *Verdict, path *field.Path, role authz.Role) {
	svc := authz.EC2ServicePrincipal(c.partition)
	if authz.TrustAllows(role.Trust, svc, "sts:AssumeRole") {
		return
	}
	v.add(deny(RoleTrustMissingEC2, path,
		"role %s does not trust %s to call sts:AssumeRole, so nodes could not get credentials. Add a trust policy statement: Effect Allow, Principal {\"Service\": \"%s\"}, Action sts:AssumeRole",
		role.ARN, svc, svc))
}
