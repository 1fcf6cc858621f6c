package karpenter

import (
	"hash/fnv"
	"maps"
	"reflect"
	"slices"
	"strconv"

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
	// EC2 holds the image, subnet and security-group ARNs the class's
	// selectors resolve to; nil means nobody resolved them, and the
	// launch requests on them are reported as not checked.
	EC2 *EC2Resources
}

// EC2Resources are the existing EC2 resources a launch uses, resolved from
// the class's amiSelectorTerms, subnetSelectorTerms and
// securityGroupSelectorTerms by an EC2 view.
type EC2Resources struct {
	Images, Subnets, SecurityGroups []string
	// Unresolved says, by kind ("image", "subnet", "security-group"),
	// why an empty list is empty, when an EC2 view resolved the selectors.
	Unresolved map[string]string
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
// (StepValidation). Requests on the image, subnets and security groups are
// made only when in.EC2 resolves them; otherwise they are returned as
// NotChecked.
func LaunchRequests(v Version, in Input) ([]Request, []NotChecked) {
	nodePool := in.NodePool
	if nodePool == "" {
		nodePool = in.Class
	}
	b := launchBuilder{v: v, in: in}
	launch := LaunchTags(in, nodePool)
	lt := launchTemplateTags(v, in, launch)
	usedLT := b.ec2ARN("launch-template/" + PlaceholderLaunchTemplateID)
	const ltNote = PlaceholderLaunchTemplateID + " stands for the ID EC2 gives the launch template"

	// Launch: CreateLaunchTemplate with the launch template's tags, then
	// an instant CreateFleet from it, tagging the fleet, instances and
	// volumes (network interfaces get the same tags from the template).
	b.create(StepLaunch, "CreateLaunchTemplate", lt)
	b.fleet(StepLaunch, "CreateFleet", launch, usedLT, lt, ltNote)

	if v.atLeast(3) {
		// The validation's tags: no NodePool, so karpenter.sh/nodepool="".
		val := LaunchTags(in, "")
		valLT := launchTemplateTags(v, in, val)
		if v.atLeast(7) {
			b.create(StepValidation, "CreateLaunchTemplate", valLT)
			b.fleet(StepValidation, "CreateFleet (dry-run)", val, usedLT, valLT, ltNote)
			b.runInstances(val, usedLT, valLT, ltNote)
		} else {
			b.create(StepValidation, "CreateLaunchTemplate (dry-run)", valLT)
			b.fleet(StepValidation, "CreateFleet (dry-run)", val, b.ec2ARN("launch-template/"+mockLaunchTemplateID), map[string]string{}, "")
			b.runInstances(val, "", nil, "")
		}
	}
	return b.reqs, b.notChecked
}

type launchBuilder struct {
	v          Version
	in         Input
	reqs       []Request
	notChecked []NotChecked
	// contexts are the contexts built so far: the requests of one call
	// share theirs (a few maps for dozens of requests, which
	// authz.PrepareKeys then writes once each).
	contexts []builtContext
}

// builtContext is one context ec2Context built, with what it was built from.
type builtContext struct {
	tags, resTags map[string]string
	createAction  string
	ctx           map[string][]string
	complete      []string
}

// sameMap reports whether a and b are the same map (or both nil).
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func (b *launchBuilder) ec2ARN(resource string) string {
	return authz.EC2ARN(b.in.Partition, b.in.Region, b.in.Account, resource)
}

// ec2Context is the context of an EC2 request with request tags tags,
// resource tags resTags (nil: unknown), and createAction for
// ec2:CreateTags ("" otherwise).
func (b *launchBuilder) ec2Context(tags, resTags map[string]string, createAction string) (map[string][]string, []string) {
	for _, c := range b.contexts {
		if sameMap(c.tags, tags) && sameMap(c.resTags, resTags) && c.createAction == createAction {
			return c.ctx, c.complete
		}
	}
	ctx, complete := b.newEC2Context(tags, resTags, createAction)
	b.contexts = append(b.contexts, builtContext{tags: tags, resTags: resTags, createAction: createAction, ctx: ctx, complete: complete})
	return ctx, complete
}

func (b *launchBuilder) newEC2Context(tags, resTags map[string]string, createAction string) (map[string][]string, []string) {
	ctx := tagContext(tags, true, false)
	complete := []string{"aws:RequestTag/", "aws:TagKeys", "aws:RequestedRegion", "ec2:Region", "ec2:CreateAction"}
	for k, val := range resTags {
		ctx["aws:ResourceTag/"+k] = []string{val}
	}
	if resTags != nil {
		complete = append(complete, "aws:ResourceTag/")
	}
	ctx["aws:RequestedRegion"] = []string{b.in.Region}
	ctx["ec2:Region"] = []string{b.in.Region}
	if createAction != "" {
		ctx["ec2:CreateAction"] = []string{createAction}
	}
	return ctx, complete
}

func (b *launchBuilder) add(step Step, call, action, resource string, tags, resTags map[string]string, createAction, placeholder string) {
	ctx, complete := b.ec2Context(tags, resTags, createAction)
	b.reqs = append(b.reqs, Request{Step: step, Call: call, Action: action, Resource: resource,
		Context: ctx, Complete: complete, Placeholder: placeholder})
}

// none is the resource tags of a resource the request creates: it has none
// yet.
var none = map[string]string{}

// create adds CreateLaunchTemplate and the tagging it implies.
func (b *launchBuilder) create(step Step, call string, tags map[string]string) {
	res := b.ec2ARN("launch-template/*")
	b.add(step, call, "ec2:CreateLaunchTemplate", res, tags, none, "", "")
	b.add(step, call, "ec2:CreateTags", res, tags, none, "CreateLaunchTemplate", "")
}

// fleet adds an instant CreateFleet from the launch template lt (with
// resource tags ltTags) and the tagging of what it creates.
//
// An instant fleet launches its instances with the caller's own
// permissions (EC2's docs: an instant fleet needs no service-linked role),
// so the same call is also authorized as ec2:RunInstances on what it
// launches and uses. Karpenter's own controller policies say the same:
// every launch statement allows RunInstances beside CreateFleet, and the
// tagging statement allows ec2:CreateAction=RunInstances, since long
// before 1.3, when Karpenter itself never called RunInstances.
func (b *launchBuilder) fleet(step Step, call string, tags map[string]string, lt string, ltTags map[string]string, ltNote string) {
	for _, action := range []string{"ec2:CreateFleet", "ec2:RunInstances"} {
		if action == "ec2:CreateFleet" {
			b.add(step, call, action, b.ec2ARN("fleet/*"), tags, none, "", "")
		}
		for _, r := range []string{"instance/*", "volume/*", "network-interface/*"} {
			b.add(step, call, action, b.ec2ARN(r), tags, none, "", "")
		}
		if lt != "" {
			b.add(step, call, action, lt, tags, ltTags, "", ltNote)
		}
	}
	for _, r := range []string{"fleet/*", "instance/*", "volume/*"} {
		b.add(step, call, "ec2:CreateTags", b.ec2ARN(r), tags, none, "CreateFleet", "")
	}
	b.existing(step, call, "ec2:CreateFleet", tags)
	b.existing(step, call, "ec2:RunInstances", tags)
}

// runInstances adds the validation's RunInstances dry-run: from the
// launch template lt from 1.7 on, with an image and no template before.
func (b *launchBuilder) runInstances(tags map[string]string, lt string, ltTags map[string]string, ltNote string) {
	const call = "RunInstances (dry-run)"
	for _, r := range []string{"instance/*", "volume/*", "network-interface/*"} {
		b.add(StepValidation, call, "ec2:RunInstances", b.ec2ARN(r), tags, none, "", "")
	}
	if lt != "" {
		b.add(StepValidation, call, "ec2:RunInstances", lt, tags, ltTags, "", ltNote)
	}
	for _, r := range []string{"instance/*", "volume/*", "network-interface/*"} {
		b.add(StepValidation, call, "ec2:CreateTags", b.ec2ARN(r), tags, none, "RunInstances", "")
	}
	b.existing(StepValidation, call, "ec2:RunInstances", tags)
}

// existing adds the requests on the image, subnets and security groups
// when they are resolved, and reports them not checked otherwise. Their
// resource tags are not known here.
func (b *launchBuilder) existing(step Step, call, action string, tags map[string]string) {
	kinds := []struct {
		name, pattern string
		arns          []string
	}{
		{"image", "image/*", nil},
		{"subnet", "subnet/*", nil},
		{"security-group", "security-group/*", nil},
	}
	if b.in.EC2 != nil {
		kinds[0].arns, kinds[1].arns, kinds[2].arns = b.in.EC2.Images, b.in.EC2.Subnets, b.in.EC2.SecurityGroups
	}
	for _, k := range kinds {
		if len(k.arns) == 0 {
			b.notYet(step, action, k.name)
			continue
		}
		for _, arn := range k.arns {
			ctx, complete := b.ec2Context(tags, nil, "")
			b.reqs = append(b.reqs, Request{Step: step, Call: call, Action: action, Resource: arn, Context: ctx, Complete: complete})
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
