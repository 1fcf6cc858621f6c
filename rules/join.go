package rules

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The node-join rules: a node launched with the class's role must be able
// to register with the cluster. Clusters in API or API_AND_CONFIG_MAP
// authentication mode look the role up in their access entries, by its
// exact ARN (path included); clusters in CONFIG_MAP mode, and
// API_AND_CONFIG_MAP ones without an entry, in the aws-auth ConfigMap, by
// its ARN without the path.

// autoNodePolicy is the access policy an EKS Auto Mode node role's entry
// must have associated.
const autoNodePolicy = "AmazonEKSAutoNodePolicy"

const joinCheck = "node join"

// clusterRule asks for the cluster, beside the class's first questions.
// It gives the cluster; the join rules judge it.
var clusterRule = &Rule{
	Name:  "cluster",
	Gives: []fact{factCluster},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if cq := c.clusterQueries(); cq != nil && (o.iam || o.spotAuto) {
			q.query("cluster", cq...)
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
		o.cluster, o.clusterAsked = a.one("cluster")
	},
}

// joinRule: nodes with the node role can join the cluster: the access
// entries of its exact ARN, or aws-auth, as the cluster's authentication
// mode reads them.
var joinRule = &Rule{
	Name:      "node join",
	Demotable: true,
	Codes: []Code{NodeAccessEntryMissing, NodeAccessEntryWrongType, NodeAccessPolicyMissing,
		AWSAuthRoleMissing, AWSAuthRoleHasPath, AWSAuthGroupsMissing, AWSAuthUsernameWrong,
		AutoModeRoleHasPath, NodeJoinChecksSkipped},
	Fields: []string{"spec.role", "spec.instanceProfile"},
	Needs:  []fact{factNodeRole, factCluster},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.nodeRoleFound {
			return
		}
		p, skip := c.joinable(o)
		if skip != "" {
			return
		}
		if p.cluster.UsesAccessEntries() {
			q.query("entry", Query{Kind: QueryAccessEntry, Name: p.role.String()})
			if p.role.Path != "/" {
				q.query("pathless", Query{Kind: QueryAccessEntry, Name: p.role.WithoutPath().String()})
			}
		}
		if p.cluster.UsesConfigMap() {
			q.query("awsAuth", Query{Kind: QueryAWSAuth})
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if !o.nodeRoleFound {
			return
		}
		p, skip := c.joinable(o)
		if skip != "" {
			o.n.skip(joinCheck, skip)
			return
		}
		o.n.served(p.cluster.Served)
		entryFound := c.judgeJoin(v, &o.n, o.cl, o.path, p, a)
		if o.cl.eks && p.role.Path != "/" && !entryFound {
			v.add(warn(AutoModeRoleHasPath, o.path,
				"node role %s has the path %s: EKS Auto Mode nodes stayed NotReady with such roles (the access entry was looked up without the path). Prefer a role without a path",
				p.role.Name, p.role.Path))
		}
	},
}

// clusterQueries asks for the cluster, when there is an EKS view to ask.
func (c *Checker) clusterQueries() []Query {
	if c.cfg.EKS == nil || c.cfg.ClusterName == "" {
		return nil
	}
	return []Query{{Kind: QueryCluster, Name: c.cfg.ClusterName}}
}

// joinPlan is what the join rules know of the cluster and the node role.
type joinPlan struct {
	cluster authz.Cluster
	role    authz.RoleARN
}

// joinable is the cluster and the node role the join rules judge, or why
// they cannot (skip, for NodeJoinChecksSkipped).
func (c *Checker) joinable(o *subject) (p joinPlan, skip string) {
	switch {
	case c.cfg.EKS == nil:
		return p, "no EKS source: give --iam-snapshot a cluster section, or run with EKS access"
	case c.cfg.ClusterName == "":
		return p, "no --cluster-name"
	case !o.clusterAsked:
		return p, "the cluster was not asked"
	}
	a := o.cluster
	switch {
	case errors.Is(a.Err, authz.ErrNotFound):
		return p, fmt.Sprintf("EKS has no cluster %s in region %s; check --cluster-name and --region", c.cfg.ClusterName, c.cfg.Region)
	case a.Err != nil:
		return p, "DescribeCluster: " + errSummary(a.Err)
	}
	role, err := authz.ParseRoleARN(o.nodeRole.ARN)
	if err != nil {
		return p, "the node role's ARN " + shown(o.nodeRole.ARN) + " does not parse"
	}
	return joinPlan{cluster: a.Cluster, role: role}, ""
}

// judgeJoin judges the access entry and aws-auth answers; it reports
// whether an access entry for the role's exact ARN was found.
func (c *Checker) judgeJoin(v *Verdict, n *notes, cl class, path *field.Path, p joinPlan, as Answers) bool {
	mode := p.cluster.AuthenticationMode
	entryUnknown := false
	if entry, ok := as.one("entry"); ok {
		switch {
		case entry.Err == nil:
			n.served(entry.Entry.Served)
			c.judgeEntry(v, cl, path, p, entry.Entry)
			return true
		case !errors.Is(entry.Err, authz.ErrNotFound):
			n.skip("access entry", "DescribeAccessEntry: "+errSummary(entry.Err))
			entryUnknown = true
		}
	}
	if entryUnknown && (!p.cluster.UsesConfigMap() || cl.eks) {
		return false
	}
	// EKS Auto Mode's nodes join through access entries only.
	if !p.cluster.UsesConfigMap() || cl.eks {
		v.add(c.entryMissing(cl, path, p, as, ""))
		return false
	}
	auth, _ := as.one("awsAuth")
	if auth.Err != nil {
		if !entryUnknown {
			n.skip("aws-auth", "reading kube-system/aws-auth: "+truncate(oneLine(auth.Err.Error()), 100))
		}
		return false
	}
	match, withPath := auth.AWSAuth.mappingsOf(p.role)
	var misnamed []RoleMapping
	for _, m := range match {
		if m.hasNodeGroups() {
			if m.Username == nodeUsername {
				return false
			}
			misnamed = append(misnamed, m)
		}
	}
	line := awsAuthLine(p.role)
	switch {
	case entryUnknown:
		// The entry may exist; aws-auth alone cannot condemn the role.
		n.skip("aws-auth", "the role is not mapped there, and its access entry could not be read")
	case len(misnamed) > 0:
		// The entry to write keeps the mapping's groups (a Windows node
		// role's eks:kube-proxy-windows too).
		v.add(deny(AWSAuthUsernameWrong, path,
			"kube-system/aws-auth maps node role %s to %s, but the Node authorizer serves only users in system:nodes named system:node:<nodeName>, so its nodes' kubelets could not register. Write its mapRoles entry as {rolearn: %s, username: %s, groups: [%s]}",
			p.role.WithoutPath(), usernameShown(misnamed[0].Username), p.role.WithoutPath(), nodeUsername, strings.Join(misnamed[0].Groups, ", ")))
	case len(match) > 0:
		v.add(deny(AWSAuthGroupsMissing, path,
			"kube-system/aws-auth maps node role %s to groups [%s], lacking %s, so its nodes could not register. Write its mapRoles entry as %s",
			p.role.WithoutPath(), strings.Join(match[0].Groups, ", "), strings.Join(match[0].missingNodeGroups(), " and "), line))
	case len(withPath) > 0:
		v.add(deny(AWSAuthRoleHasPath, path,
			"kube-system/aws-auth maps node role %s by its ARN with the path, which EKS never matches (aws-auth role ARNs must not include the path), so its nodes would never join. Write the mapRoles entry as %s",
			withPath[0].RoleARN, line))
	case mode == authz.AuthModeAPIAndConfigMap:
		v.add(c.entryMissing(cl, path, p, as, " nor does kube-system/aws-auth map it"))
	case !auth.AWSAuth.Found:
		v.add(deny(AWSAuthRoleMissing, path,
			"cluster %s reads aws-auth (authenticationMode %s) but has no kube-system/aws-auth ConfigMap, so nodes with role %s would never join. Create it with the mapRoles entry %s",
			p.cluster.Name, mode, p.role, line))
	default:
		v.add(deny(AWSAuthRoleMissing, path,
			"cluster %s reads aws-auth (authenticationMode %s) and kube-system/aws-auth does not map node role %s, so its nodes would never join. Add the mapRoles entry %s",
			p.cluster.Name, mode, p.role, line))
	}
	return false
}

// entryMissing is the denial of a role without an access entry; also says
// what else was looked at.
func (c *Checker) entryMissing(cl class, path *field.Path, p joinPlan, as Answers, also string) Finding {
	typ := authz.AccessEntryEC2Linux
	then := ""
	if cl.eks {
		typ = authz.AccessEntryEC2
		then = ", then associate " + autoNodePolicy
	}
	hint := ""
	if pl, ok := as.one("pathless"); ok && pl.Err == nil {
		hint = fmt.Sprintf(" (the entry for %s, without the path, does not count: EKS matches the exact ARN)", p.role.WithoutPath())
	}
	return deny(NodeAccessEntryMissing, path,
		"cluster %s (authenticationMode %s) has no access entry for node role %s%s%s, so its nodes would launch and never join. Run: aws eks create-access-entry --cluster-name %s --principal-arn %s --type %s%s",
		p.cluster.Name, p.cluster.AuthenticationMode, p.role, hint, also, p.cluster.Name, p.role, typ, then)
}

// judgeEntry judges a found access entry: its type, and for EKS Auto Mode
// its access policy.
func (c *Checker) judgeEntry(v *Verdict, cl class, path *field.Path, p joinPlan, e authz.AccessEntry) {
	want := []string{authz.AccessEntryEC2Linux, authz.AccessEntryEC2Windows}
	if cl.eks {
		want = []string{authz.AccessEntryEC2}
	}
	if !containsString(want, e.Type) {
		v.add(deny(NodeAccessEntryWrongType, path,
			"the access entry of node role %s in cluster %s has type %s; nodes need %s, so they would not join. Delete it and run: aws eks create-access-entry --cluster-name %s --principal-arn %s --type %s",
			p.role, p.cluster.Name, shown(e.Type), strings.Join(want, " or "), p.cluster.Name, p.role, want[0]))
		return
	}
	if cl.eks && !e.HasPolicy(autoNodePolicy) {
		v.add(deny(NodeAccessPolicyMissing, path,
			"the access entry of EKS Auto Mode node role %s has no %s associated, so its nodes would not join. Run: aws eks associate-access-policy --cluster-name %s --principal-arn %s --policy-arn %s --access-scope type=cluster",
			p.role, autoNodePolicy, p.cluster.Name, p.role, authz.EKSAccessPolicyARN(c.partition, autoNodePolicy)))
	}
}

// nodeUsername is the username an aws-auth mapping of a node role must
// give, as EKS documents it for every AMI family (Amazon Linux,
// Bottlerocket, Windows): the authenticator renders it to
// system:node:<the instance's private DNS name>, the name the kubelet
// registers under, which is what the Node authorizer checks.
const nodeUsername = "system:node:{{EC2PrivateDNSName}}"

// usernameShown says which username a mapping gives, for a message.
func usernameShown(u string) string {
	if u == "" {
		return "no username"
	}
	return "username " + shown(u)
}
