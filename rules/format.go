package rules

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// IAM's name rules: [\w+=,.@-], 1 to 64 characters for roles and 1 to 128
// for instance profiles.
const (
	maxRoleNameLen            = 64
	maxInstanceProfileNameLen = 128
	maxIAMPathLen             = 512
)

// RoleRef is a node role as spec.role names it, after the format checks.
type RoleRef struct {
	// Name is the role name to look up.
	Name string
	// Path is the IAM path spec.role gave ("/team/"), or "" when it gave
	// none (the role's real path is then unknown until IAM is asked).
	Path string
	// Account is the account an ARN named, "" for a plain name.
	Account string
	// Partition is the partition an ARN named, "" for a plain name.
	Partition string
}

// validIAMName reports whether s matches [\w+=,.@-]{1,max}.
func validIAMName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_+=,.@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validIAMPathSegments reports whether the segments of a path written as
// "a/b" (no leading or trailing slash) are printable ASCII, as IAM requires.
func validIAMPath(p string) bool {
	if len(p) > maxIAMPathLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] > 0x7e {
			return false
		}
	}
	return !strings.Contains(p, "//")
}

// CheckRoleFormat applies the format rules to a spec.role value. account is
// the cluster's account (from --controller-role), "" when unknown. It
// returns the role to look up in IAM, or ok=false when the value is too
// broken to look up (or names another account).
func CheckRoleFormat(path *field.Path, role, account string) (ref RoleRef, findings []Finding, ok bool) {
	if strings.HasPrefix(role, "arn:") {
		return checkRoleARN(path, role, account)
	}
	name, rolePath := role, ""
	if i := strings.LastIndexByte(role, '/'); i >= 0 {
		name = role[i+1:]
		rolePath = "/" + strings.Trim(role[:i], "/") + "/"
		if rolePath == "//" {
			rolePath = "/"
		}
		// The path as written, with its leading slash: an empty segment
		// ("a//b", "//b") is as invalid at the ends as inside.
		written := "/" + strings.TrimPrefix(role[:i+1], "/")
		if !validIAMPath(strings.Trim(role[:i], "/")) || strings.Contains(written, "//") {
			findings = append(findings, deny(RoleInvalidName, path,
				"%s has an invalid IAM path %s; a path is printable ASCII without spaces, up to 512 characters. Set spec.role to the role name only",
				quote(role), quote(role[:i+1])))
			return RoleRef{}, findings, false
		}
	}
	if !validIAMName(name, maxRoleNameLen) {
		findings = append(findings, deny(RoleInvalidName, path,
			"%s is not a valid IAM role name: use 1 to 64 letters, digits or +=,.@_- characters. Set spec.role to the role's name as IAM shows it",
			quote(name)))
		return RoleRef{}, findings, false
	}
	if rolePath != "" {
		findings = append(findings, warn(RoleHasPath, path,
			"Karpenter uses only the name %s; the role's ARN includes the path (role%s%s), which the controller's iam:PassRole must allow",
			name, rolePath, name))
	}
	return RoleRef{Name: name, Path: rolePath}, findings, true
}

func checkRoleARN(path *field.Path, role, account string) (RoleRef, []Finding, bool) {
	a, err := authz.ParseARN(role)
	if err == nil && a.Service == "sts" {
		// An assumed-role ARN (what `aws sts get-caller-identity` prints)
		// names the role too: say which name to use.
		if r, perr := authz.ParseRoleARN(role); perr == nil {
			return RoleRef{}, []Finding{deny(RoleARNMalformed, path,
				"%s is an STS assumed-role ARN, not an IAM role; Karpenter expects the role's name. Set spec.role: %s",
				quote(role), shown(r.Name))}, false
		}
	}
	var parsed authz.RoleARN
	if err == nil {
		if a.Service != "iam" {
			err = errNotIAMRole
		} else {
			parsed, err = authz.ParseRoleARN(role)
		}
	}
	if err != nil {
		return RoleRef{}, []Finding{deny(RoleARNMalformed, path,
			"%s starts with arn: but is not a valid IAM role ARN (%v). Set spec.role to the role name, e.g. KarpenterNodeRole",
			quote(role), reason(err))}, false
	}
	if !validIAMName(parsed.Name, maxRoleNameLen) {
		return RoleRef{}, []Finding{deny(RoleARNMalformed, path,
			"%s is not a valid IAM role ARN: the name %s breaks IAM's rule (1 to 64 of letters, digits, +=,.@_-). Set spec.role to the role name",
			quote(role), quote(parsed.Name))}, false
	}
	findings := []Finding{deny(RoleIsARN, path,
		"%s is an ARN; Karpenter expects a role name. Set spec.role: %s", quote(role), parsed.Name)}
	if account != "" && parsed.Account != account {
		findings = append(findings, deny(RoleCrossAccount, path,
			"%s is in account %s, but the cluster's account (of the controller role) is %s; nodes cannot use a role from another account. Use a role in account %s",
			quote(role), parsed.Account, account, account))
		return RoleRef{}, findings, false
	}
	return RoleRef{Name: parsed.Name, Path: parsed.Path, Account: parsed.Account, Partition: parsed.Partition}, findings, true
}

// CheckInstanceProfileFormat applies the format rules to a
// spec.instanceProfile value and returns the name to look up, or ok=false.
func CheckInstanceProfileFormat(path *field.Path, profile string) (name string, findings []Finding, ok bool) {
	if strings.HasPrefix(profile, "arn:") {
		name = profile
		if i := strings.LastIndexByte(profile, '/'); i >= 0 {
			name = profile[i+1:]
		}
		a, err := authz.ParseARN(profile)
		if err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "instance-profile/") || !validIAMName(name, maxInstanceProfileNameLen) {
			return "", []Finding{deny(InstanceProfileIsARN, path,
				"%s is an ARN, and not a valid instance-profile ARN; Karpenter expects the instance profile's name. Set spec.instanceProfile to the name IAM shows for the profile",
				quote(profile))}, false
		}
		return "", []Finding{deny(InstanceProfileIsARN, path,
			"%s is an ARN; Karpenter expects the instance profile's name (an ARN passes Karpenter's readiness but fails at launch). Set spec.instanceProfile: %s",
			quote(profile), name)}, false
	}
	if !validIAMName(profile, maxInstanceProfileNameLen) {
		return "", []Finding{deny(InstanceProfileInvalidName, path,
			"%s is not a valid instance profile name: use 1 to 128 letters, digits or +=,.@_- characters (no path). Set spec.instanceProfile to the profile's name",
			quote(profile))}, false
	}
	return profile, nil, true
}

// CheckExclusive enforces that exactly one of role and instanceProfile is set.
func CheckExclusive(spec *field.Path, role, profile string) []Finding {
	switch {
	case role != "" && profile != "":
		return []Finding{deny(RoleInstanceProfileExclusive, spec,
			"both role (%s) and instanceProfile (%s) are set; Karpenter uses one or the other. Remove spec.role or spec.instanceProfile",
			quote(role), quote(profile))}
	case role == "" && profile == "":
		return []Finding{deny(RoleInstanceProfileExclusive, spec,
			"neither role nor instanceProfile is set; nodes need an IAM identity. Set spec.role to the node role's name (or spec.instanceProfile to a profile name)")}
	}
	return nil
}

// CheckEKSInstanceProfilePrefix warns when an EKS Auto Mode NodeClass names
// an instance profile whose name does not start with "eks".
func CheckEKSInstanceProfilePrefix(path *field.Path, profile string) []Finding {
	if profile == "" || strings.HasPrefix(profile, "eks") {
		return nil
	}
	return []Finding{warn(InstanceProfileNamePrefix, path,
		"%s does not start with \"eks\"; EKS Auto Mode's managed policy only allows profiles named eks*. Rename the profile to start with eks",
		quote(profile))}
}

type constError string

func (e constError) Error() string { return string(e) }

const errNotIAMRole = constError("the service is not iam")

// reason strips the quoted input a parse error repeats (authz's errors
// start with it, %q-quoted), leaving what is wrong. The whole quoted
// string is skipped, so a quote inside the input cannot cut the message.
func reason(err error) string {
	msg := err.Error()
	if q, qerr := strconv.QuotedPrefix(msg); qerr == nil {
		return strings.TrimPrefix(msg[len(q):], " ")
	}
	return msg
}

// rewordRoleHasPath makes the RoleHasPath warning, written from the path
// spec.role gave, quote the role's real ARN once IAM has given it.
func (v *Verdict) rewordRoleHasPath(name, realARN string) {
	for i, f := range v.Warnings {
		if f.Code == RoleHasPath && f.Field == rolePath {
			v.Warnings[i].Message = "Karpenter uses only the name " + name + "; the role's ARN is " + realARN +
				", which the controller's iam:PassRole must allow"
		}
	}
}
