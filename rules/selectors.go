package rules

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"k8s.io/apimachinery/pkg/api/equality"
)

// The selector rules: what an EC2NodeClass's subnetSelectorTerms,
// securityGroupSelectorTerms, amiSelectorTerms and
// capacityReservationSelectorTerms resolve to in EC2, each term on its
// own, as Karpenter (karpenter-provider-aws 1.15.1: pkg/providers/subnet,
// securitygroup, amifamily, capacityreservation) resolves it:
//
//   - a subnet term is its id (filter subnet-id), else its tags;
//   - a security group term is its id (group-id), else its name
//     (group-name; Karpenter then ignores the term's tags), else its tags;
//   - an AMI term is an alias (the SSM parameters of the family's
//     EKS-optimized images for the cluster's Kubernetes version, then
//     those image IDs), an ssmParameter (its value, then that image), an
//     id (image-id), or a name and tags with owners (the term's owner;
//     self and amazon when a name is given without one); images must be
//     available, deprecated ones count;
//   - a capacity reservation term is its id and, when it has tags or
//     instanceMatchCriteria, a query by tags, ownerID and criteria;
//     reservations must be active and not past their end date;
//   - a tag value "*" means any value (filter tag-key), and EC2's filter
//     wildcards * and ? apply to values.
//
// plan → ask → judge: planSelectors and planImageIDs are pure, the asker
// asks, judgeSelectors turns a Resolution into findings.

// ec2Terms are an EC2NodeClass's terms.
func ec2Terms(spec EC2NodeClassSpec) selectorTerms {
	var t selectorTerms
	for l := selectorList(0); l < numLists; l++ {
		t[l] = termsOf(spec, l)
	}
	return t
}

// Karpenter's AMI families, as spec.amiFamily and aliases name them.
const (
	familyAL2          = "AL2"
	familyAL2023       = "AL2023"
	familyBottlerocket = "Bottlerocket"
	familyWindows2019  = "Windows2019"
	familyWindows2022  = "Windows2022"
	familyWindows2025  = "Windows2025"
	familyCustom       = "Custom"
)

// aliasUnsupported says why Karpenter 1.15.1 refuses an alias family for
// Kubernetes version k8s, "" when it does not: AL2 ends with 1.33, Windows
// Server 2025 starts with 1.35.
func aliasUnsupported(family, k8s string) string {
	minor, err := strconv.Atoi(strings.TrimPrefix(k8s, "1."))
	if err != nil || !strings.HasPrefix(k8s, "1.") {
		return ""
	}
	switch {
	case family == familyAL2 && minor >= 33:
		return "AL2 aliases are not supported on Kubernetes 1.33 and later (EKS publishes no AL2 images for them)"
	case family == familyWindows2025 && minor < 35:
		return "Windows Server 2025 needs Kubernetes 1.35 or later"
	}
	return ""
}

// tagFilters are a term's tags as Karpenter's filters.
func tagFilters(tags map[string]string) []authz.Filter {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fs := make([]authz.Filter, 0, len(keys))
	for _, k := range keys {
		if tags[k] == "*" {
			fs = append(fs, authz.Filter{Name: "tag-key", Values: []string{k}})
		} else {
			fs = append(fs, authz.Filter{Name: "tag:" + k, Values: []string{tags[k]}})
		}
	}
	return fs
}

var availableImage = authz.Filter{Name: "state", Values: []string{"available"}}

func ec2Q(q authz.EC2Query) Query { return Query{Kind: QueryEC2, EC2: q} }

// subnetQuery is the Describe call of one subnet term.
func subnetQuery(t SelectorTerm) authz.EC2Query {
	if t.ID != "" {
		return authz.EC2Query{Resource: authz.EC2Subnets, Filters: []authz.Filter{{Name: "subnet-id", Values: []string{t.ID}}}}
	}
	return authz.EC2Query{Resource: authz.EC2Subnets, Filters: tagFilters(t.Tags)}
}

// groupQuery is the Describe call of one security group term.
func groupQuery(t SelectorTerm) authz.EC2Query {
	switch {
	case t.ID != "":
		return authz.EC2Query{Resource: authz.EC2SecurityGroups, Filters: []authz.Filter{{Name: "group-id", Values: []string{t.ID}}}}
	case t.Name != "":
		return authz.EC2Query{Resource: authz.EC2SecurityGroups, Filters: []authz.Filter{{Name: "group-name", Values: []string{t.Name}}}}
	}
	return authz.EC2Query{Resource: authz.EC2SecurityGroups, Filters: tagFilters(t.Tags)}
}

// imageQuery is the Describe call of an id, name or tags AMI term.
func imageQuery(t SelectorTerm) authz.EC2Query {
	if t.ID != "" {
		return imageIDQuery([]string{t.ID})
	}
	q := authz.EC2Query{Resource: authz.EC2Images}
	if t.Owner != "" {
		q.Owners = []string{t.Owner}
	}
	if t.Name != "" {
		if t.Owner == "" {
			q.Owners = []string{"self", "amazon"}
		}
		q.Filters = append(q.Filters, authz.Filter{Name: "name", Values: []string{t.Name}})
	}
	q.Filters = append(q.Filters, tagFilters(t.Tags)...)
	q.Filters = append(q.Filters, availableImage)
	return q
}

func imageIDQuery(ids []string) authz.EC2Query {
	ids = append([]string(nil), ids...)
	sort.Strings(ids)
	return authz.EC2Query{Resource: authz.EC2Images, Filters: []authz.Filter{{Name: "image-id", Values: ids}, availableImage}}
}

// reservationQueries are the Describe calls of one capacity reservation
// term.
func reservationQueries(t SelectorTerm) []authz.EC2Query {
	active := authz.Filter{Name: "state", Values: []string{"active"}}
	var qs []authz.EC2Query
	if t.ID != "" {
		qs = append(qs, authz.EC2Query{Resource: authz.EC2CapacityReservations, IDs: []string{t.ID}, Filters: []authz.Filter{active}})
	}
	if len(t.Tags) > 0 || t.InstanceMatchCriteria != "" {
		q := authz.EC2Query{Resource: authz.EC2CapacityReservations, Filters: []authz.Filter{active}}
		if t.OwnerID != "" {
			q.Filters = append(q.Filters, authz.Filter{Name: "owner-id", Values: []string{t.OwnerID}})
		}
		q.Filters = append(q.Filters, tagFilters(t.Tags)...)
		if t.InstanceMatchCriteria != "" {
			q.Filters = append(q.Filters, authz.Filter{Name: "instance-match-criteria", Values: []string{t.InstanceMatchCriteria}})
		}
		qs = append(qs, q)
	}
	return qs
}

// aliasFamily returns an alias's family and version ("al2023@latest" ->
// AL2023, latest).
func aliasFamily(alias string) (family, version string, ok bool) {
	name, version, found := strings.Cut(alias, "@")
	if !found || version == "" {
		return "", "", false
	}
	for _, f := range []string{familyAL2, familyAL2023, familyBottlerocket, familyWindows2019, familyWindows2022, familyWindows2025} {
		if strings.ToLower(f) == name {
			return f, version, true
		}
	}
	return "", "", false
}

// aliasParameters returns the SSM parameters Karpenter reads for an alias
// and Kubernetes version k8s ("1.34").
func aliasParameters(family, version, k8s string) []string {
	latest := version == "latest"
	var out []string
	switch family {
	case familyAL2023:
		for _, av := range []struct{ arch, variant string }{{"x86_64", "standard"}, {"x86_64", "nvidia"}, {"x86_64", "neuron"}, {"arm64", "standard"}, {"arm64", "nvidia"}} {
			name := "recommended"
			if !latest {
				name = fmt.Sprintf("amazon-eks-node-al2023-%s-%s-%s-%s", av.arch, av.variant, k8s, version)
			}
			out = append(out, fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/%s/%s/image_id", k8s, av.arch, av.variant, name))
		}
	case familyAL2:
		for _, v := range []struct{ dir, prefix string }{{"amazon-linux-2", "amazon-eks-node"}, {"amazon-linux-2-arm64", "amazon-eks-arm64-node"}, {"amazon-linux-2-gpu", "amazon-eks-gpu-node"}} {
			name := "recommended"
			if !latest {
				name = fmt.Sprintf("%s-%s-%s", v.prefix, k8s, version)
			}
			out = append(out, fmt.Sprintf("/aws/service/eks/optimized-ami/%s/%s/%s/image_id", k8s, v.dir, name))
		}
	case familyBottlerocket:
		v := strings.TrimLeft(version, "v")
		for _, variant := range []string{"", "-nvidia"} {
			for _, arch := range []string{"x86_64", "arm64"} {
				out = append(out, fmt.Sprintf("/aws/service/bottlerocket/aws-k8s-%s%s/%s/%s/image_id", k8s, variant, arch, v))
			}
		}
	case familyWindows2019, familyWindows2022, familyWindows2025:
		out = append(out, fmt.Sprintf("/aws/service/ami-windows-latest/Windows_Server-%s-English-Core-EKS_Optimized-%s/image_id", strings.TrimPrefix(family, "Windows"), k8s))
	}
	return out
}

// planSelectors is the first round for spec: one or more questions per
// term. k8s is the cluster's Kubernetes version, needed by an alias.
func planSelectors(spec EC2NodeClassSpec, k8s string) selectorPlan {
	return planTerms(ec2Terms(spec), k8s)
}

// planTerms is planSelectors of a class's terms, whatever its kind.
func planTerms(terms selectorTerms, k8s string) selectorPlan {
	var p selectorPlan
	add := func(l selectorList, qs ...Query) {
		idx := make([]int, len(qs))
		for i, q := range qs {
			idx[i] = len(p.queries)
			p.queries = append(p.queries, q)
		}
		p.terms[l] = append(p.terms[l], idx)
	}
	for _, t := range terms[listSubnets] {
		add(listSubnets, ec2Q(subnetQuery(t)))
	}
	for _, t := range terms[listGroups] {
		add(listGroups, ec2Q(groupQuery(t)))
	}
	for i, t := range terms[listImages] {
		switch {
		case t.Alias != "":
			family, version, ok := aliasFamily(t.Alias)
			switch {
			case !ok:
				p.skipped = append(p.skipped, fmt.Sprintf("%s (alias %s is not one Karpenter knows)", amiTermsPath.Index(i), quote(t.Alias)))
				add(listImages)
			case k8s == "":
				p.skipped = append(p.skipped, fmt.Sprintf("%s (alias %s needs the cluster's Kubernetes version: --kubernetes-version, or the snapshot's cluster section)", amiTermsPath.Index(i), t.Alias))
				add(listImages)
			case aliasUnsupported(family, k8s) != "":
				// Karpenter refuses the alias outright: it matches nothing.
				p.notes = append(p.notes, fmt.Sprintf("%s: %s", t.Alias, aliasUnsupported(family, k8s)))
				add(listImages)
				p.empty = append(p.empty, i)
			default:
				var qs []Query
				for _, name := range aliasParameters(family, version, k8s) {
					qs = append(qs, Query{Kind: QueryParameter, Name: name})
				}
				add(listImages, qs...)
			}
			p.viaSSM = append(p.viaSSM, true)
		case t.SSMParameter != "" && t.ID == "":
			add(listImages, Query{Kind: QueryParameter, Name: t.SSMParameter})
			p.viaSSM = append(p.viaSSM, true)
		default:
			add(listImages, ec2Q(imageQuery(t)))
			p.viaSSM = append(p.viaSSM, false)
		}
	}
	for _, t := range terms[listReservations] {
		var qs []Query
		for _, q := range reservationQueries(t) {
			qs = append(qs, ec2Q(q))
		}
		add(listReservations, qs...)
	}
	// The pods' subnets and security groups are selected as the node's.
	for _, t := range terms[listPodSubnets] {
		add(listPodSubnets, ec2Q(subnetQuery(t)))
	}
	for _, t := range terms[listPodGroups] {
		add(listPodGroups, ec2Q(groupQuery(t)))
	}
	return p
}

// termsRule asks the first round of the object's selector terms: each
// term's EC2 Describe call, and the SSM parameters behind image aliases
// and parameter terms. oldTermsRule is the same for an update's old
// object.
var (
	termsRule    = selectorTermsRule("selector terms", sideNew, factTerms)
	oldTermsRule = selectorTermsRule("old selector terms", sideOld, factOldTerms)
)

func selectorTermsRule(name string, side int, gives fact) *Rule {
	return &Rule{
		Name:   name,
		Fields: []string{"spec.subnetSelectorTerms", "spec.securityGroupSelectorTerms", "spec.amiSelectorTerms", "spec.capacityReservationSelectorTerms", "spec.amiFamily"},
		Gives:  []fact{gives},
		Plan: func(c *Checker, o *subject, q *Questions) {
			sd := &o.sides[side]
			if !sd.asked {
				return
			}
			sd.plan = planTerms(sd.terms, c.cfg.KubernetesVersion)
			q.query("terms", sd.plan.queries...)
		},
		Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
			if sd := &o.sides[side]; sd.asked {
				sd.first = a.all("terms")
			}
		},
	}
}

// imagesRule asks the second round, the images behind the SSM parameters,
// and gathers every answer per term: what the selectors resolve to.
// oldImagesRule is the same for an update's old object.
var (
	imagesRule    = selectorImagesRule("selector images", sideNew, factTerms, factResolution)
	oldImagesRule = selectorImagesRule("old selector images", sideOld, factOldTerms, factBefore)
)

func selectorImagesRule(name string, side int, needs, gives fact) *Rule {
	return &Rule{
		Name:   name,
		Fields: []string{"spec.amiSelectorTerms", "spec.amiFamily"},
		Needs:  []fact{needs},
		Gives:  []fact{gives},
		Plan: func(c *Checker, o *subject, q *Questions) {
			if sd := &o.sides[side]; sd.asked {
				q.query("images", sd.planImages()...)
			}
		},
		Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
			if sd := &o.sides[side]; sd.asked {
				sd.res = c.gather(sd, a.all("images"))
			}
		},
	}
}

// planImages is the second round: one DescribeImages of the images behind
// each image term's SSM parameters.
func (sd *selectorSide) planImages() []Query {
	p, as := sd.plan, sd.first
	var second []Query
	sd.secondOf = map[int]int{}
	sd.imageUnavail = map[int]string{}
	for i, idx := range p.terms[listImages] {
		if !p.viaSSM[i] || len(idx) == 0 {
			continue
		}
		var amis []string
		for _, j := range idx {
			a := as[j]
			switch {
			case a.Err == nil && strings.HasPrefix(a.Parameter.Value, "ami-"):
				amis = append(amis, a.Parameter.Value)
			case a.Err != nil && !errors.Is(a.Err, authz.ErrNotFound):
				sd.imageUnavail[i] = "GetParameter: " + errSummary(a.Err)
			}
		}
		if sd.imageUnavail[i] == "" && len(amis) > 0 {
			sd.secondOf[i] = len(second)
			second = append(second, ec2Q(imageIDQuery(amis)))
		}
	}
	return second
}

// gather is what the two rounds' answers resolve the terms to, per term.
func (c *Checker) gather(sd *selectorSide, as2 []Answer) Resolution {
	p, as := sd.plan, sd.first
	r := Resolution{skipped: p.skipped, notes: p.notes}
	for i, idx := range p.terms[listImages] {
		if !p.viaSSM[i] || sd.imageUnavail[i] != "" {
			continue
		}
		for _, j := range idx {
			if a := as[j]; a.Err == nil && strings.HasPrefix(a.Parameter.Value, "ami-") {
				r.served(a.Parameter.Served)
			}
		}
	}
	seen := map[string]bool{}
	for l := selectorList(0); l < numLists; l++ {
		for i, idx := range p.terms[l] {
			var tr termResult
			answers := make([]Answer, 0, len(idx))
			for _, j := range idx {
				answers = append(answers, as[j])
			}
			if l == listImages && p.viaSSM[i] {
				answers = nil
				if why := sd.imageUnavail[i]; why != "" {
					tr.unavailable = why
				} else if k, ok := sd.secondOf[i]; ok {
					answers = []Answer{as2[k]}
				} else if len(idx) == 0 && !containsInt(p.empty, i) {
					tr.unavailable = "not planned"
				}
			}
			for _, a := range answers {
				if a.Err != nil {
					tr.unavailable = a.EC2Op() + ": " + errSummary(a.Err)
					continue
				}
				if n := a.EC2.Truncated; n > 0 {
					tr.unavailable = fmt.Sprintf("%s: the term matches more than %d pages, more than one admission reads; narrow it", a.EC2Op(), n)
					continue
				}
				r.served(a.EC2.Served)
				c.collect(&r, &tr, l, a.EC2, seen)
			}
			r.terms[l] = append(r.terms[l], tr)
		}
	}
	return r
}

// poolsRule lists the NodePools using an EC2NodeClass, whose requirements
// its images must fit (not for a NodePool being admitted: that is its own
// finding, judgePoolImages).
var poolsRule = &Rule{
	Name:  "NodePools of the class",
	Gives: []fact{factPools},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if o.ec2 != nil && o.np == nil && c.cfg.NodePools != nil && c.resolvesSelectors(o.ec2.Spec) {
			q.query("pools", Query{Kind: QueryNodePools, Name: o.ec2.Name})
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
		if ans, ok := a.one("pools"); ok {
			o.pools, o.poolsErr = ans.NodePools, ans.Err
		}
	},
}

// selectorsRule judges the class's selector terms as they resolved. In
// offline mode (no IAM source) they are not resolved, as no IAM check is;
// with IAM but no EC2 source they are reported as skipped.
var selectorsRule = &Rule{
	Name: "selectors",
	Codes: []Code{SelectorTermMatchesNothing, SelectorMatchesNothing, CapacityReservationTermMatchesNothing,
		SubnetSecurityGroupVPCMismatch, ImageArchitectureMismatch, ImageFamilyMismatch, SelectorChecksSkipped},
	Fields: []string{"spec.subnetSelectorTerms", "spec.securityGroupSelectorTerms", "spec.amiSelectorTerms",
		"spec.capacityReservationSelectorTerms", "spec.amiFamily",
		"spec.podSubnetSelectorTerms", "spec.podSecurityGroupSelectorTerms"},
	Needs: []fact{factResolution, factPools},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		sd := &o.sides[sideNew]
		if c.cfg.IAM == nil || !sd.terms.some() {
			return
		}
		if c.cfg.EC2 == nil {
			o.sn.skipSelector("selectors", "no EC2 source: give --iam-snapshot the EC2 sections, or run with EC2 access")
			return
		}
		if o.eks != nil {
			if why := autoModeBoundsSkip(sd.terms); why != "" {
				o.sn.skipSelector(why, fmt.Sprintf("%s is past what one check resolves (%d terms, %d tags a term, tags EC2 could hold, %d-byte fields)",
					autoModeBoundsField(sd.terms), MaxSelectorTerms, MaxTermTags, MaxTermFieldBytes))
				return
			}
			c.judgeTerms(v, &o.sn, sd.terms, sd.res)
			return
		}
		if o.poolsErr != nil {
			o.sn.skipSelector("image architectures", "listing NodePools: "+truncate(oneLine(o.poolsErr.Error()), 80))
		}
		c.judgeSelectors(v, &o.sn, o.ec2.Spec, sd.res, o.pools)
	},
}

// selectorNotesRule reports, once, what the selector rules' answers said
// about AWS itself.
var selectorNotesRule = &Rule{
	Name:  "selector notes",
	Codes: []Code{SelectorChecksSkipped, IAMUnavailable, IAMStale},
	Finish: func(c *Checker, o *subject, v *Verdict) {
		o.sn.report(v, c.cfg.OnIAMError, &o.stale)
	},
}

// EC2Op names the API an EC2 answer came from, for a message.
func (a Answer) EC2Op() string {
	if a.op != "" {
		return a.op
	}
	return "EC2"
}

// collect adds one answer's resources to the term and, once, to r (the
// pod lists' to their own).
func (c *Checker) collect(r *Resolution, tr *termResult, l selectorList, res authz.EC2Resources, seen map[string]bool) {
	now := c.now()
	subnets, groups, key := &r.Subnets, &r.SecurityGroups, ""
	if l == listPodSubnets || l == listPodGroups {
		subnets, groups, key = &r.PodSubnets, &r.PodSecurityGroups, "pod/"
	}
	for _, s := range res.Subnets {
		tr.ids = append(tr.ids, s.ID)
		if !seen[key+s.ID] {
			seen[key+s.ID] = true
			*subnets = append(*subnets, s)
		}
	}
	for _, g := range res.SecurityGroups {
		tr.ids = append(tr.ids, g.ID)
		if !seen[key+g.ID] {
			seen[key+g.ID] = true
			*groups = append(*groups, g)
		}
	}
	for _, im := range res.Images {
		if _, ok := kubeArch[im.Architecture]; !ok {
			continue // Karpenter skips images of architectures it does not map
		}
		tr.ids = append(tr.ids, im.ID)
		if !seen[im.ID] {
			seen[im.ID] = true
			r.Images = append(r.Images, im)
		}
	}
	for _, cr := range res.CapacityReservations {
		if !cr.EndDate.IsZero() && !cr.EndDate.After(now) {
			continue // ended: Karpenter drops it
		}
		tr.ids = append(tr.ids, cr.ID)
		if !seen[cr.ID] {
			seen[cr.ID] = true
			r.Reservations = append(r.Reservations, cr)
		}
	}
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// kubeArch maps EC2 architectures to kubernetes.io/arch values, as
// Karpenter's AWSToKubeArchitectures does.
var kubeArch = map[string]string{"x86_64": "amd64", "arm64": "arm64"}

// describeTerm says what a term selects, for a message.
func describeTerm(l selectorList, t SelectorTerm) string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"id", t.ID}, {"alias", t.Alias}, {"ssmParameter", t.SSMParameter}, {"name", t.Name}, {"owner", t.Owner}, {"ownerID", t.OwnerID}, {"instanceMatchCriteria", t.InstanceMatchCriteria}} {
		if f.v != "" {
			parts = append(parts, f.k+" "+shown(f.v))
		}
	}
	keys := make([]string, 0, len(t.Tags))
	for k := range t.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, "tag "+shown(k)+"="+shown(t.Tags[k]))
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, ", ")
}

func termsOf(spec EC2NodeClassSpec, l selectorList) []SelectorTerm {
	switch l {
	case listSubnets:
		return spec.SubnetSelectorTerms
	case listGroups:
		return spec.SecurityGroupSelectorTerms
	case listImages:
		return spec.AMISelectorTerms
	case listReservations:
		return spec.CapacityReservationSelectorTerms
	}
	return nil // the pod lists are an EKS Auto Mode NodeClass's
}

func listIDs(ids []string, n int) string {
	if len(ids) > n {
		return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
	}
	return strings.Join(ids, ", ")
}

// judgeSelectors turns a resolution into findings; pools are the
// NodePools that use the class (their architecture requirements), n
// records the checks that could not run.
func (c *Checker) judgeSelectors(v *Verdict, n *notes, spec EC2NodeClassSpec, r Resolution, pools []NodePool) {
	c.judgeTerms(v, n, ec2Terms(spec), r)
	c.judgeImages(v, spec, r, pools)
}

// judgeTerms judges what each list's terms resolved to, and the VPCs of
// the subnets and security groups, whatever the class's kind.
func (c *Checker) judgeTerms(v *Verdict, n *notes, lists selectorTerms, r Resolution) {
	for _, s := range r.skipped {
		n.skipSelector(listInfo[listImages].check, s)
	}
	// Answers served past their TTL are reported as IAM's and EKS's are.
	n.served(r.stale)
	for l := selectorList(0); l < numLists; l++ {
		terms := lists[l]
		info := listInfo[l]
		total := 0
		for _, tr := range r.terms[l] {
			if tr.unavailable != "" && tr.unavailable != "not planned" {
				n.skipSelector(info.check, tr.unavailable)
			}
			total += len(tr.ids)
		}
		for i, tr := range r.terms[l] {
			if tr.unavailable != "" || len(tr.ids) > 0 || i >= len(terms) {
				continue
			}
			if l == listReservations {
				v.add(warn(CapacityReservationTermMatchesNothing, info.path.Index(i),
					"capacity reservation term (%s) matches no active reservation, so Karpenter will launch nothing into reserved capacity through it (its status still says Ready). Fix the term: aws ec2 describe-capacity-reservations --filters Name=state,Values=active",
					describeTerm(l, terms[i])))
				continue
			}
			if total > 0 {
				v.add(warn(SelectorTermMatchesNothing, info.path.Index(i),
					"%s term (%s) matches no %s; the class uses only the other terms' (%s), and Karpenter reports nothing while another term matches. Fix the term or remove it",
					info.noun, describeTerm(l, terms[i]), info.noun, listIDs(r.ids(l), 4)))
			}
		}
		if l != listReservations && len(terms) > 0 && total == 0 && r.complete(l) && len(r.terms[l]) == len(terms) {
			why := ""
			if l == listImages && len(r.notes) > 0 {
				why = "; " + strings.Join(r.notes, "; ")
			}
			v.add(deny(SelectorMatchesNothing, info.path,
				"no %s matches any of the %d %s (%s%s), so Karpenter could launch no node with this class. Fix the terms so that they select existing %ss",
				info.noun, len(terms), info.field, truncate(describeTerms(l, terms), 120), why, info.noun))
		}
	}
	c.judgeVPC(v, r, r.Subnets, r.SecurityGroups, listSubnets, listGroups)
	c.judgeVPC(v, r, r.PodSubnets, r.PodSecurityGroups, listPodSubnets, listPodGroups)
}

func describeTerms(l selectorList, terms []SelectorTerm) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = describeTerm(l, t)
	}
	return strings.Join(parts, "; ")
}

// judgeVPC: a launch attaches every security group to an interface in
// one subnet, and EC2 refuses groups of another VPC than the subnet's.
// subnets and groups are what the lists sl and gl resolved to (the
// node's, or an EKS Auto Mode NodeClass's pods').
func (c *Checker) judgeVPC(v *Verdict, r Resolution, subnets []authz.Subnet, groups []authz.SecurityGroup, sl, gl selectorList) {
	if len(subnets) == 0 || len(groups) == 0 || !r.complete(sl) || !r.complete(gl) {
		return
	}
	groupVPCs := map[string][]string{}
	for _, g := range groups {
		groupVPCs[g.VPCID] = append(groupVPCs[g.VPCID], g.ID)
	}
	if len(groupVPCs) > 1 {
		var parts []string
		for _, vpc := range sortedKeys(groupVPCs) {
			parts = append(parts, vpc+": "+listIDs(groupVPCs[vpc], 3))
		}
		v.add(deny(SubnetSecurityGroupVPCMismatch, listInfo[gl].path,
			"the security groups are in %d VPCs (%s); Karpenter attaches all of them to each node, and EC2 refuses groups of another VPC than the subnet's, so every launch would fail. Select security groups of one VPC",
			len(groupVPCs), strings.Join(parts, "; ")))
		return
	}
	var vpc string
	for k := range groupVPCs {
		vpc = k
	}
	var outside []string
	for _, s := range subnets {
		if s.VPCID != vpc {
			outside = append(outside, s.ID+" ("+s.VPCID+")")
		}
	}
	switch {
	case len(outside) == len(subnets):
		v.add(deny(SubnetSecurityGroupVPCMismatch, listInfo[sl].path,
			"no selected subnet is in %s, the VPC of the security groups (%s): subnets %s. Every launch would fail; select subnets and security groups of the same VPC",
			vpc, listIDs(r.ids(gl), 3), listIDs(outside, 4)))
	case len(outside) > 0:
		v.add(warn(SubnetSecurityGroupVPCMismatch, listInfo[sl].path,
			"subnets %s are not in %s, the security groups' VPC: launches Karpenter places there would fail. Narrow %s to %s",
			listIDs(outside, 3), vpc, listInfo[sl].field, vpc))
	}
}

// imageFamily infers an image's family from its platform and the naming
// of the EKS-optimized images; "" when the name says nothing.
func imageFamily(im authz.Image) string {
	name := im.Name
	switch {
	case strings.HasPrefix(name, "bottlerocket-"):
		return familyBottlerocket
	case strings.HasPrefix(name, "amazon-eks-node-al2023-"):
		return familyAL2023
	case strings.HasPrefix(name, "amazon-eks-node-1."), strings.HasPrefix(name, "amazon-eks-gpu-node-"), strings.HasPrefix(name, "amazon-eks-arm64-node-"):
		return familyAL2
	case strings.HasPrefix(name, "Windows_Server-2019-"):
		return familyWindows2019
	case strings.HasPrefix(name, "Windows_Server-2022-"):
		return familyWindows2022
	case strings.HasPrefix(name, "Windows_Server-2025-"):
		return familyWindows2025
	}
	return ""
}

// effectiveFamily is spec.amiFamily, else the alias's family.
func effectiveFamily(spec EC2NodeClassSpec) string {
	if spec.AMIFamily != nil {
		return *spec.AMIFamily
	}
	for _, t := range spec.AMISelectorTerms {
		if f, _, ok := aliasFamily(t.Alias); ok {
			return f
		}
	}
	return ""
}

// archAllowed reports whether a NodePool's requirements allow the
// kubernetes.io/arch value arch.
func archAllowed(reqs []NodeSelectorRequirement, arch string) bool {
	for _, r := range reqs {
		if r.Key != "kubernetes.io/arch" {
			continue
		}
		switch r.Operator {
		case "In":
			if !containsString(r.Values, arch) {
				return false
			}
		case "NotIn":
			if containsString(r.Values, arch) {
				return false
			}
		case "DoesNotExist":
			return false
		}
	}
	return true
}

// imageArches are the kubernetes.io/arch values of r's images.
func imageArches(r Resolution) map[string]bool {
	arches := map[string]bool{}
	for _, im := range r.Images {
		arches[kubeArch[im.Architecture]] = true
	}
	return arches
}

// fitsImages reports whether np allows an architecture of arches.
func fitsImages(np NodePool, arches map[string]bool) bool {
	for a := range arches {
		if archAllowed(np.Spec.Template.Spec.Requirements, a) {
			return true
		}
	}
	return false
}

// judgeImages: the images' architectures against the NodePools using the
// class, and their family against spec.amiFamily. The class is refused
// for its architectures only when no NodePool using it could launch one of
// its images: a NodePool that excludes them is the NodePool's own finding
// (judgePoolImages), and a class no NodePool uses yet is not refused.
func (c *Checker) judgeImages(v *Verdict, spec EC2NodeClassSpec, r Resolution, pools []NodePool) {
	if len(r.Images) == 0 {
		return
	}
	arches := imageArches(r)
	var excluded []string
	for _, np := range pools {
		if !fitsImages(np, arches) {
			excluded = append(excluded, quote(np.Name))
		}
	}
	switch {
	case len(pools) == 0 || len(excluded) < len(pools):
	case len(excluded) == 1:
		v.add(deny(ImageArchitectureMismatch, amiTermsPath,
			"the selected images are %s only (%s), and NodePool %s allows no such kubernetes.io/arch, so Karpenter could launch no node for it. Select images of an architecture the NodePool allows, or change its kubernetes.io/arch requirement",
			strings.Join(sortedKeys(arches), ", "), listIDs(r.ids(listImages), 3), excluded[0]))
	default:
		v.add(deny(ImageArchitectureMismatch, amiTermsPath,
			"the selected images are %s only (%s), and none of the %d NodePools using the class allows such a kubernetes.io/arch (NodePools %s), so Karpenter could launch no node with it. Select images of an architecture one of them allows, or change their kubernetes.io/arch requirements",
			strings.Join(sortedKeys(arches), ", "), listIDs(r.ids(listImages), 3), len(pools), listIDs(excluded, 5)))
	}
	fam := effectiveFamily(spec)
	if fam == "" || fam == familyCustom {
		return
	}
	var wrong []string
	for _, im := range r.Images {
		if f := imageFamily(im); f != "" && f != fam {
			wrong = append(wrong, fmt.Sprintf("%s (%s)", im.ID, f))
		}
	}
	if len(wrong) > 0 {
		v.add(warn(ImageFamilyMismatch, amiFamilyPath,
			"amiFamily is %s but images %s are of another family by their name: Karpenter would give them %s user data and the nodes would not join. Set amiFamily to the images' family, or select %s images",
			fam, listIDs(wrong, 3), fam, fam))
	}
}

// judgePoolImages: the NodePool np, being checked, must allow an
// architecture of the images its class (named class) selects, as r
// resolved them; otherwise Karpenter could launch no node for it, whatever
// the class's other NodePools do.
func judgePoolImages(np *NodePool, class string, r Resolution) (Finding, bool) {
	// Only images resolved in full condemn a NodePool: a term EC2 or SSM
	// could not answer may hold an image it fits.
	if len(r.Images) == 0 || !r.complete(listImages) || len(r.skipped) > 0 {
		return Finding{}, false
	}
	arches := imageArches(r)
	if fitsImages(*np, arches) {
		return Finding{}, false
	}
	return deny(ImageArchitectureMismatch, requirementsPath,
		"EC2NodeClass %s selects images of %s only (%s), and this NodePool's kubernetes.io/arch requirement allows none of them, so Karpenter could launch no node for it. Allow %s in its kubernetes.io/arch requirement, or use a class with images of an architecture it allows",
		quote(class), strings.Join(sortedKeys(arches), ", "), listIDs(r.ids(listImages), 3), strings.Join(sortedKeys(arches), " or ")), true
}

// autoModeTerms are an EKS Auto Mode NodeClass's selector terms: the
// node's subnets and security groups, and the pods'.
func autoModeTerms(spec NodeClassSpec) selectorTerms {
	var t selectorTerms
	t[listSubnets] = spec.SubnetSelectorTerms
	t[listGroups] = spec.SecurityGroupSelectorTerms
	t[listPodSubnets] = spec.PodSubnetSelectorTerms
	t[listPodGroups] = spec.PodSecurityGroupSelectorTerms
	return t
}

// autoModeBoundsSkip names the selector check skipped for an EKS Auto
// Mode NodeClass's terms past an EC2NodeClass's bounds (more terms or tags
// than its CRD holds, a value longer than EC2 could match), "" when none
// is: nothing is asked of them, and the check is skipped, never passed
// (EKS's own CRD states no such caps to refuse with).
func autoModeBoundsSkip(terms selectorTerms) string {
	for l, ts := range terms {
		if fs := boundsTerms(listInfo[l].path, ts); len(fs) > 0 {
			return listInfo[l].check
		}
	}
	return ""
}

// autoModeBoundsField is the first field past the bounds, for the
// message.
func autoModeBoundsField(terms selectorTerms) string {
	for l, ts := range terms {
		if fs := boundsTerms(listInfo[l].path, ts); len(fs) > 0 {
			return fs[0].Field.String()
		}
	}
	return ""
}

// sameAutoModeTerms reports whether an update leaves every selector list
// of an EKS Auto Mode NodeClass as it was.
func sameAutoModeTerms(old, cur NodeClassSpec) bool {
	o, n := autoModeTerms(old), autoModeTerms(cur)
	for l := range o {
		if !sameTerms(o[l], n[l]) {
			return false
		}
	}
	return true
}

// changedLists returns the selector lists whose terms differ.
func changedLists(old, cur EC2NodeClassSpec) []selectorList {
	var out []selectorList
	for l := selectorList(0); l < numLists; l++ {
		if !sameTerms(termsOf(old, l), termsOf(cur, l)) {
			out = append(out, l)
		}
	}
	return out
}

func sameTerms(a, b []SelectorTerm) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// hasSelectors reports whether spec has any selector term.
func hasSelectors(spec EC2NodeClassSpec) bool {
	return len(spec.SubnetSelectorTerms)+len(spec.SecurityGroupSelectorTerms)+len(spec.AMISelectorTerms)+len(spec.CapacityReservationSelectorTerms) > 0
}

// resolvesSelectors reports whether the selector terms of spec are
// resolved: there are terms, an IAM source (offline mode resolves
// nothing, as it asks nothing) and an EC2 source.
func (c *Checker) resolvesSelectors(spec EC2NodeClassSpec) bool {
	return c.cfg.IAM != nil && c.cfg.EC2 != nil && hasSelectors(spec)
}
