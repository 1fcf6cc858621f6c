package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// Code is a stable reason code of the contract, printed as [Code].
type Code string

// Reason codes. The contract (shared/CONTRACT.md) fixes their meaning.
const (
	// Format: no IAM needed.
	RoleInvalidName              Code = "RoleInvalidName"
	RoleIsARN                    Code = "RoleIsARN"
	RoleARNMalformed             Code = "RoleARNMalformed"
	RoleCrossAccount             Code = "RoleCrossAccount"
	RoleHasPath                  Code = "RoleHasPath"
	RoleInstanceProfileExclusive Code = "RoleInstanceProfileExclusive"
	InstanceProfileInvalidName   Code = "InstanceProfileInvalidName"
	InstanceProfileIsARN         Code = "InstanceProfileIsARN"
	InstanceProfileNamePrefix    Code = "InstanceProfileNamePrefix"

	// IAM state.
	RoleNotFound             Code = "RoleNotFound"
	RolePathMismatch         Code = "RolePathMismatch"
	RoleTrustMissingEC2      Code = "RoleTrustMissingEC2"
	InstanceProfileNotFound  Code = "InstanceProfileNotFound"
	InstanceProfileHasNoRole Code = "InstanceProfileHasNoRole"

	// Permissions of the Karpenter controller.
	PassRoleDenied               Code = "PassRoleDenied"
	InstanceProfileActionsDenied Code = "InstanceProfileActionsDenied"
	InstanceProfileReadDenied    Code = "InstanceProfileReadDenied"
	LaunchDenied                 Code = "LaunchDenied"

	// NodePool.
	NodeClassRefUnsupported Code = "NodeClassRefUnsupported"
	NodeClassNotFound       Code = "NodeClassNotFound"
	NodeClassInvalid        Code = "NodeClassInvalid"

	// Availability.
	IAMUnavailable Code = "IAMUnavailable"

	// Extensions of the contract (warnings only).

	// IAMStale: IAM could not be reached and the verdict used cached answers
	// older than their TTL.
	IAMStale Code = "IAMStale"
	// PermissionChecksSkipped: no controller role is known, so the
	// controller's permissions were not checked.
	PermissionChecksSkipped Code = "PermissionChecksSkipped"
	// PermissionContextMissing: a policy tests a condition key that the
	// check does not supply, so IAM's answer may differ at launch time.
	PermissionContextMissing Code = "PermissionContextMissing"
	// PolicyConditionUnsupported: a statement uses a condition operator the
	// local evaluator does not know; it was counted as not matching.
	PolicyConditionUnsupported Code = "PolicyConditionUnsupported"
	// PolicySetOperatorMissing: a statement tests a multivalued key
	// (aws:TagKeys) with a plain operator, which IAM never matches: the
	// statement does not apply to Karpenter's requests.
	PolicySetOperatorMissing Code = "PolicySetOperatorMissing"

	// Node join (extensions of the contract): can a node launched for the
	// class join the cluster? (join.go, automode.go, spot.go)

	// NodeAccessEntryMissing: the cluster authenticates with access
	// entries and none exists for the node role's exact ARN (nor, in
	// API_AND_CONFIG_MAP, an aws-auth mapping).
	NodeAccessEntryMissing Code = "NodeAccessEntryMissing"
	// NodeAccessEntryWrongType: the node role's access entry is not of a
	// node type (EC2_LINUX or EC2_WINDOWS; EC2 for EKS Auto Mode).
	NodeAccessEntryWrongType Code = "NodeAccessEntryWrongType"
	// NodeAccessPolicyMissing: an EKS Auto Mode node role's access entry
	// lacks the AmazonEKSAutoNodePolicy access policy.
	NodeAccessPolicyMissing Code = "NodeAccessPolicyMissing"
	// AWSAuthRoleMissing: the cluster reads aws-auth and it does not map
	// the node role.
	AWSAuthRoleMissing Code = "AWSAuthRoleMissing"
	// AWSAuthRoleHasPath: aws-auth maps the node role only by its ARN with
	// the path, which EKS's authenticator never matches.
	AWSAuthRoleHasPath Code = "AWSAuthRoleHasPath"
	// AWSAuthGroupsMissing: aws-auth maps the node role without the groups
	// system:bootstrappers and system:nodes.
	AWSAuthGroupsMissing Code = "AWSAuthGroupsMissing"
	// AWSAuthUsernameWrong: aws-auth maps the node role with both node
	// groups but a username other than system:node:{{EC2PrivateDNSName}},
	// so the Node authorizer refuses its kubelet.
	AWSAuthUsernameWrong Code = "AWSAuthUsernameWrong"
	// NodeJoinChecksSkipped (warn): a node-join check could not run; the
	// message names the check and why.
	NodeJoinChecksSkipped Code = "NodeJoinChecksSkipped"
	// AutoModeRoleHasPath (warn): an EKS Auto Mode node role under a custom
	// path without a matching access entry found.
	AutoModeRoleHasPath Code = "AutoModeRoleHasPath"
	// AutoModePassRoleDenied: the Auto Mode cluster role may not pass the
	// node role to EC2.
	AutoModePassRoleDenied Code = "AutoModePassRoleDenied"
	// AutoModeTagDenied: the Auto Mode cluster role may not launch with the
	// class's spec.tags.
	AutoModeTagDenied Code = "AutoModeTagDenied"
	// SpotServiceLinkedRoleMissing (warn): a NodePool allows spot, the
	// account has no AWSServiceRoleForEC2Spot and the launching role may
	// not create it.
	SpotServiceLinkedRoleMissing Code = "SpotServiceLinkedRoleMissing"

	// Selectors (extensions of the contract): what an EC2NodeClass's
	// selector terms resolve to in EC2 (selectors.go, update.go).

	// SelectorTermMatchesNothing (warn): one term of a subnet, security
	// group or AMI selector list matches nothing while others match.
	SelectorTermMatchesNothing Code = "SelectorTermMatchesNothing"
	// SelectorMatchesNothing: a whole subnet, security group or AMI
	// selector list matches nothing.
	SelectorMatchesNothing Code = "SelectorMatchesNothing"
	// CapacityReservationTermMatchesNothing (warn): a capacity
	// reservation term matches no active reservation.
	CapacityReservationTermMatchesNothing Code = "CapacityReservationTermMatchesNothing"
	// SubnetSecurityGroupVPCMismatch (deny when no subnet fits, warn when
	// some do not): the security groups and subnets share no VPC.
	SubnetSecurityGroupVPCMismatch Code = "SubnetSecurityGroupVPCMismatch"
	// ImageArchitectureMismatch: no selected image has an architecture a
	// NodePool using the class allows.
	ImageArchitectureMismatch Code = "ImageArchitectureMismatch"
	// ImageFamilyMismatch (warn): a selected image's family contradicts
	// spec.amiFamily.
	ImageFamilyMismatch Code = "ImageFamilyMismatch"
	// SelectorChecksSkipped (warn): a selector check could not run (EC2 or
	// SSM could not be asked, a snapshot without the section, no
	// Kubernetes version for an alias); the message names the check.
	SelectorChecksSkipped Code = "SelectorChecksSkipped"
	// SelectorUpdateStrandsNodes: an update's selectors match nothing, or
	// no subnet in a zone where the class's NodeClaims run, while
	// NodeClaims use the class.
	SelectorUpdateStrandsNodes Code = "SelectorUpdateStrandsNodes"
	// SelectorUpdateChanges (warn): what an update's selectors add or
	// remove (zones, subnets, security groups, images).
	SelectorUpdateChanges Code = "SelectorUpdateChanges"

	// Bounds (extensions of the contract): what one object may hold
	// before anything is planned or asked (bounds.go).

	// TagsExceedLimit: spec.tags, with the tags Karpenter adds, exceed
	// what EC2 and IAM accept on a resource (50 tags; keys of 128 and
	// values of 256 characters).
	TagsExceedLimit Code = "TagsExceedLimit"
	// SpecExceedsLimit: a list or a field beyond the CRD's caps (30
	// selector terms, 20 tags per term, 100 NodePool requirements), or a
	// selector term longer than anything EC2 could match.
	SpecExceedsLimit Code = "SpecExceedsLimit"
)

// Finding is one problem found in an object: a denial or a warning, tied to
// the field it is about.
type Finding struct {
	Code  Code
	Field *field.Path
	// Message says what is wrong, with the concrete value, and how to fix it.
	Message string
	// Deny is set for findings that reject the object.
	Deny bool
	// Requests are, for a denial of the controller's permissions, the
	// questions IAM denied: principal, action, resource and context.
	Requests []authz.Question
	// Decisions are IAM's answers to Requests, index for index: what a
	// report needs to say which statement would allow them, without
	// asking again.
	Decisions []authz.Decision
	// DeniedBy says, for such a denial, what denied the first request:
	// DeniedByExplicitDeny, DeniedByBoundary, DeniedBySCP, or "" when no
	// statement allows it.
	DeniedBy string
	// Causes are, for NodeClassInvalid, the denials of the referenced class.
	Causes []Finding
}

// maxWarningLen is the API server's limit on one admission warning.
const maxWarningLen = 255

// DenialLine formats a denial as the contract's
// "<field>: [<Code>] <what is wrong>. <how to fix it>".
func (f Finding) DenialLine() string {
	return fmt.Sprintf("%s: [%s] %s", f.Field, f.Code, oneLine(f.Message))
}

// WarningLine formats a warning as the contract's "[<Code>] <field>: <text>",
// shortened to fit the API server's 256-character limit.
func (f Finding) WarningLine() string {
	return truncate(fmt.Sprintf("[%s] %s: %s", f.Code, f.Field, oneLine(f.Message)), maxWarningLen)
}

// Verdict is the outcome of validating one object.
type Verdict struct {
	Denials  []Finding
	Warnings []Finding
	// IAMTime is how long the check waited for IAM's answers (cached ones
	// included), for the admission log.
	IAMTime time.Duration
	// NotChecked are the parts of Karpenter's requests the checks know of
	// but did not ask (the image, subnets and security groups of a launch
	// until an EC2 view resolves them): reported, never a silent pass.
	NotChecked []karpenter.NotChecked
}

// Allowed reports whether the object passes.
func (v Verdict) Allowed() bool { return len(v.Denials) == 0 }

// Codes returns the distinct codes of the verdict, denials first.
func (v Verdict) Codes() []string {
	seen := map[Code]bool{}
	var out []string
	for _, fs := range [][]Finding{v.Denials, v.Warnings} {
		for _, f := range fs {
			if !seen[f.Code] {
				seen[f.Code] = true
				out = append(out, string(f.Code))
			}
		}
	}
	return out
}

// DenialMessage joins the denials, one line per problem.
func (v Verdict) DenialMessage() string {
	lines := make([]string, len(v.Denials))
	for i, f := range v.Denials {
		lines[i] = f.DenialLine()
	}
	return strings.Join(lines, "\n")
}

// WarningLines returns the warnings as admission warnings.
func (v Verdict) WarningLines() []string {
	lines := make([]string, len(v.Warnings))
	for i, f := range v.Warnings {
		lines[i] = f.WarningLine()
	}
	return lines
}

func (v *Verdict) add(f Finding) {
	if f.Deny {
		v.Denials = append(v.Denials, f)
	} else {
		v.Warnings = append(v.Warnings, f)
	}
}

// demote turns every denial into a warning whose message starts with
// (why).
func (v *Verdict) demote(why string) {
	for _, f := range v.Denials {
		f.Deny = false
		f.Message = "(" + why + ") " + f.Message
		v.Warnings = append(v.Warnings, f)
	}
	v.Denials = nil
}

// demoteCode is demote of the denials of code alone.
func (v *Verdict) demoteCode(code Code, why string) {
	var still []Finding
	var demoted Verdict
	for _, f := range v.Denials {
		if f.Code == code {
			demoted.add(f)
			continue
		}
		still = append(still, f)
	}
	demoted.demote(why)
	v.Denials = still
	v.Warnings = append(v.Warnings, demoted.Warnings...)
}

func (v *Verdict) addAll(fs []Finding) {
	for _, f := range fs {
		v.add(f)
	}
}

func deny(code Code, path *field.Path, format string, args ...any) Finding {
	return Finding{Code: code, Field: path, Message: fmt.Sprintf(format, args...), Deny: true}
}

func warn(code Code, path *field.Path, format string, args ...any) Finding {
	return Finding{Code: code, Field: path, Message: fmt.Sprintf(format, args...)}
}

// oneLine keeps a message on one line whatever the input held.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "..."
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// quote renders a user-supplied value for a message: quoted, shortened and
// with invalid UTF-8 made visible, so a hostile value cannot flood or break
// the answer.
func quote(s string) string {
	const maxShown = 96
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q... (%d characters)", s[:cut], utf8.RuneCountInString(s))
	}
	return fmt.Sprintf("%q", s)
}

// Quote is quote, for the transport's own messages (webhook/).
func Quote(s string) string { return quote(s) }

// Shown is shown, for the transport's own messages (webhook/).
func Shown(s string) string { return shown(s) }

// shown renders a name for a message: as it is when it is short printable
// ASCII, else as quote does. Names in `check` come from files no API server
// validated, so a hostile one must not break a line or flood a message.
func shown(s string) string {
	if len(s) <= 96 && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return s
	}
	return quote(s)
}

func containsString(list []string, s string) bool {
	for _, have := range list {
		if have == s {
			return true
		}
	}
	return false
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
