package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// The shared IAM scenario of testdata/iam/sample-snapshot.json.
const (
	testAccount = "111122223333"
	testCluster = "demo"
	testRegion  = "us-west-2"

	ctlKarpenter = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	ctlLimited   = "arn:aws:iam::111122223333:role/LimitedControllerRole"
	ctlBounded   = "arn:aws:iam::111122223333:role/BoundedControllerRole"
	// ctlNone runs a case without a controller role.
	ctlNone = "none"

	sampleSnapshot = "../testdata/iam/sample-snapshot.json"
	// sampleClusterRole is the cluster role of the sample's EKS cluster
	// (Auto Mode compute enabled).
	sampleClusterRole = "arn:aws:iam::111122223333:role/EKSClusterRole-demo"
)

// ruleCase is one row of the rules table: an object, the checker settings,
// and the complete verdict expected (every denial and warning code; a code
// not listed must not appear).
type ruleCase struct {
	name string
	// obj is an *EC2NodeClass, *NodePool or *NodeClass.
	obj runtime.Object
	// ctl is the controller role ARN: "" for KarpenterControllerRole,
	// ctlNone for none.
	ctl     string
	offline bool
	// onIAMError defaults to allow.
	onIAMError OnIAMError
	// wrap, when set, wraps the IAM view (to make it unavailable, stale...).
	wrap func(authz.View) authz.View
	// classes resolves NodePool references; nil means testClasses.
	classes ClassGetter
	// awsAuth is the cluster's aws-auth; nil means none can be read.
	awsAuth AWSAuthSource
	// eks, when set, wraps the EKS view (another authentication mode,
	// EKS unavailable...).
	eks func(authz.EKSView) authz.EKSView

	deny []Code
	warn []Code
	// msgs must each appear in the case's denial lines or warning lines,
	// whatever the IAM view.
	msgs []string
	// snapshotMsgs are checked only against the snapshot view: they name
	// what only the local evaluator knows (statement Sids, near misses).
	snapshotMsgs []string
}

// Object builders.

func ec2Class(name, role, profile string) *EC2NodeClass {
	return &EC2NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "karpenter.k8s.aws/v1", Kind: EC2NodeClassKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       EC2NodeClassSpec{Role: role, InstanceProfile: profile},
	}
}

func eksClass(name, role, profile string) *NodeClass {
	return &NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "eks.amazonaws.com/v1", Kind: NodeClassKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       NodeClassSpec{Role: role, InstanceProfile: profile},
	}
}

func nodePool(name string, ref *NodeClassReference) *NodePool {
	np := &NodePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: "karpenter.sh/v1", Kind: NodePoolKind},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
	np.Spec.Template.Spec.NodeClassRef = ref
	return np
}

func refEC2(name string) *NodeClassReference {
	return &NodeClassReference{Group: KarpenterAWSGroup, Kind: EC2NodeClassKind, Name: name}
}

func refEKS(name string) *NodeClassReference {
	return &NodeClassReference{Group: EKSGroup, Kind: NodeClassKind, Name: name}
}

// mapClasses is a ClassGetter over fixed classes; err, when set, is
// returned for every lookup.
type mapClasses struct {
	ec2 map[string]*EC2NodeClass
	eks map[string]*NodeClass
	err error
}

var _ ClassGetter = mapClasses{}

func (m mapClasses) GetEC2NodeClass(_ context.Context, name string) (*EC2NodeClass, bool, error) {
	if m.err != nil {
		return nil, false, m.err
	}
	nc, ok := m.ec2[name]
	return nc, ok, nil
}

func (m mapClasses) GetNodeClass(_ context.Context, name string) (*NodeClass, bool, error) {
	if m.err != nil {
		return nil, false, m.err
	}
	nc, ok := m.eks[name]
	return nc, ok, nil
}

// testClasses are the classes NodePool cases reference.
func testClasses() mapClasses {
	return mapClasses{
		ec2: map[string]*EC2NodeClass{
			"default":  ec2Class("default", "KarpenterNodeRole-demo", ""),
			"role-arn": ec2Class("role-arn", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ""),
			"notrust":  ec2Class("notrust", "KarpenterNodeRole-notrust", ""),
			"admin":    ec2Class("admin", "AdminNodeRole", ""),
			"pathed":   ec2Class("pathed", "team/KarpenterNodeRole-team", ""),
		},
		eks: map[string]*NodeClass{
			"eks-default": eksClass("eks-default", "EKSAutoNodeRole-demo", ""),
			"eks-bad":     eksClass("eks-bad", "bad name", ""),
		},
	}
}

// unavailableView answers every question with an *authz.UnavailableError,
// as IAM does when throttled or unreachable and nothing is cached.
type unavailableView struct{ inner authz.View }

var _ authz.View = unavailableView{}

func (u unavailableView) Role(context.Context, string) (authz.Role, error) {
	return authz.Role{}, &authz.UnavailableError{Op: "GetRole", Err: errors.New("Throttling: Rate exceeded")}
}

func (u unavailableView) InstanceProfile(context.Context, string) (authz.InstanceProfile, error) {
	return authz.InstanceProfile{}, &authz.UnavailableError{Op: "GetInstanceProfile", Err: context.DeadlineExceeded}
}

func (u unavailableView) Decide(context.Context, authz.Question) (authz.Decision, error) {
	return authz.Decision{}, &authz.UnavailableError{Op: "SimulatePrincipalPolicy", Err: errors.New("503 Service Unavailable")}
}

func unavailable(v authz.View) authz.View { return unavailableView{v} }

// staleView marks every answer of inner as served stale from a cache.
type staleView struct{ inner authz.View }

var _ authz.View = staleView{}

const staleAge = 7 * time.Minute

func (s staleView) Role(ctx context.Context, name string) (authz.Role, error) {
	r, err := s.inner.Role(ctx, name)
	r.Served = authz.Served{Stale: true, Age: staleAge}
	return r, err
}

func (s staleView) InstanceProfile(ctx context.Context, name string) (authz.InstanceProfile, error) {
	p, err := s.inner.InstanceProfile(ctx, name)
	p.Served = authz.Served{Stale: true, Age: staleAge}
	return p, err
}

func (s staleView) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	d, err := s.inner.Decide(ctx, q)
	d.Served = authz.Served{Stale: true, Age: staleAge}
	return d, err
}

func stale(v authz.View) authz.View { return staleView{v} }

// decisionEditView changes every decision of inner, to reproduce what only
// some policies or IAM itself report (missing context keys, unsupported
// condition operators).
type decisionEditView struct {
	authz.View
	edit func(*authz.Decision)
}

func (e decisionEditView) Decide(ctx context.Context, q authz.Question) (authz.Decision, error) {
	d, err := e.View.Decide(ctx, q)
	if err == nil {
		e.edit(&d)
	}
	return d, err
}

func missingContext(v authz.View) authz.View {
	return decisionEditView{v, func(d *authz.Decision) { d.MissingContext = []string{"aws:SourceVpce"} }}
}

func setOperatorMissing(v authz.View) authz.View {
	return decisionEditView{v, func(d *authz.Decision) { d.NeedsSetOperator = []string{"StringEquals aws:TagKeys"} }}
}

func unsupportedCondition(v authz.View) authz.View {
	return decisionEditView{v, func(d *authz.Decision) { d.Unsupported = []string{"IpAddressIfExists"} }}
}

// partialUnavailable makes only SimulatePrincipalPolicy unavailable.
type decideUnavailable struct{ authz.View }

func (d decideUnavailable) Decide(context.Context, authz.Question) (authz.Decision, error) {
	return authz.Decision{}, &authz.UnavailableError{Op: "SimulatePrincipalPolicy", Err: context.DeadlineExceeded}
}

func onlyDecideUnavailable(v authz.View) authz.View { return decideUnavailable{v} }

// contractCodes is every code of shared/CONTRACT.md.
var contractCodes = []Code{
	RoleInvalidName, RoleIsARN, RoleARNMalformed, RoleCrossAccount, RoleHasPath,
	RoleInstanceProfileExclusive, InstanceProfileInvalidName, InstanceProfileIsARN,
	InstanceProfileNamePrefix,
	RoleNotFound, RolePathMismatch, RoleTrustMissingEC2, InstanceProfileNotFound,
	InstanceProfileHasNoRole,
	PassRoleDenied, InstanceProfileActionsDenied, InstanceProfileReadDenied, LaunchDenied,
	NodeClassRefUnsupported, NodeClassNotFound, NodeClassInvalid,
	IAMUnavailable,
}

// extensionCodes are the codes nodeclass-guard adds to the contract.
var extensionCodes = []Code{IAMStale, PermissionChecksSkipped, PermissionContextMissing, PolicyConditionUnsupported, PolicySetOperatorMissing,
	NodeAccessEntryMissing, NodeAccessEntryWrongType, NodeAccessPolicyMissing, AWSAuthRoleMissing, AWSAuthRoleHasPath,
	AWSAuthGroupsMissing, AWSAuthUsernameWrong, NodeJoinChecksSkipped, AutoModeRoleHasPath, AutoModePassRoleDenied, AutoModeTagDenied,
	SpotServiceLinkedRoleMissing}

func codes(cs ...Code) []Code { return cs }

// ruleCases is the rules table. It runs against the snapshot view
// (rules_test.go) and the live view through the local IAM endpoint
// (rules_live_test.go); the codes must agree.
func ruleCases() []ruleCase {
	const (
		demoRole    = "KarpenterNodeRole-demo"
		demoProfile = "KarpenterNodeInstanceProfile-demo"
		autoRole    = "EKSAutoNodeRole-demo"
	)
	return append([]ruleCase{
		// Clean objects: no code at all.
		{name: "good role", obj: ec2Class("default", demoRole, "")},
		{name: "good instance profile", obj: ec2Class("ip", "", demoProfile)},
		{name: "good role as IAM spells it in lower case", obj: ec2Class("lower", "karpenternoderole-demo", "")},
		{name: "good EKS role", obj: eksClass("auto", autoRole, "")},
		{name: "good EKS instance profile with eks prefix", obj: eksClass("auto", "", "eks-auto-demo")},
		{name: "good role offline", obj: ec2Class("default", demoRole, ""), offline: true},
		{name: "good role under a limited controller needs no instance profile read", obj: ec2Class("default", demoRole, ""), ctl: ctlLimited,
			deny: codes(InstanceProfileActionsDenied, LaunchDenied)},

		// RoleInvalidName.
		{name: "role name with a space", obj: ec2Class("x", "Karpenter Node Role", ""),
			deny: codes(RoleInvalidName), msgs: []string{`"Karpenter Node Role" is not a valid IAM role name`}},
		{name: "role name of 65 characters", obj: ec2Class("x", strings.Repeat("r", 65), ""),
			deny: codes(RoleInvalidName), msgs: []string{"1 to 64"}},
		{name: "role name of 64 characters is valid (and absent)", obj: ec2Class("x", strings.Repeat("r", 64), ""),
			deny: codes(RoleNotFound)},
		{name: "role name invalid offline", obj: ec2Class("x", "bad!name", ""), offline: true,
			deny: codes(RoleInvalidName)},
		{name: "role path with a space", obj: ec2Class("x", "my team/KarpenterNodeRole-demo", ""),
			deny: codes(RoleInvalidName), msgs: []string{"invalid IAM path"}},

		// RoleIsARN, RoleARNMalformed, RoleCrossAccount.
		{name: "role ARN", obj: ec2Class("x", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ""),
			deny: codes(RoleIsARN), msgs: []string{"Set spec.role: KarpenterNodeRole-demo"}},
		{name: "role ARN with its real path still denied as an ARN", obj: ec2Class("x", "arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team", ""),
			deny: codes(RoleIsARN, PassRoleDenied), msgs: []string{"Set spec.role: KarpenterNodeRole-team", "role/team/KarpenterNodeRole-team"}},
		{name: "role ARN offline", obj: ec2Class("x", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ""), offline: true,
			deny: codes(RoleIsARN)},
		{name: "role ARN without a path for a role under /team/", obj: ec2Class("x", "arn:aws:iam::111122223333:role/KarpenterNodeRole-team", ""),
			deny: codes(RoleIsARN, RolePathMismatch, PassRoleDenied)},
		{name: "role ARN with a short account", obj: ec2Class("x", "arn:aws:iam::12345:role/KarpenterNodeRole-demo", ""),
			deny: codes(RoleARNMalformed), msgs: []string{"12-digit account"}},
		{name: "role ARN of another service", obj: ec2Class("x", "arn:aws:s3:::bucket/KarpenterNodeRole-demo", ""),
			deny: codes(RoleARNMalformed)},
		{name: "role ARN of an instance profile", obj: ec2Class("x", "arn:aws:iam::111122223333:instance-profile/KarpenterNodeInstanceProfile-demo", ""),
			deny: codes(RoleARNMalformed)},
		{name: "role ARN with an invalid name", obj: ec2Class("x", "arn:aws:iam::111122223333:role/bad name", ""),
			deny: codes(RoleARNMalformed)},
		{name: "role ARN in another account", obj: ec2Class("x", "arn:aws:iam::444455556666:role/KarpenterNodeRole-demo", ""),
			deny: codes(RoleIsARN, RoleCrossAccount), msgs: []string{"account 444455556666", "Use a role in account 111122223333"}},
		{name: "role ARN in another account is not cross-account without a controller role", obj: ec2Class("x", "arn:aws:iam::444455556666:role/KarpenterNodeRole-demo", ""), offline: true, ctl: ctlNone,
			deny: codes(RoleIsARN)},

		// RoleHasPath, RolePathMismatch.
		{name: "role with its real path", obj: ec2Class("role-path", "team/KarpenterNodeRole-team", ""),
			deny: codes(PassRoleDenied), warn: codes(RoleHasPath),
			msgs:         []string{"Karpenter uses only the name KarpenterNodeRole-team", "role/team/KarpenterNodeRole-team", "no statement allows it"},
			snapshotMsgs: []string{"role/KarpenterNodeRole-* only"}},
		{name: "role with its real path, offline", obj: ec2Class("role-path", "team/KarpenterNodeRole-team", ""), offline: true,
			warn: codes(RoleHasPath)},
		{name: "role with a leading slash path", obj: ec2Class("role-path", "/team/KarpenterNodeRole-team", ""),
			deny: codes(PassRoleDenied), warn: codes(RoleHasPath)},
		{name: "role with a wrong path", obj: ec2Class("x", "other/KarpenterNodeRole-team", ""),
			deny: codes(RolePathMismatch, PassRoleDenied), warn: codes(RoleHasPath),
			msgs: []string{"gives the path /other/", "has the path /team/", "Set spec.role: KarpenterNodeRole-team",
				"the role's ARN is arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team"}},
		{name: "role at / written with a path", obj: ec2Class("x", "team/KarpenterNodeRole-demo", ""),
			deny: codes(RolePathMismatch), warn: codes(RoleHasPath)},

		// RoleInstanceProfileExclusive.
		{name: "role and instance profile both set", obj: ec2Class("x", demoRole, demoProfile),
			deny: codes(RoleInstanceProfileExclusive), msgs: []string{"both role"}},
		{name: "neither role nor instance profile", obj: ec2Class("x", "", ""),
			deny: codes(RoleInstanceProfileExclusive), msgs: []string{"neither role nor instanceProfile"}},
		{name: "EKS neither role nor instance profile", obj: eksClass("x", "", ""),
			deny: codes(RoleInstanceProfileExclusive)},
		{name: "both set and both malformed", obj: ec2Class("x", "bad name", "bad profile"),
			deny: codes(RoleInstanceProfileExclusive, RoleInvalidName, InstanceProfileInvalidName)},

		// InstanceProfileInvalidName, InstanceProfileIsARN, InstanceProfileNamePrefix.
		{name: "instance profile name with a path", obj: ec2Class("x", "", "team/profile"),
			deny: codes(InstanceProfileInvalidName), msgs: []string{"(no path)"}},
		{name: "instance profile name of 129 characters", obj: ec2Class("x", "", strings.Repeat("p", 129)),
			deny: codes(InstanceProfileInvalidName)},
		{name: "instance profile name of 128 characters is valid (and absent)", obj: ec2Class("x", "", strings.Repeat("p", 128)),
			deny: codes(InstanceProfileNotFound)},
		{name: "instance profile ARN", obj: ec2Class("x", "", "arn:aws:iam::111122223333:instance-profile/KarpenterNodeInstanceProfile-demo"),
			deny: codes(InstanceProfileIsARN), msgs: []string{"Set spec.instanceProfile: KarpenterNodeInstanceProfile-demo"}},
		{name: "instance profile ARN that is not one", obj: ec2Class("x", "", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"),
			deny: codes(InstanceProfileIsARN), msgs: []string{"not a valid instance-profile ARN"}},
		{name: "EKS instance profile without eks prefix", obj: eksClass("auto", "", demoProfile),
			deny: codes(NodeAccessEntryWrongType, AutoModePassRoleDenied), warn: codes(InstanceProfileNamePrefix), msgs: []string{"start with eks"}},
		{name: "EKS instance profile without eks prefix, offline", obj: eksClass("auto", "", "team-profile"), offline: true,
			warn: codes(InstanceProfileNamePrefix)},
		{name: "EC2NodeClass instance profile needs no eks prefix", obj: ec2Class("ip", "", "team-profile"),
			deny: codes(PassRoleDenied)},

		// RoleNotFound, RoleTrustMissingEC2.
		{name: "role not found", obj: ec2Class("x", "NoSuchRole", ""),
			deny: codes(RoleNotFound), msgs: []string{"no IAM role named NoSuchRole in account 111122223333"}},
		{name: "role not found in EKS", obj: eksClass("x", "NoSuchRole", ""),
			deny: codes(RoleNotFound)},
		{name: "role not found, no controller role", obj: ec2Class("x", "NoSuchRole", ""), ctl: ctlNone,
			deny: codes(RoleNotFound), warn: codes(PermissionChecksSkipped)},
		{name: "role without EC2 trust", obj: ec2Class("x", "KarpenterNodeRole-notrust", ""),
			deny: codes(RoleTrustMissingEC2), msgs: []string{"does not trust ec2.amazonaws.com", `Principal {"Service": "ec2.amazonaws.com"}`}},
		{name: "EKS role without EC2 trust", obj: eksClass("x", "KarpenterNodeRole-notrust", ""),
			deny: codes(RoleTrustMissingEC2, NodeAccessEntryWrongType, AutoModePassRoleDenied)},
		{name: "controller role as node role lacks EC2 trust", obj: ec2Class("x", "KarpenterControllerRole", ""),
			deny: codes(RoleTrustMissingEC2, PassRoleDenied), warn: codes(NodeJoinChecksSkipped), msgs: []string{"nodeclass-guard was given no aws-auth ConfigMap"}},

		// InstanceProfileNotFound, InstanceProfileHasNoRole.
		{name: "instance profile not found", obj: ec2Class("x", "", "NoSuchProfile"),
			deny: codes(InstanceProfileNotFound), msgs: []string{"no IAM instance profile named NoSuchProfile", "create-instance-profile"}},
		{name: "EKS instance profile not found", obj: eksClass("x", "", "eks-nosuch"),
			deny: codes(InstanceProfileNotFound)},
		{name: "instance profile without a role", obj: ec2Class("x", "", "EmptyProfile"),
			deny: codes(InstanceProfileHasNoRole), msgs: []string{"add-role-to-instance-profile --instance-profile-name EmptyProfile"}},
		{name: "EKS instance profile without a role", obj: eksClass("x", "", "EmptyProfile"),
			deny: codes(InstanceProfileHasNoRole), warn: codes(InstanceProfileNamePrefix)},

		// PassRoleDenied, every way.
		{name: "pass role denied implicitly: name outside the policy's pattern", obj: ec2Class("x", "OtherNodeRole", ""),
			deny: codes(PassRoleDenied), msgs: []string{"may not iam:PassRole arn:aws:iam::111122223333:role/OtherNodeRole to ec2.amazonaws.com", "no statement allows it", "iam:PassedToService=ec2.amazonaws.com"}},
		{name: "pass role denied implicitly: role under a path, name only", obj: ec2Class("x", "KarpenterNodeRole-team", ""),
			deny: codes(PassRoleDenied), msgs: []string{"arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team"}},
		{name: "pass role denied explicitly", obj: ec2Class("x", "AdminNodeRole", ""),
			deny: codes(PassRoleDenied), msgs: []string{"explicitly denied by identity policy", `"Guardrails"`, "Narrow that Deny statement"},
			snapshotMsgs: []string{`statement "DenyPassAdminRoles"`}},
		{name: "pass role denied by the permissions boundary", obj: ec2Class("x", demoRole, ""), ctl: ctlBounded,
			deny: codes(PassRoleDenied, InstanceProfileActionsDenied), msgs: []string{"permissions boundary", "role arn:aws:iam::111122223333:role/BoundedControllerRole may not iam:PassRole"},
			snapshotMsgs: []string{`"arn:aws:iam::111122223333:policy/EC2OnlyBoundary"`}},
		{name: "pass role denied for an instance profile's role under a path", obj: ec2Class("x", "", "team-profile"),
			deny: codes(PassRoleDenied), msgs: []string{"iam:PassRole arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team"}},
		{name: "pass role denied explicitly for an instance profile's role", obj: ec2Class("x", "", "admin-profile"),
			deny: codes(PassRoleDenied), msgs: []string{"role/AdminNodeRole", "explicitly denied"}},
		{name: "pass role allowed for a limited controller", obj: ec2Class("x", demoRole, ""), ctl: ctlLimited,
			deny: codes(InstanceProfileActionsDenied, LaunchDenied)},
		{name: "EKS NodeClass gets no controller permission checks", obj: eksClass("x", autoRole, "")},
		{name: "EKS NodeClass gets no permission checks, even for a limited controller", obj: eksClass("x", "", "eks-auto-demo"), ctl: ctlLimited},

		// InstanceProfileActionsDenied, InstanceProfileReadDenied, LaunchDenied.
		{name: "instance profile actions denied by the boundary", obj: ec2Class("bounded", demoRole, ""), ctl: ctlBounded,
			deny: codes(PassRoleDenied, InstanceProfileActionsDenied),
			msgs: []string{"iam:GetInstanceProfile, iam:CreateInstanceProfile, iam:TagInstanceProfile, iam:AddRoleToInstanceProfile",
				"on arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/" + karpenter.PlaceholderUID + "/demo_",
				"no metadata.uid yet: the path uses " + karpenter.PlaceholderUID,
				"IAM requires iam:TagInstanceProfile to create an instance profile with tags",
				"kubernetes.io/cluster/demo=owned", "karpenter.k8s.aws/ec2nodeclass=bounded"}},
		{name: "instance profile actions not asked for spec.instanceProfile", obj: ec2Class("x", "", demoProfile), ctl: ctlBounded,
			deny: codes(PassRoleDenied, InstanceProfileReadDenied)},
		{name: "instance profile read denied", obj: ec2Class("x", "", demoProfile), ctl: ctlLimited,
			deny: codes(InstanceProfileReadDenied, LaunchDenied),
			msgs: []string{"may not iam:GetInstanceProfile arn:aws:iam::111122223333:instance-profile/KarpenterNodeInstanceProfile-demo"}},
		{name: "launch denied", obj: ec2Class("limited", demoRole, ""), ctl: ctlLimited,
			deny: codes(InstanceProfileActionsDenied, LaunchDenied),
			msgs: []string{"may not ec2:CreateLaunchTemplate, ec2:CreateTags, ec2:CreateFleet, ec2:RunInstances on launch-template/*, fleet/*, instance/*, volume/*, network-interface/*, launch-template/lt-00000000000000000 in arn:aws:ec2:us-west-2:111122223333",
				"(lt-00000000000000000 stands for the ID EC2 gives the launch template), which Karpenter 1.15 asks when it launches a node for a NodePool (the class's name stands in for its name) and validates the class (with karpenter.sh/nodepool=\"\")",
				"karpenter.sh/nodepool=limited", "eks:eks-cluster-name=demo"}},
		{name: "launch allowed under the boundary (ec2:* only)", obj: ec2Class("x", "", "admin-profile"), ctl: ctlBounded,
			deny: codes(InstanceProfileReadDenied, PassRoleDenied)},

		// Controller role unknown.
		{name: "permission checks skipped without a controller role", obj: ec2Class("x", "AdminNodeRole", ""), ctl: ctlNone,
			warn: codes(PermissionChecksSkipped), msgs: []string{"--controller-role"}},
		{name: "permission checks skipped for an instance profile", obj: ec2Class("x", "", "admin-profile"), ctl: ctlNone,
			warn: codes(PermissionChecksSkipped)},
		{name: "permission checks not announced offline", obj: ec2Class("x", "AdminNodeRole", ""), ctl: ctlNone, offline: true},

		// NodePool.
		{name: "nodepool with a good class", obj: nodePool("np", refEC2("default"))},
		{name: "nodepool with a good EKS class", obj: nodePool("np", refEKS("eks-default"))},
		{name: "nodepool v1beta1 reference", obj: nodePool("np", &NodeClassReference{APIVersion: "karpenter.k8s.aws/v1beta1", Kind: EC2NodeClassKind, Name: "default"})},
		{name: "nodepool v1beta1 reference to a broken class", obj: nodePool("np", &NodeClassReference{APIVersion: "karpenter.k8s.aws/v1beta1", Kind: EC2NodeClassKind, Name: "notrust"}),
			deny: codes(NodeClassInvalid), msgs: []string{"[RoleTrustMissingEC2]"}},
		{name: "nodepool without a reference", obj: nodePool("np", nil)},
		{name: "nodepool with an unsupported class kind", obj: nodePool("np", &NodeClassReference{Group: "karpenter.azure.com", Kind: "AKSNodeClass", Name: "default"}),
			warn: codes(NodeClassRefUnsupported), msgs: []string{"AKSNodeClass.karpenter.azure.com"}},
		// As an upstream example wrote it: the group carries a version,
		// which Karpenter's schema rejects.
		{name: "nodepool reference whose group carries a version", obj: nodePool("np", &NodeClassReference{Group: "karpenter.k8s.aws/v1", Kind: EC2NodeClassKind, Name: "default"}),
			warn: codes(NodeClassRefUnsupported), msgs: []string{"group karpenter.k8s.aws/v1 carries the version v1", "Set group: karpenter.k8s.aws"}},
		{name: "nodepool with an empty reference", obj: nodePool("np", &NodeClassReference{}),
			warn: codes(NodeClassRefUnsupported), msgs: []string{"(empty group/kind)"}},
		{name: "nodepool with a missing class", obj: nodePool("np", refEC2("gpu")),
			warn: codes(NodeClassNotFound), msgs: []string{`EC2NodeClass "gpu" does not exist (yet)`}},
		{name: "nodepool with a missing EKS class", obj: nodePool("np", refEKS("gpu")),
			warn: codes(NodeClassNotFound)},
		{name: "nodepool whose class cannot be read", obj: nodePool("np", refEC2("default")), classes: mapClasses{err: errors.New("etcdserver: request timed out")},
			warn: codes(NodeClassNotFound), msgs: []string{"could not be read (etcdserver: request timed out)"}},
		{name: "nodepool with a class denied as an ARN", obj: nodePool("np", refEC2("role-arn")),
			deny: codes(NodeClassInvalid), msgs: []string{`EC2NodeClass "role-arn" fails its checks`, "spec.role: [RoleIsARN]"}},
		{name: "nodepool with a class whose role may not be passed", obj: nodePool("np", refEC2("admin")),
			deny: codes(NodeClassInvalid), msgs: []string{"[PassRoleDenied]"}},
		{name: "nodepool with a broken class, offline", obj: nodePool("np", refEC2("role-arn")), offline: true,
			deny: codes(NodeClassInvalid)},
		{name: "nodepool with a class that only warns", obj: nodePool("np", refEC2("pathed")), offline: true},
		{name: "nodepool with a class under a limited controller", obj: nodePool("gpu-pool", refEC2("default")), ctl: ctlLimited,
			deny: codes(NodeClassInvalid), msgs: []string{"[LaunchDenied]", "karpenter.sh/nodepool=gpu-pool"}},
		{name: "nodepool with a broken EKS class", obj: nodePool("np", refEKS("eks-bad")),
			deny: codes(NodeClassInvalid), msgs: []string{`NodeClass (eks.amazonaws.com) "eks-bad" fails its checks`, "[RoleInvalidName]"}},

		// IAMUnavailable and IAMStale.
		{name: "IAM unavailable, allow", obj: ec2Class("x", demoRole, ""), wrap: unavailable,
			warn: codes(IAMUnavailable), msgs: []string{"--on-iam-error=allow", "GetRole", "SimulatePrincipalPolicy"}},
		{name: "IAM unavailable, deny", obj: ec2Class("x", demoRole, ""), wrap: unavailable, onIAMError: OnIAMErrorDeny,
			deny: codes(IAMUnavailable), msgs: []string{"--on-iam-error=deny", "Retry shortly"}},
		{name: "IAM unavailable for an instance profile, deny", obj: ec2Class("x", "", demoProfile), wrap: unavailable, onIAMError: OnIAMErrorDeny,
			deny: codes(IAMUnavailable), msgs: []string{"(GetInstanceProfile, SimulatePrincipalPolicy: timed out)"}},
		{name: "IAM unavailable does not hide format errors", obj: ec2Class("x", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ""), wrap: unavailable,
			deny: codes(RoleIsARN), warn: codes(IAMUnavailable)},
		{name: "IAM unavailable, deny, without a controller role", obj: ec2Class("x", demoRole, ""), wrap: unavailable, onIAMError: OnIAMErrorDeny, ctl: ctlNone,
			deny: codes(IAMUnavailable), warn: codes(PermissionChecksSkipped)},
		{name: "IAM unavailable offline is never asked", obj: ec2Class("x", demoRole, ""), wrap: unavailable, onIAMError: OnIAMErrorDeny, offline: true},
		{name: "only the simulator unavailable: IAM state still checked", obj: ec2Class("x", "KarpenterNodeRole-notrust", ""), wrap: onlyDecideUnavailable,
			deny: codes(RoleTrustMissingEC2), warn: codes(IAMUnavailable)},
		{name: "only the simulator unavailable, deny", obj: ec2Class("x", demoRole, ""), wrap: onlyDecideUnavailable, onIAMError: OnIAMErrorDeny,
			deny: codes(IAMUnavailable)},
		{name: "nodepool: IAM unavailable for its class, deny", obj: nodePool("np", refEC2("default")), wrap: unavailable, onIAMError: OnIAMErrorDeny,
			deny: codes(IAMUnavailable)},
		{name: "nodepool: IAM unavailable for its class, allow", obj: nodePool("np", refEC2("default")), wrap: unavailable,
			warn: codes(IAMUnavailable)},
		{name: "stale answers", obj: ec2Class("x", demoRole, ""), wrap: stale,
			warn: codes(IAMStale), msgs: []string{"up to 7m0s old"}},
		{name: "stale answers still deny", obj: ec2Class("x", "AdminNodeRole", ""), wrap: stale,
			deny: codes(PassRoleDenied), warn: codes(IAMStale)},
		{name: "nodepool: stale answers for its class", obj: nodePool("np", refEC2("default")), wrap: stale,
			warn: codes(IAMStale)},

		// The other extension codes.
		{name: "policy tests a context key the check does not supply", obj: ec2Class("x", demoRole, ""), wrap: missingContext,
			warn: codes(PermissionContextMissing), msgs: []string{"aws:SourceVpce"}},
		{name: "policy uses an unsupported condition operator", obj: ec2Class("x", demoRole, ""), wrap: unsupportedCondition,
			warn: codes(PolicyConditionUnsupported), msgs: []string{"IpAddressIfExists"}},
		{name: "policy tests aws:TagKeys without a set operator", obj: ec2Class("x", demoRole, ""), wrap: setOperatorMissing,
			warn: codes(PolicySetOperatorMissing), msgs: []string{"StringEquals aws:TagKeys", "ForAnyValue: or ForAllValues:"}},
	}, joinCases()...)
}

// newTestChecker builds the Checker a case describes over view.
func newTestChecker(t *testing.T, tc ruleCase, view authz.View, eks authz.EKSView) *Checker {
	t.Helper()
	cfg := Config{ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorAllow, EKS: eks, AWSAuth: tc.awsAuth}
	if tc.eks != nil {
		cfg.EKS = tc.eks(eks)
	}
	if tc.onIAMError != "" {
		cfg.OnIAMError = tc.onIAMError
	}
	if !tc.offline {
		cfg.IAM = view
		if tc.wrap != nil {
			cfg.IAM = tc.wrap(view)
		}
	}
	ctl := tc.ctl
	if ctl == "" {
		ctl = ctlKarpenter
	}
	if ctl != ctlNone {
		parsed, err := authz.ParseRoleARN(ctl)
		if err != nil {
			t.Fatalf("controller role %q: %v", ctl, err)
		}
		cfg.Controller = parsed
	}
	cfg.Classes = tc.classes
	if cfg.Classes == nil {
		cfg.Classes = testClasses()
	}
	return NewChecker(cfg)
}

// checkObject runs the rules matching obj's kind.
func checkObject(ctx context.Context, c *Checker, obj runtime.Object) Verdict {
	switch o := obj.(type) {
	case *EC2NodeClass:
		return c.CheckEC2NodeClass(ctx, o)
	case *NodeClass:
		return c.CheckNodeClass(ctx, o)
	case *NodePool:
		return c.CheckNodePool(ctx, o)
	}
	panic(fmt.Sprintf("unexpected object %T", obj))
}

func findingCodes(fs []Finding) []Code {
	out := make([]Code, len(fs))
	for i, f := range fs {
		out[i] = f.Code
	}
	slices.Sort(out)
	return out
}

func sortedCodes(cs []Code) []Code {
	out := slices.Clone(cs)
	slices.Sort(out)
	if out == nil {
		out = []Code{}
	}
	return out
}

// runRuleCases runs the whole table against view and checks, for every
// case, the codes, the message substrings and the shape of every line.
func runRuleCases(t *testing.T, view authz.View, eks authz.EKSView) {
	_, isSnapshot := view.(*authz.Snapshot)
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestChecker(t, tc, view, eks)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			v := checkObject(ctx, c, tc.obj)

			gotDeny, gotWarn := findingCodes(v.Denials), findingCodes(v.Warnings)
			if gotDeny == nil {
				gotDeny = []Code{}
			}
			if gotWarn == nil {
				gotWarn = []Code{}
			}
			if !slices.Equal(gotDeny, sortedCodes(tc.deny)) || !slices.Equal(gotWarn, sortedCodes(tc.warn)) {
				t.Errorf("denials %v, warnings %v; want denials %v, warnings %v\n%s", gotDeny, gotWarn, sortedCodes(tc.deny), sortedCodes(tc.warn), dump(v))
			}
			if v.Allowed() != (len(tc.deny) == 0) {
				t.Errorf("Allowed() = %v with denials %v", v.Allowed(), gotDeny)
			}

			all := append(strings.Split(v.DenialMessage(), "\n"), v.WarningLines()...)
			text := strings.Join(all, "\n")
			want := tc.msgs
			if isSnapshot {
				want = append(slices.Clone(want), tc.snapshotMsgs...)
			}
			for _, s := range want {
				if !strings.Contains(text, s) {
					t.Errorf("no line contains %q:\n%s", s, text)
				}
			}
			checkLineShapes(t, v)
			checkFindingData(t, c, v)
		})
	}
}

// checkFindingData asserts what findings carry as data: a permission
// denial, the questions IAM denied, asked for the controller role; a
// NodeClassInvalid, the class's denials it quotes.
func checkFindingData(t *testing.T, c *Checker, v Verdict) {
	t.Helper()
	for _, f := range v.Denials {
		switch f.Code {
		case PassRoleDenied, InstanceProfileActionsDenied, InstanceProfileReadDenied, LaunchDenied:
			if len(f.Requests) == 0 {
				t.Errorf("[%s] carries no denied request", f.Code)
			}
			for _, q := range f.Requests {
				if q.Principal != c.ControllerARN() || q.Action == "" || q.Resource == "" || !strings.Contains(f.Message, q.Action) {
					t.Errorf("[%s] request %+v: want the controller's question on an action the message names", f.Code, q)
				}
			}
		case AutoModePassRoleDenied, AutoModeTagDenied:
			for _, q := range f.Requests {
				if q.Principal != sampleClusterRole || !strings.Contains(f.Message, q.Action) {
					t.Errorf("[%s] request %+v: want the cluster role's question on an action the message names", f.Code, q)
				}
			}
			if len(f.Requests) == 0 {
				t.Errorf("[%s] carries no denied request", f.Code)
			}
		case NodeClassInvalid:
			if len(f.Causes) == 0 {
				t.Errorf("[NodeClassInvalid] carries no cause")
			}
			for _, cause := range f.Causes {
				if !cause.Deny || !strings.Contains(f.Message, "["+string(cause.Code)+"]") {
					t.Errorf("[NodeClassInvalid] cause %s: want a denial its message quotes", cause.Code)
				}
			}
		default:
			if len(f.Requests) > 0 || len(f.Causes) > 0 || f.DeniedBy != "" {
				t.Errorf("[%s] carries permission data", f.Code)
			}
		}
	}
}

// checkLineShapes asserts what the contract says of every line: a denial is
// one line "<field>: [<Code>] ...", a warning "[<Code>] <field>: ..." under
// 256 characters, and messages are valid UTF-8 with no line break.
func checkLineShapes(t *testing.T, v Verdict) {
	t.Helper()
	if msg := v.DenialMessage(); len(v.Denials) > 0 {
		if n := strings.Count(msg, "\n") + 1; n != len(v.Denials) {
			t.Errorf("denial message has %d lines for %d denials:\n%s", n, len(v.Denials), msg)
		}
	}
	for _, f := range v.Denials {
		line := f.DenialLine()
		prefix := fmt.Sprintf("%s: [%s] ", f.Field, f.Code)
		if !strings.HasPrefix(line, prefix) {
			t.Errorf("denial line %q does not start with %q", line, prefix)
		}
		checkMessage(t, f)
	}
	for i, f := range v.Warnings {
		line := v.WarningLines()[i]
		prefix := fmt.Sprintf("[%s] %s: ", f.Code, f.Field)
		if !strings.HasPrefix(line, prefix) {
			t.Errorf("warning line %q does not start with %q", line, prefix)
		}
		if len(line) >= 256 {
			t.Errorf("warning line is %d bytes, want < 256: %q", len(line), line)
		}
		if strings.ContainsAny(line, "\r\n") || !utf8.ValidString(line) {
			t.Errorf("warning line is not one valid UTF-8 line: %q", line)
		}
		checkMessage(t, f)
	}
}

func checkMessage(t *testing.T, f Finding) {
	t.Helper()
	if f.Field == nil {
		t.Errorf("[%s] has no field", f.Code)
	}
	if f.Message == "" {
		t.Errorf("[%s] has an empty message", f.Code)
	}
	if strings.ContainsAny(f.Message, "\r\n") {
		t.Errorf("[%s] message spans lines: %q", f.Code, f.Message)
	}
	if !utf8.ValidString(f.Message) {
		t.Errorf("[%s] message is not valid UTF-8: %q", f.Code, f.Message)
	}
}

func dump(v Verdict) string {
	var b strings.Builder
	for _, f := range v.Denials {
		b.WriteString("  deny: " + f.DenialLine() + "\n")
	}
	for _, l := range v.WarningLines() {
		b.WriteString("  warn: " + l + "\n")
	}
	return b.String()
}
