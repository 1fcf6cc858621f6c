package rules

import (
	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// What selector terms are, per list, and what they resolve to: the
// selector rules (selectors.go) resolve and judge them; an object holds
// them (rule.go).

// Field paths of the selector lists.
var (
	subnetTermsPath      = specPath.Child("subnetSelectorTerms")
	groupTermsPath       = specPath.Child("securityGroupSelectorTerms")
	amiTermsPath         = specPath.Child("amiSelectorTerms")
	reservationTermsPath = specPath.Child("capacityReservationSelectorTerms")
	amiFamilyPath        = specPath.Child("amiFamily")
	// EKS Auto Mode NodeClass's: the subnets and security groups of the
	// pods' network interfaces, when they are not the node's.
	podSubnetTermsPath = specPath.Child("podSubnetSelectorTerms")
	podGroupTermsPath  = specPath.Child("podSecurityGroupSelectorTerms")
)

// selectorList indexes the selector lists: an EC2NodeClass's four, and
// the two an EKS Auto Mode NodeClass adds for its pods.
type selectorList int

const (
	listSubnets selectorList = iota
	listGroups
	listImages
	listReservations
	listPodSubnets
	listPodGroups
	numLists
)

// selectorTerms are a class's terms, per list.
type selectorTerms [numLists][]SelectorTerm

// some reports whether there is a term in some list.
func (t selectorTerms) some() bool {
	for _, l := range t {
		if len(l) > 0 {
			return true
		}
	}
	return false
}

var listInfo = [numLists]struct {
	path  *field.Path
	noun  string // what one match is
	field string
	check string // the check's name in SelectorChecksSkipped
}{
	{subnetTermsPath, "subnet", "subnetSelectorTerms", "subnet selectors"},
	{groupTermsPath, "security group", "securityGroupSelectorTerms", "security group selectors"},
	{amiTermsPath, "image", "amiSelectorTerms", "AMI selectors"},
	{reservationTermsPath, "capacity reservation", "capacityReservationSelectorTerms", "capacity reservation selectors"},
	{podSubnetTermsPath, "subnet", "podSubnetSelectorTerms", "pod subnet selectors"},
	{podGroupTermsPath, "security group", "podSecurityGroupSelectorTerms", "pod security group selectors"},
}

// selectorPlan is the first round of questions for a class's selectors,
// with what each answers.
type selectorPlan struct {
	queries []Query
	// terms[list][i] lists the indexes into queries of term i.
	terms [numLists][][]int
	// kinds[list][i] says how term i is resolved: "" directly, "ssm" via
	// SSM parameters then DescribeImages.
	viaSSM []bool
	// skipped are checks that cannot even be planned (an alias without a
	// Kubernetes version).
	skipped []string
	// empty are AMI terms known to match nothing without asking (an alias
	// Karpenter refuses for the cluster's version), and notes say why.
	empty []int
	notes []string
}

// termResult is what one term resolved to.
type termResult struct {
	ids []string
	// unavailable says why the term could not be resolved; "" when it was.
	unavailable string
}

// Resolution is what a class's selectors resolve to: the resources, and
// per term what it matched. Its ARNs are what the launch questions
// (RunInstances, CreateFleet) authorize beside the instance.
type Resolution struct {
	Subnets        []authz.Subnet
	SecurityGroups []authz.SecurityGroup
	Images         []authz.Image
	Reservations   []authz.CapacityReservation
	// PodSubnets and PodSecurityGroups are an EKS Auto Mode NodeClass's
	// pod lists' (never asked in the launch questions).
	PodSubnets        []authz.Subnet
	PodSecurityGroups []authz.SecurityGroup
	terms             [numLists][]termResult
	skipped           []string
	// notes say why terms match nothing without EC2 being asked.
	notes []string
	// stale is set when an answer was served past its TTL (EC2 or SSM
	// unavailable), with the oldest age.
	stale authz.Served
}

// served records an answer's staleness.
func (r *Resolution) served(s authz.Served) {
	if s.Stale {
		r.stale.Stale = true
		r.stale.Age = max(r.stale.Age, s.Age)
	}
}

// ResolvedARNs are the ARNs of what a class resolves to, for the launch
// questions: RunInstances and CreateFleet authorize the image, every
// subnet and every security group they touch.
type ResolvedARNs struct {
	Images, Subnets, SecurityGroups []string
}

// ARNs builds the resolution's ARNs in partition and region (authz/arn.go).
func (r Resolution) ARNs(partition, region string) ResolvedARNs {
	var out ResolvedARNs
	for _, im := range r.Images {
		out.Images = append(out.Images, authz.ImageARN(partition, region, im.ID))
	}
	for _, s := range r.Subnets {
		out.Subnets = append(out.Subnets, authz.SubnetARN(partition, region, s.OwnerID, s.ID))
	}
	for _, g := range r.SecurityGroups {
		out.SecurityGroups = append(out.SecurityGroups, authz.SecurityGroupARN(partition, region, g.OwnerID, g.ID))
	}
	return out
}

// complete reports whether every term of list l was resolved.
func (r Resolution) complete(l selectorList) bool {
	for _, t := range r.terms[l] {
		if t.unavailable != "" {
			return false
		}
	}
	return true
}

// selectorSide is one object's selector terms through the runner: the
// terms, whether they are resolved (an IAM and an EC2 source), the first
// round's plan and answers, the second round's (the images behind SSM
// parameters), and what they resolve to.
type selectorSide struct {
	terms selectorTerms
	asked bool
	plan  selectorPlan
	first []Answer
	// secondOf maps an image term to its second-round query;
	// imageUnavail says why an image term's parameters could not be read.
	secondOf     map[int]int
	imageUnavail map[int]string
	res          Resolution
}

// The sides: the object's selectors, and an update's old object's.
const (
	sideNew = iota
	sideOld
)

// ids returns the IDs a list resolved to, once each, in order.
func (r Resolution) ids(l selectorList) []string {
	var out []string
	seen := map[string]bool{}
	for _, tr := range r.terms[l] {
		for _, id := range tr.ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}
