package karpenter

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// Step says which part of Karpenter's work a Request belongs to.
type Step string

// Step values.
const (
	// StepInstanceProfile: the nodeclass controller creating, tagging and
	// filling the instance profile of a class naming spec.role.
	StepInstanceProfile Step = "instance profile"
	// StepLaunch: launching a node (CreateLaunchTemplate, then an instant
	// CreateFleet), with the NodePool's name as karpenter.sh/nodepool.
	StepLaunch Step = "launch"
	// StepValidation: the nodeclass validation (1.3 and later), which asks
	// EC2 with karpenter.sh/nodepool="" before any NodePool uses the class;
	// its failure sets ValidationSucceeded=False on the class.
	StepValidation Step = "validation"
)

// Placeholders: the model never passes a pattern off as a resource; what it
// cannot know it replaces with a stated, concrete placeholder.
const (
	// PlaceholderUID stands for the class's metadata.uid when the class
	// has none (a manifest in `check`, before the API server assigns one).
	PlaceholderUID = "00000000-0000-0000-0000-000000000000"
	// PlaceholderLaunchTemplateID stands for the ID EC2 gives the launch
	// template Karpenter creates and then launches from.
	PlaceholderLaunchTemplateID = "lt-00000000000000000"
	// mockLaunchTemplateID is the launch template ID Karpenter 1.3 to 1.6
	// put in the validation's CreateFleet dry-run (a mock, not created).
	mockLaunchTemplateID = "lt-1234567890abcdef0"
)

// Tag keys Karpenter sets. A class's spec.tags may not set them (the CRD
// and Karpenter's tag validation refuse them), and where both name a key,
// Karpenter's value wins.
const (
	TagNodePool           = "karpenter.sh/nodepool"
	TagNodeClass          = "karpenter.k8s.aws/ec2nodeclass"
	TagEKSClusterName     = "eks:eks-cluster-name"
	TagRegion             = "topology.kubernetes.io/region"
	tagManagedLaunchTempl = "karpenter.k8s.aws/cluster"
)

// ClusterTag returns the key of the cluster ownership tag.
func ClusterTag(cluster string) string { return "kubernetes.io/cluster/" + cluster }

// Input is what the model needs to know about one class and its cluster.
type Input struct {
	Partition, Region, Account, Cluster string
	// Class is the EC2NodeClass's name; UID its metadata.uid ("" means
	// unknown: PlaceholderUID is used and Profile.UIDPlaceholder says so).
	Class, UID string
	// Tags is the class's spec.tags.
	Tags map[string]string
	// NodePool is the NodePool whose launches are asked about; "" means
	// none is known, and the class's own name stands in for it.
	NodePool string
	// EC2 holds the image, subnets and security groups the class's
	// selectors resolve to; nil means nobody resolved them, and the
	// launch requests on them are reported as not checked.
	EC2 *EC2Resources
	// Launch is what the NodePool's requirements and the class say of
	// the instances and volumes Karpenter launches.
	Launch Launch
}

// Launch is what is known, before a launch, of the instance and volumes
// Karpenter launches: the values of their condition keys. What it does
// not know is left out of the requests' context (the key is absent, not
// a pass) and named in the request's Unknown.
type Launch struct {
	// InstanceTypes are the instance types the NodePool's requirements
	// allow (node.kubernetes.io/instance-type In), nil when they do not
	// name them (no NodePool, or another requirement picks them).
	InstanceTypes []string `json:",omitempty"`
	// MarketTypes are ec2:InstanceMarketType's values the NodePool's
	// capacity types allow ("on-demand", "spot"), nil when not known.
	MarketTypes []string `json:",omitempty"`
	// Split lists the keys (ec2:InstanceType, ec2:InstanceMarketType) a
	// policy of the launching role tests: where several values are
	// allowed, the instance is asked about once per value. Otherwise the
	// key is absent and reported unknown.
	Split []string `json:",omitempty"`
	// InstanceProfile is the class's spec.instanceProfile, "" for a class
	// naming spec.role (Karpenter's own profile, whose ARN the model
	// knows). A named profile's path is known only once IAM is read, so
	// ec2:InstanceProfile is then unknown.
	InstanceProfile string `json:",omitempty"`
	// Volumes are the EBS volumes of an instance (spec.blockDeviceMappings,
	// or Karpenter's defaults for the AMI family); VolumesUnknown, when
	// set, says why they are not known.
	Volumes        []Volume `json:",omitempty"`
	VolumesUnknown string   `json:",omitempty"`
}

// Volume is one EBS volume of a launch; a field left empty is not known.
type Volume struct {
	Device    string `json:",omitempty"`
	Encrypted *bool  `json:",omitempty"`
	Type      string `json:",omitempty"`
	// SizeGiB is the size in GiB, 0 when not known.
	SizeGiB  int64  `json:",omitempty"`
	KMSKeyID string `json:",omitempty"`
}

// EC2Resources are the existing EC2 resources a launch uses, resolved from
// the class's amiSelectorTerms, subnetSelectorTerms and
// securityGroupSelectorTerms by an EC2 view, with what EC2 says of them.
type EC2Resources struct {
	Images         []Image         `json:",omitempty"`
	Subnets        []Subnet        `json:",omitempty"`
	SecurityGroups []SecurityGroup `json:",omitempty"`
	// Unresolved says, by kind ("image", "subnet", "security-group"),
	// why an empty list is empty, when an EC2 view resolved the selectors.
	Unresolved map[string]string `json:",omitempty"`
}

// Image is an image a launch uses. On Image, Subnet and SecurityGroup,
// Tags are the resource's tags as EC2 gave them; nil means not known (an
// empty map: it has none).
type Image struct {
	ARN, ID string
	// Owner is ec2:Owner's value: "amazon" for Amazon's images, the
	// owner's account ID otherwise.
	Owner  string
	Public bool
	// RootDeviceType is "ebs" or "instance-store", "" when not known.
	RootDeviceType string
	Tags           map[string]string
}

// Subnet is a subnet a launch uses; VPC is the VPC's ARN (ec2:Vpc).
type Subnet struct {
	ARN, ID, VPC, AvailabilityZone, AvailabilityZoneID string
	Tags                                               map[string]string
}

// SecurityGroup is a security group a launch uses; VPC is the VPC's ARN.
type SecurityGroup struct {
	ARN, ID, VPC string
	Tags         map[string]string
}

// Request is one request Karpenter makes, as IAM authorizes it: one action
// on one resource with its condition keys.
type Request struct {
	Step Step
	// Call is the API call making the request ("CreateFleet"); a dry-run
	// says so ("CreateFleet (dry-run)").
	Call     string
	Action   string
	Resource string
	// Context holds every condition key the model knows the request
	// carries. Complete lists the key families (a trailing '/' for a
	// prefix) it states in full: a key of those families that Context
	// lacks is known to be absent from the request.
	Context  map[string][]string
	Complete []string
	// Placeholder says which part of Resource is a stated placeholder,
	// "" when none.
	Placeholder string
	// Alike is Resource with the class's UID replaced by PlaceholderUID
	// (1.13 on, when the class has a UID): what the answer is cached
	// under (authz.Question.Alike).
	Alike string
	// Unknown are the condition keys the reference lists for the request
	// whose values cannot be known before the launch: absent from
	// Context, and not stated Complete.
	Unknown []UnknownKey
}

// UnknownKey is a condition key a request carries whose value the model
// cannot know, with why.
type UnknownKey struct {
	Key, Why string
}

// Question returns the request as the authz question of principal.
func (r Request) Question(principal string) authz.Question {
	return authz.Question{Principal: principal, Action: r.Action, Resource: r.Resource, Context: r.Context, Complete: r.Complete, Alike: r.Alike}
}

// NotChecked is a part of Karpenter's requests the model knows of but
// cannot ask about yet, with why.
type NotChecked struct {
	Steps    []Step `json:"steps"`
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Reason   string `json:"reason"`
}

// Profile is the instance profile Karpenter creates for a class naming
// spec.role.
type Profile struct {
	Name, Path, ARN string
	// NameRandom is set from 1.7 on: the name hashes a random UUID, so
	// Name is a representative (hashed with the nil UUID); policies can
	// only scope on the path and the "<cluster>_" prefix.
	NameRandom bool
	// UIDPlaceholder is set when the class had no metadata.uid and the
	// path (1.13 on) uses PlaceholderUID.
	UIDPlaceholder bool
}

// InstanceProfile returns the profile Karpenter v creates for the class.
func InstanceProfile(v Version, in Input) Profile {
	p := Profile{Path: "/"}
	seed := in.Region + in.Class
	if v.atLeast(7) {
		// 1.7 on: fmt.Sprintf("%s%s%s", region, name, uuid.New()).
		p.NameRandom = true
		seed += "00000000-0000-0000-0000-000000000000"
	}
	p.Name = in.Cluster + "_" + strconv.FormatUint(fnv1(seed), 10)
	if v.atLeast(13) {
		uid := in.UID
		if uid == "" {
			uid, p.UIDPlaceholder = PlaceholderUID, true
		}
		p.Path = "/karpenter/" + in.Region + "/" + in.Cluster + "/" + uid + "/"
	}
	p.ARN = authz.InstanceProfileARN(in.Partition, in.Account, p.Path, p.Name)
	return p
}

// fnv1 is the 64-bit FNV-1 hash of s: what mitchellh/hashstructure v2,
// which Karpenter names its profiles with, returns for a string (its
// default hasher is hash/fnv's New64, fed the string's bytes).
func fnv1(s string) uint64 {
	h := fnv.New64()
	h.Write([]byte(s))
	return h.Sum64()
}

// ProfileTags are the tags Karpenter puts on the instance profile: the
// class's spec.tags, overridden by its own four.
func ProfileTags(in Input) map[string]string {
	return merge(in.Tags, map[string]string{
		ClusterTag(in.Cluster): "owned",
		TagEKSClusterName:      in.Cluster,
		TagNodeClass:           in.Class,
		TagRegion:              in.Region,
	})
}

// LaunchTags are the tags of Karpenter's launch requests for nodePool:
// spec.tags, overridden by its own four.
func LaunchTags(in Input, nodePool string) map[string]string {
	return merge(in.Tags, map[string]string{
		ClusterTag(in.Cluster): "owned",
		TagEKSClusterName:      in.Cluster,
		TagNodePool:            nodePool,
		TagNodeClass:           in.Class,
	})
}

// launchTemplateTags are the tags of CreateLaunchTemplate: the launch
// tags, and in 1.0 karpenter.k8s.aws/cluster.
func launchTemplateTags(v Version, in Input, launch map[string]string) map[string]string {
	if v.atLeast(1) {
		return launch
	}
	return merge(launch, map[string]string{tagManagedLaunchTempl: in.Cluster, TagNodeClass: in.Class})
}

func merge(under, over map[string]string) map[string]string {
	out := make(map[string]string, len(under)+len(over))
	maps.Copy(out, under)
	maps.Copy(out, over)
	return out
}

// ProfileRequests are the requests of the nodeclass controller for a class
// naming spec.role: it reads the profile, creates it with its tags (IAM
// then also authorizes iam:TagInstanceProfile for those tags), and adds the
// role. iam:PassRole of the role is asked by the PassRole rule.
func ProfileRequests(v Version, in Input) (Profile, []Request) {
	p := InstanceProfile(v, in)
	tags := ProfileTags(in)
	iamComplete := []string{"aws:RequestTag/", "aws:TagKeys", "aws:ResourceTag/"}
	ph := ""
	if p.NameRandom {
		ph = "the name's hash (random per profile since 1.7; hashed with the nil UUID)"
	}
	if p.UIDPlaceholder {
		ph = joinNote(ph, PlaceholderUID+" stands for the class UID in the path: the class has no metadata.uid yet")
	}
	alike := ""
	if v.atLeast(13) && !p.UIDPlaceholder {
		noUID := in
		noUID.UID = ""
		alike = InstanceProfile(v, noUID).ARN
	}
	r := func(call string, ctx map[string][]string) Request {
		return Request{Step: StepInstanceProfile, Call: call, Action: "iam:" + call, Resource: p.ARN,
			Context: ctx, Complete: iamComplete, Placeholder: ph, Alike: alike}
	}
	return p, []Request{
		r("GetInstanceProfile", map[string][]string{}),
		r("CreateInstanceProfile", tagContext(tags, true, false)),
		r("TagInstanceProfile", tagContext(tags, true, true)),
		r("AddRoleToInstanceProfile", tagContext(tags, false, true)),
	}
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// LaunchRequests are the EC2 requests Karpenter v makes to launch nodes of
// the class (StepLaunch), and, from 1.3 on, to validate it
// (StepValidation). Each call is authorized once per resource type the
// Service Authorization Reference lists for its action (sar.go), each with
// that type's condition keys: a resource the call creates carries the
// request's tags, one that exists its own. Requests on the image, subnets
// and security groups are made only when in.EC2 resolves them; otherwise
// they are returned as NotChecked.
func LaunchRequests(v Version, in Input) ([]Request, []NotChecked) {
	nodePool := in.NodePool
	if nodePool == "" {
		nodePool = in.Class
	}
	b := newLaunchBuilder(v, in)
	launch := tagSet{id: 0, tags: LaunchTags(in, nodePool)}
	lt := tagSet{id: 1, tags: launchTemplateTags(v, in, launch.tags)}
	usedLT := b.ec2ARN("launch-template/" + PlaceholderLaunchTemplateID)
	const ltNote = PlaceholderLaunchTemplateID + " stands for the ID EC2 gives the launch template"

	// Launch: CreateLaunchTemplate with the launch template's tags, then
	// an instant CreateFleet from it, tagging the fleet, instances and
	// volumes (network interfaces get the same tags from the template).
	// The launch template it uses carries the tags Karpenter put on it.
	b.create(StepLaunch, "CreateLaunchTemplate", lt)
	b.fleet(StepLaunch, "CreateFleet", launch, b.usedTemplate(usedLT, lt, ltNote))

	if v.atLeast(3) {
		// The validation's tags: no NodePool, so karpenter.sh/nodepool="".
		val := tagSet{id: 2, tags: LaunchTags(in, "")}
		valLT := tagSet{id: 3, tags: launchTemplateTags(v, in, val.tags)}
		if v.atLeast(7) {
			used := b.usedTemplate(usedLT, valLT, ltNote)
			b.create(StepValidation, "CreateLaunchTemplate", valLT)
			b.fleet(StepValidation, "CreateFleet (dry-run)", val, used)
			b.runInstances(val, used)
		} else {
			b.create(StepValidation, "CreateLaunchTemplate (dry-run)", valLT)
			// The mock template exists nowhere: it has no tags of its
			// own, and the model keeps what it always asked of it, the
			// dry-run's request tags (the getting-started policy of
			// those versions allows it through its request-tag
			// statement, and Karpenter's validation passes with it).
			mock := b.usedTemplate(b.ec2ARN("launch-template/"+mockLaunchTemplateID), tagSet{id: 4, tags: map[string]string{}}, "")
			mock.requestTags = true
			b.fleet(StepValidation, "CreateFleet (dry-run)", val, mock)
			b.runInstances(val, nil)
		}
	}
	return b.reqs, b.notChecked
}

// tagSet is a set of request tags, with an identity the builder shares
// contexts by.
type tagSet struct {
	id   int
	tags map[string]string
}

// target is one resource a call is authorized on, with what is known of
// the condition keys it carries.
type target struct {
	typ, arn string
	// created marks a resource the call creates: it carries the
	// request's tags and has none of its own yet.
	created bool
	// tags are an existing resource's tags; nil when not known.
	tags map[string]string
	// attrs are the values of the ec2:* keys the model knows ("" for a
	// key known to be absent); unknown says why a key's value cannot be
	// known before the launch.
	attrs   map[string]string
	unknown map[string]string
	// requestTags makes the target carry the request's tags whatever
	// the reference lists (Karpenter 1.3 to 1.6's mock launch template).
	requestTags bool
	// placeholder names a placeholder in arn, "" when none.
	placeholder string
	// id identifies the target among the builder's, for sharing
	// contexts.
	id string
}

// attrKeys are the ec2:* keys the model knows values of, or knows it
// cannot know: each is stated in full (or reported unknown) wherever the
// reference lists it, and known absent where it does not.
var attrKeys = []string{
	"ec2:InstanceType", "ec2:InstanceMarketType", "ec2:InstanceProfile", "ec2:Tenancy",
	"ec2:AvailabilityZone", "ec2:Vpc", "ec2:Subnet", "ec2:SubnetID", "ec2:SecurityGroupID",
	"ec2:AvailabilityZoneId", "ec2:ImageID", "ec2:ImageType", "ec2:Owner", "ec2:Public", "ec2:RootDeviceType",
	"ec2:Encrypted", "ec2:VolumeType", "ec2:VolumeSize", "ec2:KmsKeyId",
}

// tagFamilies are the tag keys of the model, by family.
var tagFamilies = []string{"aws:RequestTag/", "aws:TagKeys", "aws:ResourceTag/", "ec2:ResourceTag/"}

type launchBuilder struct {
	v          Version
	in         Input
	reqs       []Request
	notChecked []NotChecked
	// instances, volumes and interfaces are the created targets of a
	// launch, one per distinct set of known keys; images, subnets and
	// groups the existing ones in.EC2 resolves.
	instances, volumes, interfaces []*target
	images, subnets, groups        []*target
	// contexts are the contexts built so far, by target, request tags
	// and the keys the action lists: the requests of a step share them
	// (a few maps for dozens of requests, whose keys authz.PrepareKeys
	// then writes once each).
	contexts map[string]builtContext
}

type builtContext struct {
	ctx      map[string][]string
	complete []string
	unknown  []UnknownKey
}

func newLaunchBuilder(v Version, in Input) *launchBuilder {
	b := &launchBuilder{v: v, in: in, contexts: map[string]builtContext{}}
	b.resolveExisting()
	b.resolveCreated()
	return b
}

func (b *launchBuilder) ec2ARN(resource string) string {
	return authz.EC2ARN(b.in.Partition, b.in.Region, b.in.Account, resource)
}

// resolveExisting makes the targets of the image, subnets and security
// groups in.EC2 resolves, with their tags and keys.
func (b *launchBuilder) resolveExisting() {
	if b.in.EC2 == nil {
		return
	}
	for i, im := range b.in.EC2.Images {
		// Karpenter launches machine images (ec2:ImageType "machine").
		b.images = append(b.images, &target{typ: "image", arn: im.ARN, tags: im.Tags, id: "image#" + strconv.Itoa(i),
			attrs: knownAttrs(map[string]string{"ec2:ImageID": im.ID, "ec2:Owner": im.Owner, "ec2:Public": strconv.FormatBool(im.Public),
				"ec2:ImageType": "machine", "ec2:RootDeviceType": im.RootDeviceType})})
	}
	for i, s := range b.in.EC2.Subnets {
		b.subnets = append(b.subnets, &target{typ: "subnet", arn: s.ARN, tags: s.Tags, id: "subnet#" + strconv.Itoa(i),
			attrs: knownAttrs(map[string]string{"ec2:SubnetID": s.ID, "ec2:Vpc": s.VPC, "ec2:AvailabilityZone": s.AvailabilityZone,
				"ec2:AvailabilityZoneId": s.AvailabilityZoneID})})
	}
	for i, g := range b.in.EC2.SecurityGroups {
		b.groups = append(b.groups, &target{typ: "security-group", arn: g.ARN, tags: g.Tags, id: "security-group#" + strconv.Itoa(i),
			attrs: knownAttrs(map[string]string{"ec2:SecurityGroupID": g.ID, "ec2:Vpc": g.VPC})})
	}
}

// knownAttrs drops the keys whose value EC2 did not give: they stay
// unknown rather than known absent.
func knownAttrs(m map[string]string) map[string]string {
	maps.DeleteFunc(m, func(_, v string) bool { return v == "" })
	return m
}

// MaxDistinctVolumes is how many distinct EBS volumes (by their keys) the
// launch requests are asked with, each once per call.
const MaxDistinctVolumes = 8

// Why a key's value is not known before the launch.
const (
	whyNoSubnets       = "the class's subnets are not resolved"
	whySeveralZones    = "the class's subnets are in several Availability Zones, and EC2 picks one at launch"
	whySeveralSubnets  = "the class has several subnets, and Karpenter picks one at launch"
	whySeveralVPCs     = "the class's subnets are in several VPCs"
	whyNamedProfile    = "spec.instanceProfile's path is known only once IAM is read"
	whyNoInstanceTypes = "no NodePool pins the instance types (node.kubernetes.io/instance-type In), so Karpenter picks them at launch"
	whySeveralTypes    = "the NodePool allows several instance types, and Karpenter picks one at launch (each is asked about only when a controller policy tests ec2:InstanceType, up to 20)"
	whyNoMarketTypes   = "no NodePool is known, or its capacity types (karpenter.sh/capacity-type) include reserved capacity"
	whySeveralMarkets  = "the NodePool allows several capacity types, and Karpenter picks one at launch (each is asked about only when a controller policy tests ec2:InstanceMarketType)"
	whyDefaultKMSKey   = "the volume is encrypted with the account's default EBS key, which the class does not name"
)

// resolveCreated makes the targets of the instance, volumes and network
// interface a launch creates, one per distinct set of known keys.
func (b *launchBuilder) resolveCreated() {
	zone := map[string]string{}
	zoneWhy := ""
	switch subnets := b.in.EC2Subnets(); {
	case subnets == nil:
		zoneWhy = whyNoSubnets
	default:
		zones, zoneIDs, vpcs := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, s := range subnets {
			zones[s.AvailabilityZone] = true
			zoneIDs[s.AvailabilityZoneID] = true
			vpcs[s.VPC] = true
		}
		if len(zones) == 1 && !zones[""] {
			zone["ec2:AvailabilityZone"] = subnets[0].AvailabilityZone
			if len(zoneIDs) == 1 && !zoneIDs[""] {
				zone["ec2:AvailabilityZoneId"] = subnets[0].AvailabilityZoneID
			}
		} else {
			zoneWhy = whySeveralZones
		}
		ni := &target{typ: "network-interface", arn: b.ec2ARN("network-interface/*"), created: true, id: "network-interface",
			attrs: maps.Clone(zone), unknown: map[string]string{}}
		if len(subnets) == 1 {
			ni.attrs["ec2:Subnet"] = subnets[0].ARN
		} else {
			ni.unknown["ec2:Subnet"] = whySeveralSubnets
		}
		if len(vpcs) == 1 && !vpcs[""] {
			ni.attrs["ec2:Vpc"] = subnets[0].VPC
		} else {
			ni.unknown["ec2:Vpc"] = whySeveralVPCs
		}
		if zoneWhy != "" {
			ni.unknown["ec2:AvailabilityZone"] = zoneWhy
			ni.unknown["ec2:AvailabilityZoneId"] = zoneWhy
		}
		b.interfaces = []*target{ni}
	}
	if b.interfaces == nil {
		b.interfaces = []*target{{typ: "network-interface", arn: b.ec2ARN("network-interface/*"), created: true, id: "network-interface",
			unknown: map[string]string{"ec2:AvailabilityZone": zoneWhy, "ec2:Subnet": zoneWhy, "ec2:Vpc": zoneWhy}}}
	}

	// The instance: once per instance type and market type where a
	// policy tests the key and several are allowed.
	l := b.in.Launch
	types, typeWhy := splitValues(l.InstanceTypes, slices.Contains(l.Split, "ec2:InstanceType"), whyNoInstanceTypes, whySeveralTypes)
	markets, marketWhy := splitValues(l.MarketTypes, slices.Contains(l.Split, "ec2:InstanceMarketType"), whyNoMarketTypes, whySeveralMarkets)
	base := maps.Clone(zone)
	base["ec2:Tenancy"] = "default"
	unknown := map[string]string{}
	if zoneWhy != "" {
		unknown["ec2:AvailabilityZone"] = zoneWhy
		unknown["ec2:AvailabilityZoneId"] = zoneWhy
	}
	// The instance's root device is its image's.
	roots := map[string]bool{}
	if b.in.EC2 != nil {
		for _, im := range b.in.EC2.Images {
			roots[im.RootDeviceType] = true
		}
	}
	switch {
	case len(roots) == 1 && !roots[""]:
		base["ec2:RootDeviceType"] = b.in.EC2.Images[0].RootDeviceType
	case len(roots) == 0:
		unknown["ec2:RootDeviceType"] = "the class's images are not resolved"
	default:
		unknown["ec2:RootDeviceType"] = "the class's images differ in their root device type, or EC2 did not say it"
	}
	if l.InstanceProfile == "" {
		// The profile's ARN with PlaceholderUID for the class's UID (1.13
		// on): no policy can name a UID before the class exists, and the
		// answers then hold for the same manifest applied again with a
		// new UID (as Request.Alike does for the profile's own requests).
		noUID := b.in
		noUID.UID = ""
		base["ec2:InstanceProfile"] = InstanceProfile(b.v, noUID).ARN
	} else {
		unknown["ec2:InstanceProfile"] = whyNamedProfile
	}
	if typeWhy != "" {
		unknown["ec2:InstanceType"] = typeWhy
	}
	if marketWhy != "" {
		unknown["ec2:InstanceMarketType"] = marketWhy
	}
	for _, it := range types {
		for _, mt := range markets {
			attrs := maps.Clone(base)
			id := "instance"
			if it != "" {
				attrs["ec2:InstanceType"] = it
				id += "#" + it
			}
			if mt != "" {
				attrs["ec2:InstanceMarketType"] = mt
				id += "#" + mt
			}
			b.instances = append(b.instances, &target{typ: "instance", arn: b.ec2ARN("instance/*"), created: true, id: id, attrs: attrs, unknown: unknown})
		}
	}

	// The volumes: one per distinct volume.
	vols := l.Volumes
	if vols == nil {
		vols = []Volume{{}}
	}
	seen := map[Volume]bool{}
	for _, vol := range vols {
		vol.Device = ""
		seen[vol] = true
	}
	if len(seen) > MaxDistinctVolumes {
		// Each distinct volume is a request per call: past the bound,
		// one request with the volume's keys unknown.
		vols = []Volume{{}}
		l.VolumesUnknown = fmt.Sprintf("the class has %d distinct volumes, more than the %d asked about", len(seen), MaxDistinctVolumes)
	}
	clear(seen)
	for _, vol := range vols {
		key := vol
		key.Device = ""
		if seen[key] {
			continue
		}
		seen[key] = true
		attrs, unk := maps.Clone(zone), maps.Clone(unknown)
		maps.DeleteFunc(unk, func(k, _ string) bool { return k != "ec2:AvailabilityZone" && k != "ec2:AvailabilityZoneId" })
		why := l.VolumesUnknown
		if why == "" {
			why = "spec.blockDeviceMappings does not say"
		}
		if vol.Encrypted != nil {
			attrs["ec2:Encrypted"] = strconv.FormatBool(*vol.Encrypted)
		} else {
			unk["ec2:Encrypted"] = why
		}
		switch {
		case vol.KMSKeyID != "":
			attrs["ec2:KmsKeyId"] = vol.KMSKeyID
		case vol.Encrypted != nil && !*vol.Encrypted:
			attrs["ec2:KmsKeyId"] = "" // no key: known absent
		case vol.Encrypted != nil:
			unk["ec2:KmsKeyId"] = whyDefaultKMSKey
		default:
			unk["ec2:KmsKeyId"] = why
		}
		if vol.Type != "" {
			attrs["ec2:VolumeType"] = vol.Type
		} else {
			unk["ec2:VolumeType"] = why
		}
		if vol.SizeGiB > 0 {
			attrs["ec2:VolumeSize"] = strconv.FormatInt(vol.SizeGiB, 10)
		} else {
			unk["ec2:VolumeSize"] = why
		}
		b.volumes = append(b.volumes, &target{typ: "volume", arn: b.ec2ARN("volume/*"), created: true,
			id: "volume#" + strconv.Itoa(len(b.volumes)), attrs: attrs, unknown: unk})
	}
}

// EC2Subnets returns the resolved subnets, nil when not resolved.
func (in Input) EC2Subnets() []Subnet {
	if in.EC2 == nil || len(in.EC2.Subnets) == 0 {
		return nil
	}
	return in.EC2.Subnets
}

// splitValues returns the values a key is asked with: the one value, or
// each of several when split; [""] (the key unknown, with why) otherwise.
func splitValues(values []string, split bool, whyNone, whySeveral string) ([]string, string) {
	switch {
	case len(values) == 0:
		return []string{""}, whyNone
	case len(values) == 1 || split:
		return values, ""
	}
	return []string{""}, whySeveral
}

// usedTemplate is the target of the launch template a fleet or launch
// uses: it exists, with the tags Karpenter put on it.
func (b *launchBuilder) usedTemplate(arn string, ts tagSet, note string) *target {
	return &target{typ: "launch-template", arn: arn, tags: ts.tags, placeholder: note, id: "used-launch-template#" + strconv.Itoa(ts.id)}
}

// context is the context of action on t with request tags ts and
// createAction for ec2:CreateTags ("" otherwise), built from the keys
// the reference lists for action on t's type, and shared between the
// requests that would build the same.
func (b *launchBuilder) context(action string, t *target, ts tagSet, createAction string) builtContext {
	keys, _ := conditionKeys(action, t.typ)
	listed := func(k string) bool {
		return slices.ContainsFunc(keys, func(l string) bool { return strings.EqualFold(l, k) })
	}
	var sig strings.Builder
	for _, f := range tagFamilies {
		sig.WriteByte(boolByte(listed(f)))
	}
	for _, k := range attrKeys {
		sig.WriteByte(boolByte(listed(k)))
	}
	sig.WriteByte(boolByte(listed("ec2:Region")))
	sig.WriteByte(boolByte(listed("ec2:CreateAction")))
	sig.WriteString("\x00" + t.id + "\x00" + createAction)
	requestTags := listed("aws:RequestTag/") || listed("aws:TagKeys") || t.requestTags
	if requestTags {
		sig.WriteString("\x00" + strconv.Itoa(ts.id))
	}
	memo := sig.String()
	if c, ok := b.contexts[memo]; ok {
		return c
	}

	var c builtContext
	if requestTags {
		c.ctx = tagContext(ts.tags, true, false)
	} else {
		c.ctx = make(map[string][]string, 2*len(t.tags)+8)
	}
	c.ctx["aws:RequestedRegion"] = []string{b.in.Region}
	c.complete = []string{"aws:RequestedRegion", "aws:RequestTag/", "aws:TagKeys"}
	for _, f := range []string{"aws:ResourceTag/", "ec2:ResourceTag/"} {
		switch {
		case !listed(f), t.created:
			// Not carried, or the resource has no tags yet.
			c.complete = append(c.complete, f)
		case t.tags != nil:
			for k, val := range t.tags {
				c.ctx[f+k] = []string{val}
			}
			c.complete = append(c.complete, f)
		default:
			c.unknown = append(c.unknown, UnknownKey{Key: f, Why: "the resource's tags are not known"})
		}
	}
	c.complete = append(c.complete, "ec2:Region", "ec2:CreateAction")
	if listed("ec2:Region") {
		c.ctx["ec2:Region"] = []string{b.in.Region}
	}
	if createAction != "" && listed("ec2:CreateAction") {
		c.ctx["ec2:CreateAction"] = []string{createAction}
	}
	for _, k := range attrKeys {
		if !listed(k) {
			c.complete = append(c.complete, k)
			continue
		}
		if v, ok := t.attrs[k]; ok {
			if v != "" {
				c.ctx[k] = []string{v}
			}
			c.complete = append(c.complete, k)
			continue
		}
		why := t.unknown[k]
		if why == "" {
			why = "not known before the launch"
		}
		c.unknown = append(c.unknown, UnknownKey{Key: k, Why: why})
	}
	b.contexts[memo] = c
	return c
}

func boolByte(b bool) byte {
	if b {
		return '1'
	}
	return '0'
}

// add adds action on t, in step and call, when the reference lists t's
// type for action.
func (b *launchBuilder) add(step Step, call, action string, t *target, ts tagSet, createAction string) {
	if _, ok := conditionKeys(action, t.typ); !ok {
		return
	}
	c := b.context(action, t, ts, createAction)
	b.reqs = append(b.reqs, Request{Step: step, Call: call, Action: action, Resource: t.arn,
		Context: c.ctx, Complete: c.complete, Placeholder: t.placeholder, Unknown: c.unknown})
}

// create adds CreateLaunchTemplate and the tagging it implies.
func (b *launchBuilder) create(step Step, call string, ts tagSet) {
	lt := &target{typ: "launch-template", arn: b.ec2ARN("launch-template/*"), created: true, id: "new-launch-template"}
	b.add(step, call, "ec2:CreateLaunchTemplate", lt, ts, "")
	b.add(step, call, "ec2:CreateTags", lt, ts, "CreateLaunchTemplate")
}

// fleet adds an instant CreateFleet from the launch template lt and the
// tagging of what it creates.
//
// An instant fleet launches its instances with the caller's own
// permissions (EC2's docs: an instant fleet needs no service-linked role),
// so the same call is also authorized as ec2:RunInstances on what it
// launches and uses. Karpenter's own controller policies say the same:
// every launch statement allows RunInstances beside CreateFleet, and the
// tagging statement allows ec2:CreateAction=RunInstances, since long
// before 1.3, when Karpenter itself never called RunInstances. Each
// action is asked on the resource types the reference lists for it:
// CreateFleet is not authorized on network interfaces or security groups,
// RunInstances is.
func (b *launchBuilder) fleet(step Step, call string, ts tagSet, lt *target) {
	fleet := &target{typ: "fleet", arn: b.ec2ARN("fleet/*"), created: true, id: "fleet"}
	targets := append([]*target{fleet}, b.instances...)
	targets = append(append(append(targets, b.volumes...), b.interfaces...), lt)
	for _, t := range targets {
		for _, action := range []string{"ec2:CreateFleet", "ec2:RunInstances"} {
			b.add(step, call, action, t, ts, "")
		}
	}
	b.add(step, call, "ec2:CreateTags", fleet, ts, "CreateFleet")
	for _, t := range b.instances {
		b.add(step, call, "ec2:CreateTags", t, ts, "CreateFleet")
	}
	for _, t := range b.volumes {
		b.add(step, call, "ec2:CreateTags", t, ts, "CreateFleet")
	}
	b.existing(step, call, "ec2:CreateFleet")
	b.existing(step, call, "ec2:RunInstances")
}

// addCreated adds action on the instance, volumes and network interface
// a launch creates.
func (b *launchBuilder) addCreated(step Step, call, action string, ts tagSet, createAction string) {
	for _, list := range [][]*target{b.instances, b.volumes, b.interfaces} {
		for _, t := range list {
			b.add(step, call, action, t, ts, createAction)
		}
	}
}

// runInstances adds the validation's RunInstances dry-run: from the
// launch template lt from 1.7 on, with an image and no template before.
func (b *launchBuilder) runInstances(ts tagSet, lt *target) {
	const call = "RunInstances (dry-run)"
	b.addCreated(StepValidation, call, "ec2:RunInstances", ts, "")
	if lt != nil {
		b.add(StepValidation, call, "ec2:RunInstances", lt, ts, "")
	}
	b.addCreated(StepValidation, call, "ec2:CreateTags", ts, "RunInstances")
	b.existing(StepValidation, call, "ec2:RunInstances")
}

// existing adds the requests of action on the image, subnets and security
// groups when they are resolved, and reports them not checked otherwise;
// only the types the reference lists for action.
func (b *launchBuilder) existing(step Step, call, action string) {
	for _, k := range []struct {
		kind    string
		targets []*target
	}{
		{"image", b.images},
		{"subnet", b.subnets},
		{"security-group", b.groups},
	} {
		if _, ok := conditionKeys(action, k.kind); !ok {
			continue
		}
		if len(k.targets) == 0 {
			b.notYet(step, action, k.kind)
			continue
		}
		for _, t := range k.targets {
			b.add(step, call, action, t, tagSet{id: -1}, "")
		}
	}
}

// notYet records that action on the class's resources of kind was not
// asked in step, one entry per action and kind.
func (b *launchBuilder) notYet(step Step, action, kind string) {
	for i := range b.notChecked {
		n := &b.notChecked[i]
		if n.Action == action && n.Resource == kind {
			if !slices.Contains(n.Steps, step) {
				n.Steps = append(n.Steps, step)
			}
			return
		}
	}
	reason := "not checked yet: no EC2 view resolved the selector terms"
	if b.in.EC2 != nil && b.in.EC2.Unresolved[kind] != "" {
		reason = "not checked: " + b.in.EC2.Unresolved[kind]
	}
	b.notChecked = append(b.notChecked, NotChecked{Steps: []Step{step}, Action: action, Resource: kind, Reason: reason})
}

// tagContext is the condition keys of a request carrying tags as request
// tags (aws:RequestTag/<key>, aws:TagKeys) and/or as the resource's tags
// (aws:ResourceTag/<key>).
func tagContext(tags map[string]string, request, resource bool) map[string][]string {
	ctx := make(map[string][]string, 2*len(tags)+3)
	keys := slices.Sorted(maps.Keys(tags))
	for _, k := range keys {
		if request {
			ctx["aws:RequestTag/"+k] = []string{tags[k]}
		}
		if resource {
			ctx["aws:ResourceTag/"+k] = []string{tags[k]}
		}
	}
	if request {
		ctx["aws:TagKeys"] = keys
	}
	return ctx
}
