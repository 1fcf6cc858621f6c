package authz

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// IAMPolicyAPI is the part of the IAM client ReadRoleDetail uses: the
// calls that read one role's policies and boundary (what `aws iam
// get-account-authorization-details` prints of a role, without the rest of
// the account).
type IAMPolicyAPI interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(ctx context.Context, in *iam.GetPolicyInput, optFns ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, optFns ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
}

var _ IAMPolicyAPI = (*iam.Client)(nil)

// ManagedPolicy is a managed policy attached to a role (or its boundary):
// its ARN, and its default version when it could be read.
type ManagedPolicy struct {
	Name, ARN, VersionID string
	// Policy is nil when the policy could not be read (Err says why).
	Policy *Policy
	Err    error
}

// RoleDetail is what a snapshot holds of a role whose permissions are
// evaluated: the role, its inline policies, its attached managed policies
// and its permissions boundary.
type RoleDetail struct {
	Role
	Inline   []NamedPolicy
	Attached []ManagedPolicy
	Boundary *ManagedPolicy
}

// ReadRoleDetail reads a role's policies through IAM: GetRole (the trust
// policy and the boundary), ListRolePolicies and GetRolePolicy,
// ListAttachedRolePolicies, GetPolicy and GetPolicyVersion (the default
// version). A managed policy that cannot be read is kept with its Err: a
// snapshot then names it without its document, and evaluating the role
// says so instead of guessing. The role itself not found is a
// *NotFoundError; any other failure of the role's own calls an
// *UnavailableError naming the API.
func ReadRoleDetail(ctx context.Context, client IAMPolicyAPI, name string) (RoleDetail, error) {
	var d RoleDetail
	out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		return d, classifyLookupError("GetRole", "role", name, err)
	}
	if d.Role, err = roleFromSDK(*out.Role); err != nil {
		return d, err
	}
	if b := out.Role.PermissionsBoundary; b != nil && aws.ToString(b.PermissionsBoundaryArn) != "" {
		mp := readManaged(ctx, client, aws.ToString(b.PermissionsBoundaryArn), "")
		d.Boundary = &mp
	}
	var marker *string
	for {
		lp, err := client.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name), Marker: marker})
		if err != nil {
			return d, classifyLookupError("ListRolePolicies", "role", name, err)
		}
		for _, pn := range lp.PolicyNames {
			gp, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return d, classifyLookupError("GetRolePolicy", "role", name, err)
			}
			pol, err := parseIAMDocument(aws.ToString(gp.PolicyDocument))
			if err != nil {
				return d, fmt.Errorf("role %q: inline policy %q from IAM: %w", name, pn, err)
			}
			d.Inline = append(d.Inline, NamedPolicy{Name: pn, Policy: pol})
		}
		if !lp.IsTruncated || lp.Marker == nil {
			break
		}
		marker = lp.Marker
	}
	marker = nil
	for {
		la, err := client.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name), Marker: marker})
		if err != nil {
			return d, classifyLookupError("ListAttachedRolePolicies", "role", name, err)
		}
		for _, ap := range la.AttachedPolicies {
			d.Attached = append(d.Attached, readManaged(ctx, client, aws.ToString(ap.PolicyArn), aws.ToString(ap.PolicyName)))
		}
		if !la.IsTruncated || la.Marker == nil {
			break
		}
		marker = la.Marker
	}
	return d, nil
}

// readManaged reads a managed policy's default version.
func readManaged(ctx context.Context, client IAMPolicyAPI, arn, name string) ManagedPolicy {
	mp := ManagedPolicy{Name: name, ARN: arn}
	gp, err := client.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err != nil {
		mp.Err = classifyLookupError("GetPolicy", "policy", arn, err)
		return mp
	}
	if mp.Name == "" {
		mp.Name = aws.ToString(gp.Policy.PolicyName)
	}
	mp.VersionID = aws.ToString(gp.Policy.DefaultVersionId)
	gv, err := client.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String(mp.VersionID)})
	if err != nil {
		mp.Err = classifyLookupError("GetPolicyVersion", "policy", arn, err)
		return mp
	}
	if mp.Policy, err = parseIAMDocument(aws.ToString(gv.PolicyVersion.Document)); err != nil {
		mp.Err = fmt.Errorf("policy %s version %s from IAM: %w", arn, mp.VersionID, err)
	}
	return mp
}

// parseIAMDocument parses a policy document as IAM's API returns it
// (percent-encoded).
func parseIAMDocument(doc string) (*Policy, error) {
	if decoded, err := url.PathUnescape(doc); err == nil {
		doc = decoded
	}
	return ParsePolicy([]byte(doc))
}

// PolicySet is the set IAM evaluates for the role, when every policy was
// read; ok is false otherwise.
func (d RoleDetail) PolicySet() (set PolicySet, ok bool) {
	set.Identity = append(set.Identity, d.Inline...)
	for _, mp := range d.Attached {
		if mp.Policy == nil {
			return PolicySet{}, false
		}
		set.Identity = append(set.Identity, NamedPolicy{Name: mp.ARN, Policy: mp.Policy})
	}
	if b := d.Boundary; b != nil {
		if b.Policy == nil {
			return PolicySet{}, false
		}
		set.Boundary = &NamedPolicy{Name: b.ARN, Policy: b.Policy}
	}
	return set, true
}
