package rules

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
)

// The bounds of one admission: what a class or a NodePool may hold before
// anything is planned, asked or cached. Each is a limit AWS or the API
// server already enforces, so an object past one could never work; the
// check refuses it before its size can cost memory (a question per tag, a
// cache key holding every tag, a plan per resolved image). The check is
// pure and runs first in every entry point, serve and check alike.
const (
	// MaxTagsPerResource is EC2's and IAM's limit on the tags of one
	// resource (an instance, a volume, an instance profile).
	MaxTagsPerResource = 50
	// MaxTagKeyLength and MaxTagValueLength are EC2's and IAM's limits on
	// one tag, in characters.
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
	// MaxSelectorTerms is the CRD's maxItems of each selector list.
	MaxSelectorTerms = 30
	// MaxTermTags is the CRD's maxProperties of a selector term's tags.
	MaxTermTags = 20
	// MaxTermFieldBytes bounds a selector term's id, name, owner, alias,
	// ssmParameter and the like: an SSM parameter name, the longest of
	// them in AWS, has at most 2,048 characters.
	MaxTermFieldBytes = 2048
	// MaxRequirements is the NodePool CRD's maxItems of
	// spec.template.spec.requirements.
	MaxRequirements = 100
	// MaxRequirementKeyBytes and MaxRequirementValueBytes are the CRD's
	// maxLength of a requirement's key and of each value.
	MaxRequirementKeyBytes   = 316
	MaxRequirementValueBytes = 63
	// MaxBlockDeviceMappings is the EC2NodeClass CRD's maxItems of
	// spec.blockDeviceMappings: each KMS key named there is asked of KMS
	// (3 calls a distinct key, cached), so a forged list must not grow it.
	MaxBlockDeviceMappings = 50
	// MaxKMSKeyIDBytes is KMS's limit on a KeyId (an ID, ARN, alias name
	// or alias ARN).
	MaxKMSKeyIDBytes = 2048
)

// Karpenter's tagging controller adds these to an instance once its node
// registers (karpenter-provider-aws pkg/controllers/nodeclaim/tagging):
// with the launch tags, they are what an instance carries besides
// spec.tags. Name is kept when spec.tags sets it.
const (
	tagNodeClaim = "karpenter.sh/nodeclaim"
	tagName      = "Name"
)

var tagsPath = specPath.Child("tags")

// boundsEC2NodeClass checks an EC2NodeClass against the bounds; it returns
// the denials, nil when the class is within them.
func (c *Checker) boundsEC2NodeClass(nc *EC2NodeClass, np *NodePool) []Finding {
	cl := class{name: nc.Name, tags: nc.Spec.Tags, uid: string(nc.UID)}
	if np != nil {
		cl.nodePool = np.Name
	}
	fs := c.boundsClassTags(cl)
	for _, l := range []struct {
		name  string
		terms []SelectorTerm
	}{
		{"subnetSelectorTerms", nc.Spec.SubnetSelectorTerms},
		{"securityGroupSelectorTerms", nc.Spec.SecurityGroupSelectorTerms},
		{"amiSelectorTerms", nc.Spec.AMISelectorTerms},
		{"capacityReservationSelectorTerms", nc.Spec.CapacityReservationSelectorTerms},
	} {
		fs = append(fs, boundsTerms(specPath.Child(l.name), l.terms)...)
	}
	return append(fs, boundsVolumes(nc.Spec.BlockDeviceMappings)...)
}

// boundsVolumes checks spec.blockDeviceMappings against the CRD's cap and
// each KMS key ID against KMS's length: past them nothing is asked of KMS.
func boundsVolumes(bdms []BlockDeviceMapping) []Finding {
	path := specPath.Child("blockDeviceMappings")
	if len(bdms) > MaxBlockDeviceMappings {
		return []Finding{deny(SpecExceedsLimit, path,
			"%d block device mappings; the EC2NodeClass CRD allows at most %d (maxItems), and the API server refuses more. Keep the volumes the node needs", len(bdms), MaxBlockDeviceMappings)}
	}
	for i, m := range bdms {
		if m.EBS != nil && m.EBS.KMSKeyID != nil && len(*m.EBS.KMSKeyID) > MaxKMSKeyIDBytes {
			return []Finding{deny(SpecExceedsLimit, path.Index(i).Child("ebs", "kmsKeyID"),
				"%d bytes; KMS accepts a key ID, key ARN, alias name or alias ARN of at most %d, so no key has it. Name the key by its ID or ARN", len(*m.EBS.KMSKeyID), MaxKMSKeyIDBytes)}
		}
	}
	return nil
}

// boundsNodeClass checks an EKS Auto Mode NodeClass's tags: EKS adds the
// cluster's name tag to what it launches.
func (c *Checker) boundsNodeClass(nc *NodeClass) []Finding {
	fs := tagLengths(nc.Spec.Tags)
	if len(fs) > 0 {
		return fs
	}
	own := []string{"eks:eks-cluster-name"}
	if n := countWith(nc.Spec.Tags, own); n > MaxTagsPerResource {
		return []Finding{tooManyTags(len(nc.Spec.Tags), n, "the instances EKS Auto Mode launches", own)}
	}
	return nil
}

// boundsClassTags checks spec.tags: each tag within EC2's and IAM's
// lengths, and, with the tags Karpenter adds (per the modelled version),
// at most MaxTagsPerResource on each resource Karpenter tags.
func (c *Checker) boundsClassTags(cl class) []Finding {
	fs := tagLengths(cl.tags)
	if len(fs) > 0 || len(cl.tags)+1 <= MaxTagsPerResource-8 {
		// Karpenter adds fewer than 8 tags to any resource: no need to
		// build its tag sets for a class far from the limit.
		return fs
	}
	in := c.karpenterInput(cl)
	in.Tags = nil
	pool := cl.nodePoolOrName()
	for _, r := range []struct {
		what string
		own  []string
	}{
		{"an instance", append(sortedKeys(karpenter.LaunchTags(in, pool)), tagNodeClaim, tagName)},
		{"the instance profile", sortedKeys(karpenter.ProfileTags(in))},
	} {
		if n := countWith(cl.tags, r.own); n > MaxTagsPerResource {
			return []Finding{tooManyTags(len(cl.tags), n, r.what+" Karpenter creates", r.own)}
		}
	}
	return nil
}

// countWith is how many tags a resource carries: tags and the own keys,
// a key in both counted once.
func countWith(tags map[string]string, own []string) int {
	n := len(tags)
	for _, k := range own {
		if _, ok := tags[k]; !ok {
			n++
		}
	}
	return n
}

func tooManyTags(have, total int, what string, own []string) Finding {
	return deny(TagsExceedLimit, tagsPath,
		"spec.tags has %d tags; with the %d the launch adds (%s), %s would carry %d, and EC2 and IAM accept at most %d tags on a resource, so every launch would fail. Keep spec.tags to %d tags or fewer",
		have, total-have, truncate(strings.Join(own, ", "), 200), what, total, MaxTagsPerResource, MaxTagsPerResource-(total-have))
}

// tagLengths denies the first tag whose key or value is longer than EC2
// and IAM accept, or empty.
func tagLengths(tags map[string]string) []Finding {
	for _, k := range sortedKeys(tags) {
		v := tags[k]
		switch {
		case k == "":
			return []Finding{deny(TagsExceedLimit, tagsPath, "a tag has an empty key; EC2 and IAM accept keys of 1 to %d characters. Remove it", MaxTagKeyLength)}
		case utf8.RuneCountInString(k) > MaxTagKeyLength:
			return []Finding{deny(TagsExceedLimit, tagsPath.Key(truncate(k, 64)),
				"tag key %s has %d characters; EC2 and IAM accept at most %d, so every launch would fail. Shorten it", quote(k), utf8.RuneCountInString(k), MaxTagKeyLength)}
		case utf8.RuneCountInString(v) > MaxTagValueLength:
			return []Finding{deny(TagsExceedLimit, tagsPath.Key(truncate(k, 64)),
				"the value of tag %s has %d characters; EC2 and IAM accept at most %d, so every launch would fail. Shorten it", quote(k), utf8.RuneCountInString(v), MaxTagValueLength)}
		}
	}
	return nil
}

// boundsTerms checks one selector list against the CRD's caps and the
// lengths EC2 could ever match.
func boundsTerms(path *field.Path, terms []SelectorTerm) []Finding {
	if len(terms) > MaxSelectorTerms {
		return []Finding{deny(SpecExceedsLimit, path,
			"%d terms; the EC2NodeClass CRD allows at most %d (maxItems), and the API server refuses more. Merge terms (a term's tags select what carries all of them)", len(terms), MaxSelectorTerms)}
	}
	for i, t := range terms {
		p := path.Index(i)
		if len(t.Tags) > MaxTermTags {
			return []Finding{deny(SpecExceedsLimit, p.Child("tags"),
				"%d tags; the EC2NodeClass CRD allows at most %d per term (maxProperties), and the API server refuses more", len(t.Tags), MaxTermTags)}
		}
		for _, k := range sortedKeys(t.Tags) {
			if utf8.RuneCountInString(k) > MaxTagKeyLength || utf8.RuneCountInString(t.Tags[k]) > MaxTagValueLength {
				return []Finding{deny(SpecExceedsLimit, p.Child("tags").Key(truncate(k, 64)),
					"tag %s is longer than any EC2 tag (keys have at most %d characters, values %d), so the term could match nothing. Shorten it", quote(k), MaxTagKeyLength, MaxTagValueLength)}
			}
		}
		for _, f := range []struct{ name, v string }{
			{"id", t.ID}, {"name", t.Name}, {"owner", t.Owner}, {"alias", t.Alias},
			{"ssmParameter", t.SSMParameter}, {"ownerID", t.OwnerID}, {"instanceMatchCriteria", t.InstanceMatchCriteria},
		} {
			if len(f.v) > MaxTermFieldBytes {
				return []Finding{deny(SpecExceedsLimit, p.Child(f.name),
					"%d bytes; no EC2 or SSM name or ID is longer than %d, so the term could match nothing. Shorten it", len(f.v), MaxTermFieldBytes)}
			}
		}
	}
	return nil
}

// boundsNodePool checks a NodePool's requirements against the CRD's caps
// (a nodeClassRef's name is only looked up, never planned with).
func boundsNodePool(np *NodePool) []Finding {
	spec := np.Spec.Template.Spec
	reqPath := specPath.Child("template", "spec", "requirements")
	if len(spec.Requirements) > MaxRequirements {
		return []Finding{deny(SpecExceedsLimit, reqPath,
			"%d requirements; the NodePool CRD allows at most %d (maxItems), and the API server refuses more", len(spec.Requirements), MaxRequirements)}
	}
	for i, r := range spec.Requirements {
		if len(r.Key) > MaxRequirementKeyBytes {
			return []Finding{deny(SpecExceedsLimit, reqPath.Index(i).Child("key"),
				"%d bytes; the NodePool CRD allows at most %d (maxLength)", len(r.Key), MaxRequirementKeyBytes)}
		}
		for j, v := range r.Values {
			if len(v) > MaxRequirementValueBytes {
				return []Finding{deny(SpecExceedsLimit, reqPath.Index(i).Child("values").Index(j),
					"%d bytes; the NodePool CRD allows at most %d (maxLength)", len(v), MaxRequirementValueBytes)}
			}
		}
	}
	return nil
}

// outOfBounds returns the verdict of fs: nil denials mean within bounds.
func outOfBounds(fs []Finding) (Verdict, bool) {
	if len(fs) == 0 {
		return Verdict{}, false
	}
	var v Verdict
	v.addAll(fs)
	return v, true
}

// oldOutOfBounds reports whether an update's old object is past the
// bounds: it comes from the request too, and a caller that skips the API
// server chooses it.
func (c *Checker) oldOutOfBounds(old *EC2NodeClass) bool {
	return len(c.boundsEC2NodeClass(old, nil)) > 0
}

// What one admission may allocate for its launch questions.
const (
	// MaxLaunchResources is how many images, subnets or security groups
	// of one kind the launch questions are asked on: Karpenter launches
	// into a few; a list past it is reported as not checked, not asked
	// one question per resource.
	MaxLaunchResources = 100
	// maxCachedPlanBytes bounds one cached launch plan (its key and its
	// questions' resources and context): 128 plans of at most 256 KiB
	// hold 32 MiB at worst; a larger plan is rebuilt each time instead.
	maxCachedPlanBytes = 256 << 10
)

func tooManyToAsk(n int) string {
	return fmt.Sprintf("the selector terms match %d, more than the %d one admission asks about; narrow them", n, MaxLaunchResources)
}
