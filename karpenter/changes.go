package karpenter

// Change is one difference between Karpenter versions in the requests the
// model makes, with where it comes from in Karpenter's repository
// (github.com/aws/karpenter-provider-aws).
type Change struct {
	// Since is the first minor version with the change.
	Since Version
	// What the change does to the requests.
	What string
	// Source: the pull request and the file it changed, as read at the
	// release tag.
	Source string
}

// Changes lists, oldest first, every difference between the modelled
// versions. The README's "What we ask IAM, per Karpenter version" section
// is written from this list; karpenter_test.go checks that each one is
// reflected in Requests.
var Changes = []Change{
	{
		Since:  Version{1, 0},
		What:   "launch templates carry the extra tag karpenter.k8s.aws/cluster=<cluster> (1.0 only)",
		Source: "v1.0.0 pkg/providers/launchtemplate/launchtemplate.go; dropped in v1.1.0 by #7379 (\"Drop karpenter.k8s.aws/cluster tag from launch templates\")",
	},
	{
		Since:  Version{1, 3},
		What:   "the class's validation dry-runs CreateFleet, CreateLaunchTemplate and RunInstances with the launch tags and karpenter.sh/nodepool=\"\" (no NodePool), beside the launches",
		Source: "#7624 (\"Validation controller permission error check for Nodeclass\"), v1.3.0 pkg/controllers/nodeclass/validation.go",
	},
	{
		Since:  Version{1, 7},
		What:   "the validation creates a real launch template (no dry-run) and dry-runs CreateFleet and RunInstances with it, in that order (up to 1.6: CreateFleet, CreateLaunchTemplate, RunInstances; the first denied names ValidationSucceeded's reason); the instance profile's name hashes a random UUID (<cluster>_<hash of region, class name, UUID>), so it cannot be predicted",
		Source: "#8408 (\"use real launch templates in validation instead of dry-run\"), v1.7.0 pkg/controllers/nodeclass/validation.go; #8249 (\"EC2NodeClass spec.role mutability\"), v1.7.0 pkg/apis/v1/ec2nodeclass.go InstanceProfileName",
	},
	{
		Since:  Version{1, 13},
		What:   "the instance profile is created under the path /karpenter/<region>/<cluster>/<class UID>/",
		Source: "#9120 (\"allow callers to specify custom IAM path for instance profiles\"), v1.13.0 pkg/controllers/nodeclass/instanceprofile.go and pkg/providers/instanceprofile/instanceprofile.go FormatPath",
	},
}
