package rules

import (
	"context"
	"errors"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The node-join rows of the rules table. The sample's cluster "demo" is in
// API_AND_CONFIG_MAP mode with EKS Auto Mode compute enabled; its access
// entries are in the snapshot's AccessEntries section.
func joinCases() []ruleCase {
	const (
		acct   = "arn:aws:iam::111122223333:role/"
		line   = "system:node:{{EC2PrivateDNSName}}, groups: [system:bootstrappers, system:nodes]}"
		legacy = "KarpenterNodeRole-legacy"
	)
	mapped := func(roles ...RoleMapping) AWSAuthSource {
		return StaticAWSAuth{Auth: AWSAuth{Found: true, Roles: roles}}
	}
	nodes := []string{"system:bootstrappers", "system:nodes"}
	const nodeName = "system:node:{{EC2PrivateDNSName}}"
	empty := mapped()
	spot := func(op string, values ...string) *NodePool {
		np := nodePool("spot", refEC2("default"))
		np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: capacityTypeKey, Operator: op, Values: values}}
		return np
	}
	tagged := func(tags map[string]string) *NodeClass {
		nc := eksClass("tagged", "EKSAutoNodeRole-demo", "")
		nc.Spec.Tags = tags
		return nc
	}
	return []ruleCase{
		// Access entries (the cluster uses them).
		{name: "join: access entry of the exact ARN with its path", obj: ec2Class("x", "team/KarpenterNodeRole-team", ""),
			deny: codes(PassRoleDenied), warn: codes(RoleHasPath)},
		{name: "join: no access entry, not in aws-auth", obj: ec2Class("x", "KarpenterNodeRole-noentry", ""), awsAuth: empty,
			deny: codes(NodeAccessEntryMissing), msgs: []string{
				"cluster demo (authenticationMode API_AND_CONFIG_MAP) has no access entry for node role " + acct + "KarpenterNodeRole-noentry nor does kube-system/aws-auth map it",
				"aws eks create-access-entry --cluster-name demo --principal-arn " + acct + "KarpenterNodeRole-noentry --type EC2_LINUX"}},
		{name: "join: no access entry, but mapped in aws-auth", obj: ec2Class("x", "KarpenterNodeRole-noentry", ""),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-noentry", Username: nodeName, Groups: nodes})},
		{name: "join: no access entry, API mode", obj: ec2Class("x", "KarpenterNodeRole-noentry", ""), eks: mode(authz.AuthModeAPI),
			deny: codes(NodeAccessEntryMissing), msgs: []string{"(authenticationMode API) has no access entry"}},
		{name: "join: access entry of a non-node type", obj: ec2Class("x", "KarpenterNodeRole-standard", ""),
			deny: codes(NodeAccessEntryWrongType), msgs: []string{"has type STANDARD; nodes need EC2_LINUX or EC2_WINDOWS", "--type EC2_LINUX"}},

		// aws-auth (the cluster reads it).
		{name: "join: aws-auth maps the role with its path", obj: ec2Class("x", legacy, ""),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "legacy/" + legacy, Groups: nodes}),
			deny:    codes(AWSAuthRoleHasPath, PassRoleDenied),
			msgs:    []string{"maps node role " + acct + "legacy/" + legacy + " by its ARN with the path", "{rolearn: " + acct + legacy + ", username: " + line}},
		{name: "join: aws-auth maps the role without the node groups", obj: ec2Class("x", "KarpenterNodeRole-nogroups", ""),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-nogroups", Groups: []string{"system:nodes"}}),
			deny:    codes(AWSAuthGroupsMissing), msgs: []string{"to groups [system:nodes], lacking system:bootstrappers, so"}},
		{name: "join: aws-auth maps the role to another username", obj: ec2Class("x", "KarpenterNodeRole-noentry", ""),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-noentry", Username: "system:node:{{SessionName}}", Groups: nodes}),
			deny:    codes(AWSAuthUsernameWrong), msgs: []string{
				"kube-system/aws-auth maps node role " + acct + "KarpenterNodeRole-noentry to username system:node:{{SessionName}}, but the Node authorizer serves only users in system:nodes named system:node:<nodeName>",
				"Write its mapRoles entry as {rolearn: " + acct + "KarpenterNodeRole-noentry, username: " + line}},
		{name: "join: aws-auth maps the role without a username", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-demo", Groups: nodes}),
			deny:    codes(AWSAuthUsernameWrong), msgs: []string{"maps node role " + acct + "KarpenterNodeRole-demo to no username, but"}},
		{name: "join: aws-auth maps a Windows node role under another username", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-demo", Username: "system:node:{{SessionName}}", Groups: append(nodes, "eks:kube-proxy-windows")}),
			deny:    codes(AWSAuthUsernameWrong), msgs: []string{"Write its mapRoles entry as {rolearn: " + acct + "KarpenterNodeRole-demo, username: system:node:{{EC2PrivateDNSName}}, groups: [system:bootstrappers, system:nodes, eks:kube-proxy-windows]}"}},
		{name: "join: aws-auth maps a Windows node role with its extra group", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-demo", Username: nodeName, Groups: append(nodes, "eks:kube-proxy-windows")})},
		{name: "join: aws-auth maps the role twice, once right", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-demo", Username: "KarpenterNodeRole-demo", Groups: nodes},
				RoleMapping{RoleARN: acct + "KarpenterNodeRole-demo", Username: nodeName, Groups: nodes})},
		{name: "join: aws-auth username wrong and groups missing: the groups first", obj: ec2Class("x", "KarpenterNodeRole-nogroups", ""),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-nogroups", Username: "nodes", Groups: []string{"system:nodes"}}),
			deny:    codes(AWSAuthGroupsMissing)},
		{name: "join: CONFIG_MAP cluster, role not in aws-auth", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: empty, deny: codes(AWSAuthRoleMissing), msgs: []string{"kube-system/aws-auth does not map node role " + acct + "KarpenterNodeRole-demo", "Add the mapRoles entry {rolearn: " + acct + "KarpenterNodeRole-demo"}},
		{name: "join: CONFIG_MAP cluster without aws-auth", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: StaticAWSAuth{}, deny: codes(AWSAuthRoleMissing), msgs: []string{"has no kube-system/aws-auth ConfigMap"}},
		{name: "join: CONFIG_MAP cluster, role mapped", obj: ec2Class("x", "", "team-profile"), eks: mode(authz.AuthModeConfigMap),
			awsAuth: mapped(RoleMapping{RoleARN: acct + "KarpenterNodeRole-team", Username: nodeName, Groups: nodes}), deny: codes(PassRoleDenied)},
		{name: "join: CONFIG_MAP cluster, aws-auth unreadable", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: mode(authz.AuthModeConfigMap),
			awsAuth: StaticAWSAuth{Err: errors.New(`configmaps "aws-auth" is forbidden`)},
			warn:    codes(NodeJoinChecksSkipped), msgs: []string{"aws-auth (reading kube-system/aws-auth: configmaps \"aws-auth\" is forbidden)"}},

		// Skipped, never a silent pass.
		{name: "join: EKS unavailable", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: eksDown,
			warn: codes(NodeJoinChecksSkipped), msgs: []string{"node join (DescribeCluster: AccessDeniedException: not authorized)"}},
		{name: "join: no EKS source", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: func(authz.EKSView) authz.EKSView { return nil },
			warn: codes(NodeJoinChecksSkipped), msgs: []string{"no EKS source"}},
		{name: "join: cluster not found", obj: ec2Class("x", "KarpenterNodeRole-demo", ""), eks: renamed,
			warn: codes(NodeJoinChecksSkipped), msgs: []string{"EKS has no cluster demo in region us-west-2"}},

		// EKS Auto Mode.
		{name: "auto mode: entry without AmazonEKSAutoNodePolicy", obj: eksClass("x", "EKSAutoNodeRole-nopolicy", ""),
			deny: codes(NodeAccessPolicyMissing), msgs: []string{"--policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSAutoNodePolicy"}},
		{name: "auto mode: a Karpenter node role's EC2_LINUX entry", obj: eksClass("x", "KarpenterNodeRole-demo", ""),
			deny: codes(NodeAccessEntryWrongType, AutoModePassRoleDenied),
			msgs: []string{"nodes need EC2", "EKS Auto Mode's cluster role " + acct + "EKSClusterRole-demo may not iam:PassRole " + acct + "KarpenterNodeRole-demo to ec2.amazonaws.com"}},
		{name: "auto mode: role under a path without an access entry", obj: eksClass("x", "EKSAutoNodeRole-path", ""), awsAuth: empty,
			deny: codes(NodeAccessEntryMissing), warn: codes(AutoModeRoleHasPath), msgs: []string{"has the path /eks/: EKS Auto Mode nodes stayed NotReady", "--type EC2, then associate AmazonEKSAutoNodePolicy"}},
		{name: "auto mode: tags the cluster role may launch with", obj: tagged(map[string]string{"team": "payments"})},
		{name: "auto mode: tags the cluster role may not launch with", obj: tagged(map[string]string{"team": "payments", "cost-center": "42"}),
			deny: codes(AutoModeTagDenied), msgs: []string{"may not ec2:RunInstances, ec2:CreateFleet, ec2:CreateLaunchTemplate with the class's tags (eks:eks-cluster-name=demo, cost-center=42, team=payments)"}},
		{name: "auto mode: compute not enabled", obj: eksClass("x", "EKSAutoNodeRole-demo", ""), eks: noAutoMode,
			warn: codes(NodeJoinChecksSkipped), msgs: []string{"cluster demo does not have Auto Mode compute enabled"}},

		// Spot.
		{name: "spot: service-linked role exists", obj: spot("In", "spot", "on-demand")},
		{name: "spot: no service-linked role, controller may not create it", obj: spot("In", "spot"), wrap: withoutSpotRole,
			warn: codes(SpotServiceLinkedRoleMissing), msgs: []string{"no AWSServiceRoleForEC2Spot and role KarpenterControllerRole may not create it", "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"}},
		{name: "spot: not allowed, nothing asked", obj: spot("NotIn", "spot"), wrap: withoutSpotRole},
		{name: "spot: Auto Mode cluster role may not create it", obj: func() *NodePool {
			np := nodePool("spot", refEKS("eks-default"))
			np.Spec.Template.Spec.Requirements = []NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "Exists"}}
			return np
		}(), wrap: withoutSpotRole, warn: codes(SpotServiceLinkedRoleMissing), msgs: []string{"role EKSClusterRole-demo may not create it"}},
	}
}

// eksEdit changes what inner says about the cluster.
type eksEdit struct {
	authz.EKSView
	edit func(*authz.Cluster) error
}

func (e eksEdit) Cluster(ctx context.Context, name string) (authz.Cluster, error) {
	c, err := e.EKSView.Cluster(ctx, name)
	if err == nil {
		err = e.edit(&c)
	}
	return c, err
}

func mode(m string) func(authz.EKSView) authz.EKSView {
	return func(v authz.EKSView) authz.EKSView {
		return eksEdit{v, func(c *authz.Cluster) error { c.AuthenticationMode = m; return nil }}
	}
}

func eksDown(v authz.EKSView) authz.EKSView {
	return eksEdit{v, func(*authz.Cluster) error {
		return &authz.UnavailableError{Service: "EKS", Op: "DescribeCluster", Err: apiError{"AccessDeniedException", "not authorized"}}
	}}
}

func renamed(v authz.EKSView) authz.EKSView {
	return eksEdit{v, func(*authz.Cluster) error { return &authz.NotFoundError{Kind: "EKS cluster", Name: testCluster} }}
}

func noAutoMode(v authz.EKSView) authz.EKSView {
	return eksEdit{v, func(c *authz.Cluster) error { c.AutoMode = false; return nil }}
}

type apiError struct{ code, msg string }

func (e apiError) Error() string        { return e.code + ": " + e.msg }
func (e apiError) ErrorCode() string    { return e.code }
func (e apiError) ErrorMessage() string { return e.msg }

// hideRole makes IAM answer that a role does not exist.
type hideRole struct {
	authz.View
	name string
}

func (h hideRole) Role(ctx context.Context, name string) (authz.Role, error) {
	if name == h.name {
		return authz.Role{}, &authz.NotFoundError{Kind: "role", Name: name}
	}
	return h.View.Role(ctx, name)
}

func withoutSpotRole(v authz.View) authz.View { return hideRole{v, authz.SpotServiceLinkedRoleName} }

func TestAllowsSpot(t *testing.T) {
	for _, tc := range []struct {
		reqs []NodeSelectorRequirement
		want bool
	}{
		{nil, false},
		{[]NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: "In", Values: []string{"amd64"}}}, false},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "In", Values: []string{"on-demand"}}}, false},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "In", Values: []string{"on-demand", "spot"}}}, true},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "NotIn", Values: []string{"reserved"}}}, true},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "NotIn", Values: []string{"spot"}}}, false},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "Exists"}}, true},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "DoesNotExist"}}, false},
		{[]NodeSelectorRequirement{{Key: capacityTypeKey, Operator: "Exists"}, {Key: capacityTypeKey, Operator: "In", Values: []string{"on-demand"}}}, false},
	} {
		if got := allowsSpot(tc.reqs); got != tc.want {
			t.Errorf("allowsSpot(%+v) = %v, want %v", tc.reqs, got, tc.want)
		}
	}
}

func TestParseAWSAuth(t *testing.T) {
	a, err := ParseAWSAuth(map[string]string{"mapRoles": `
- rolearn: arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
- rolearn: arn:aws:iam::111122223333:role/KarpenterNodeRole-demo
  username: system:node:{{EC2PrivateDNSName}}
  groups: [system:nodes]
`})
	if err != nil {
		t.Fatal(err)
	}
	team, _ := authz.ParseRoleARN("arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team")
	match, withPath := a.mappingsOf(team)
	if len(match) != 0 || len(withPath) != 1 || !withPath[0].hasNodeGroups() {
		t.Errorf("team role: match %v, withPath %v", match, withPath)
	}
	demo, _ := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterNodeRole-demo")
	match, withPath = a.mappingsOf(demo)
	if len(match) != 1 || len(withPath) != 0 || match[0].hasNodeGroups() {
		t.Errorf("demo role: match %v, withPath %v", match, withPath)
	}
	if _, err := ParseAWSAuth(map[string]string{"mapRoles": "- rolearn: [unclosed"}); err == nil {
		t.Error("a mapRoles that does not parse: no error")
	}
	if a, err := ParseAWSAuth(nil); err != nil || !a.Found || len(a.Roles) != 0 {
		t.Errorf("empty data: %+v, %v", a, err)
	}
}
