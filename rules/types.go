package rules

import (
	"encoding/json"

	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// API groups and kinds nodeclass-guard validates.
const (
	KarpenterAWSGroup = "karpenter.k8s.aws"
	KarpenterGroup    = "karpenter.sh"
	EKSGroup          = "eks.amazonaws.com"

	EC2NodeClassKind = "EC2NodeClass"
	NodePoolKind     = "NodePool"
	NodeClassKind    = "NodeClass"
)

// Group-kinds of the objects a NodePool's nodeClassRef can name and this
// webhook validates.
var (
	EC2NodeClassGK = schema.GroupKind{Group: KarpenterAWSGroup, Kind: EC2NodeClassKind}
	NodePoolGK     = schema.GroupKind{Group: KarpenterGroup, Kind: NodePoolKind}
	EKSNodeClassGK = schema.GroupKind{Group: EKSGroup, Kind: NodeClassKind}
)

// EC2NodeClass is Karpenter's karpenter.k8s.aws EC2NodeClass (v1 and
// v1beta1), reduced to the fields the rules read. Everything else in the
// object is ignored when decoding, which keeps the webhook independent of
// Karpenter's release cadence and the informer cache small.
type EC2NodeClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              EC2NodeClassSpec `json:"spec"`
}

// EC2NodeClassSpec holds the node identity fields of an EC2NodeClass and
// its selector terms.
type EC2NodeClassSpec struct {
	// Role is the IAM role name Karpenter builds an instance profile for.
	Role string `json:"role,omitempty"`
	// InstanceProfile is a pre-made instance profile name.
	InstanceProfile string `json:"instanceProfile,omitempty"`
	// Tags are added to what Karpenter creates for the class (instance
	// profile, launch template, instances, volumes, network interfaces),
	// Karpenter's own tags overriding them.
	Tags map[string]string `json:"tags,omitempty"`
	// AMIFamily is the user-data format (AL2, AL2023, Bottlerocket,
	// Windows2019, Windows2022, Windows2025, Custom); nil takes the alias's.
	AMIFamily *string `json:"amiFamily,omitempty"`
	// The selector terms: each selects what it matches; a list selects
	// the union of its terms.
	SubnetSelectorTerms              []SelectorTerm `json:"subnetSelectorTerms,omitempty"`
	SecurityGroupSelectorTerms       []SelectorTerm `json:"securityGroupSelectorTerms,omitempty"`
	AMISelectorTerms                 []SelectorTerm `json:"amiSelectorTerms,omitempty"`
	CapacityReservationSelectorTerms []SelectorTerm `json:"capacityReservationSelectorTerms,omitempty"`
	// Kubelet is the kubelet configuration: a free-form map from Karpenter
	// 1.15 (validated by Karpenter, not by the API server), typed before.
	Kubelet map[string]json.RawMessage `json:"kubelet,omitempty"`
	// UserData is merged with Karpenter's own bootstrap, in the AMI
	// family's format.
	UserData *string `json:"userData,omitempty"`
	// BlockDeviceMappings are the node's volumes; their KMS keys must be
	// usable by the role that launches.
	BlockDeviceMappings []BlockDeviceMapping `json:"blockDeviceMappings,omitempty"`
}

// BlockDeviceMapping is one of spec.blockDeviceMappings, reduced to what
// the KMS rule reads.
type BlockDeviceMapping struct {
	DeviceName *string         `json:"deviceName,omitempty"`
	EBS        *BlockDeviceEBS `json:"ebs,omitempty"`
	RootVolume bool            `json:"rootVolume,omitempty"`
}

// BlockDeviceEBS is a mapping's ebs: whether it is encrypted, with which
// key, and its type and size (the launch's ec2:Volume* keys).
type BlockDeviceEBS struct {
	Encrypted  *bool              `json:"encrypted,omitempty"`
	KMSKeyID   *string            `json:"kmsKeyID,omitempty"`
	VolumeType *string            `json:"volumeType,omitempty"`
	VolumeSize *resource.Quantity `json:"volumeSize,omitempty"`
}

// copyNodeConfig copies what the node is given: kubelet, userData and the
// block device mappings.
func copyNodeConfig(in EC2NodeClassSpec, out *EC2NodeClassSpec) {
	if in.Kubelet != nil {
		out.Kubelet = make(map[string]json.RawMessage, len(in.Kubelet))
		for k, v := range in.Kubelet {
			out.Kubelet[k] = append(json.RawMessage(nil), v...)
		}
	}
	if in.UserData != nil {
		u := *in.UserData
		out.UserData = &u
	}
	if in.BlockDeviceMappings != nil {
		out.BlockDeviceMappings = make([]BlockDeviceMapping, len(in.BlockDeviceMappings))
		for i, m := range in.BlockDeviceMappings {
			if m.DeviceName != nil {
				n := *m.DeviceName
				m.DeviceName = &n
			}
			if m.EBS != nil {
				e := *m.EBS
				if e.Encrypted != nil {
					b := *e.Encrypted
					e.Encrypted = &b
				}
				if e.KMSKeyID != nil {
					k := *e.KMSKeyID
					e.KMSKeyID = &k
				}
				if e.VolumeType != nil {
					t := *e.VolumeType
					e.VolumeType = &t
				}
				if e.VolumeSize != nil {
					q := e.VolumeSize.DeepCopy()
					e.VolumeSize = &q
				}
				m.EBS = &e
			}
			out.BlockDeviceMappings[i] = m
		}
	}
}

// SelectorTerm is one term of any of an EC2NodeClass's selector lists
// (Karpenter's SubnetSelectorTerm, SecurityGroupSelectorTerm,
// AMISelectorTerm and CapacityReservationSelectorTerm share these fields;
// each list uses its own subset).
type SelectorTerm struct {
	Tags map[string]string `json:"tags,omitempty"`
	ID   string            `json:"id,omitempty"`
	// Name: security groups and AMIs.
	Name string `json:"name,omitempty"`
	// Owner, Alias, SSMParameter: AMIs.
	Owner        string `json:"owner,omitempty"`
	Alias        string `json:"alias,omitempty"`
	SSMParameter string `json:"ssmParameter,omitempty"`
	// OwnerID, InstanceMatchCriteria: capacity reservations.
	OwnerID               string `json:"ownerID,omitempty"`
	InstanceMatchCriteria string `json:"instanceMatchCriteria,omitempty"`
}

func copyTerms(ts []SelectorTerm) []SelectorTerm {
	if ts == nil {
		return nil
	}
	out := make([]SelectorTerm, len(ts))
	for i, t := range ts {
		out[i] = t
		if t.Tags != nil {
			out[i].Tags = make(map[string]string, len(t.Tags))
			for k, v := range t.Tags {
				out[i].Tags[k] = v
			}
		}
	}
	return out
}

// DeepCopy returns a copy of the spec sharing nothing with it.
func (in EC2NodeClassSpec) DeepCopy() EC2NodeClassSpec {
	out := in
	if in.Tags != nil {
		out.Tags = make(map[string]string, len(in.Tags))
		for k, v := range in.Tags {
			out.Tags[k] = v
		}
	}
	if in.AMIFamily != nil {
		f := *in.AMIFamily
		out.AMIFamily = &f
	}
	out.SubnetSelectorTerms = copyTerms(in.SubnetSelectorTerms)
	out.SecurityGroupSelectorTerms = copyTerms(in.SecurityGroupSelectorTerms)
	out.AMISelectorTerms = copyTerms(in.AMISelectorTerms)
	out.CapacityReservationSelectorTerms = copyTerms(in.CapacityReservationSelectorTerms)
	copyNodeConfig(in, &out)
	return out
}

// NodeClass is EKS Auto Mode's eks.amazonaws.com/v1 NodeClass, reduced to
// the fields the rules read.
type NodeClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeClassSpec `json:"spec"`
}

// NodeClassSpec holds the node identity fields of an EKS Auto Mode NodeClass.
type NodeClassSpec struct {
	// Role is the IAM role name EKS gives the nodes.
	Role string `json:"role,omitempty"`
	// InstanceProfile is accepted for symmetry with EC2NodeClass; EKS
	// requires such names to start with "eks".
	InstanceProfile string `json:"instanceProfile,omitempty"`
	// Tags are put on what EKS Auto Mode launches for the class, by the
	// cluster's role.
	Tags map[string]string `json:"tags,omitempty"`
	// The selector terms, resolved and judged as an EC2NodeClass's: the
	// node's subnets (id or tags) and security groups (id, name or tags),
	// and the pods' (podSubnetSelectorTerms, podSecurityGroupSelectorTerms:
	// id or tags), as the EKS User Guide's "Create a Node Class for Amazon
	// EKS" documents them.
	SubnetSelectorTerms           []SelectorTerm `json:"subnetSelectorTerms,omitempty"`
	SecurityGroupSelectorTerms    []SelectorTerm `json:"securityGroupSelectorTerms,omitempty"`
	PodSubnetSelectorTerms        []SelectorTerm `json:"podSubnetSelectorTerms,omitempty"`
	PodSecurityGroupSelectorTerms []SelectorTerm `json:"podSecurityGroupSelectorTerms,omitempty"`
}

// NodePool is Karpenter's karpenter.sh NodePool (v1 and v1beta1), reduced to
// its nodeClassRef.
type NodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodePoolSpec `json:"spec"`
}

// NodePoolSpec is the part of a NodePool's spec the rules read.
type NodePoolSpec struct {
	Template NodeClaimTemplate `json:"template"`
}

// NodeClaimTemplate is a NodePool's spec.template.
type NodeClaimTemplate struct {
	Spec NodeClaimTemplateSpec `json:"spec"`
}

// NodeClaimTemplateSpec is a NodePool's spec.template.spec.
type NodeClaimTemplateSpec struct {
	NodeClassRef *NodeClassReference `json:"nodeClassRef,omitempty"`
	// Requirements constrain the nodes; the capacity type's says whether
	// spot may be launched.
	Requirements []NodeSelectorRequirement `json:"requirements,omitempty"`
}

// NodeSelectorRequirement is one of a NodePool's requirements (Karpenter's
// NodeSelectorRequirementWithMinValues, reduced to what the rules read).
type NodeSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// NodeClassReference is spec.template.spec.nodeClassRef: v1 names the class
// by group, kind and name; v1beta1 by apiVersion, kind and name.
type NodeClassReference struct {
	Group      string `json:"group,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name,omitempty"`
}

// GroupKind returns the referenced group and kind, whichever version of the
// reference was used.
func (r NodeClassReference) GroupKind() schema.GroupKind {
	group := r.Group
	if group == "" && r.APIVersion != "" {
		if gv, err := schema.ParseGroupVersion(r.APIVersion); err == nil {
			group = gv.Group
		}
	}
	return schema.GroupKind{Group: group, Kind: r.Kind}
}

// EC2NodeClassList is a list of EC2NodeClass, for the informer cache.
type EC2NodeClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EC2NodeClass `json:"items"`
}

// NodeClassList is a list of NodeClass, for the informer cache.
type NodeClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeClass `json:"items"`
}

// NodePoolList is a list of NodePool.
type NodePoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodePool `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (in *EC2NodeClass) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = in.Spec.DeepCopy()
	return &out
}

// DeepCopyObject implements runtime.Object.
func (in *NodeClass) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Tags != nil {
		out.Spec.Tags = make(map[string]string, len(in.Spec.Tags))
		for k, v := range in.Spec.Tags {
			out.Spec.Tags[k] = v
		}
	}
	out.Spec.SubnetSelectorTerms = copyTerms(in.Spec.SubnetSelectorTerms)
	out.Spec.SecurityGroupSelectorTerms = copyTerms(in.Spec.SecurityGroupSelectorTerms)
	out.Spec.PodSubnetSelectorTerms = copyTerms(in.Spec.PodSubnetSelectorTerms)
	out.Spec.PodSecurityGroupSelectorTerms = copyTerms(in.Spec.PodSecurityGroupSelectorTerms)
	return &out
}

// DeepCopyObject implements runtime.Object.
func (in *NodePool) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Template.Spec.NodeClassRef != nil {
		ref := *in.Spec.Template.Spec.NodeClassRef
		out.Spec.Template.Spec.NodeClassRef = &ref
	}
	if in.Spec.Template.Spec.Requirements != nil {
		out.Spec.Template.Spec.Requirements = make([]NodeSelectorRequirement, len(in.Spec.Template.Spec.Requirements))
		for i, r := range in.Spec.Template.Spec.Requirements {
			r.Values = append([]string(nil), r.Values...)
			out.Spec.Template.Spec.Requirements[i] = r
		}
	}
	return &out
}

// DeepCopyObject implements runtime.Object.
func (in *EC2NodeClassList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &EC2NodeClassList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range in.Items {
		out.Items = append(out.Items, *in.Items[i].DeepCopyObject().(*EC2NodeClass))
	}
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *NodeClassList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &NodeClassList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range in.Items {
		out.Items = append(out.Items, *in.Items[i].DeepCopyObject().(*NodeClass))
	}
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *NodePoolList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &NodePoolList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range in.Items {
		out.Items = append(out.Items, *in.Items[i].DeepCopyObject().(*NodePool))
	}
	return out
}

// AdmissionScheme registers every served version of the three kinds, so that
// the admission decoder accepts v1 and v1beta1 requests into one Go type.
// It must not be used by a client: a Go type with two versions is ambiguous
// there (see ClientScheme).
func AdmissionScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, v := range []string{"v1", "v1beta1"} {
		s.AddKnownTypeWithName(schema.GroupVersionKind{Group: KarpenterAWSGroup, Version: v, Kind: EC2NodeClassKind}, &EC2NodeClass{})
		s.AddKnownTypeWithName(schema.GroupVersionKind{Group: KarpenterGroup, Version: v, Kind: NodePoolKind}, &NodePool{})
	}
	s.AddKnownTypeWithName(schema.GroupVersionKind{Group: EKSGroup, Version: "v1", Kind: NodeClassKind}, &NodeClass{})
	return s
}

// AddToClientScheme registers the v1 kinds (and their lists) the webhook
// reads from the cluster to resolve a NodePool's nodeClassRef.
func AddToClientScheme(s *runtime.Scheme) error {
	awsV1 := schema.GroupVersion{Group: KarpenterAWSGroup, Version: "v1"}
	s.AddKnownTypes(awsV1, &EC2NodeClass{}, &EC2NodeClassList{})
	metav1.AddToGroupVersion(s, awsV1)
	eksV1 := schema.GroupVersion{Group: EKSGroup, Version: "v1"}
	s.AddKnownTypes(eksV1, &NodeClass{}, &NodeClassList{})
	metav1.AddToGroupVersion(s, eksV1)
	shV1 := schema.GroupVersion{Group: KarpenterGroup, Version: "v1"}
	s.AddKnownTypes(shV1, &NodePool{}, &NodePoolList{}, &NodeClaim{}, &NodeClaimList{})
	metav1.AddToGroupVersion(s, shV1)
	return nil
}

// NodeClaim is Karpenter's karpenter.sh/v1 NodeClaim, reduced to what the
// update guard reads: its class and, from its labels, its zone.
type NodeClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodeClaimSpec `json:"spec"`
}

// NodeClaimSpec is the part of a NodeClaim's spec the update guard reads.
type NodeClaimSpec struct {
	NodeClassRef *NodeClassReference `json:"nodeClassRef,omitempty"`
}

// ZoneLabel is the label Karpenter puts a NodeClaim's zone in.
const ZoneLabel = "topology.kubernetes.io/zone"

// Zone returns the NodeClaim's zone, "" before it has launched.
func (n *NodeClaim) Zone() string { return n.Labels[ZoneLabel] }

// NodeClaimList is a list of NodeClaim.
type NodeClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeClaim `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (in *NodeClaim) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.NodeClassRef != nil {
		ref := *in.Spec.NodeClassRef
		out.Spec.NodeClassRef = &ref
	}
	return &out
}

// DeepCopyObject implements runtime.Object.
func (in *NodeClaimList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &NodeClaimList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	for i := range in.Items {
		out.Items = append(out.Items, *in.Items[i].DeepCopyObject().(*NodeClaim))
	}
	return out
}

var (
	specPath            = field.NewPath("spec")
	rolePath            = specPath.Child("role")
	instanceProfilePath = specPath.Child("instanceProfile")
	nodeClassRefPath    = specPath.Child("template", "spec", "nodeClassRef")
)

// capacityTypeKey is the well-known label of a node's capacity type.
const capacityTypeKey = "karpenter.sh/capacity-type"

var requirementsPath = specPath.Child("template", "spec", "requirements")

// class is what the class rules read of a node class.
type class struct {
	name    string
	role    string
	profile string
	// eks marks an EKS Auto Mode NodeClass: EKS, not Karpenter's
	// controller, launches its nodes, so no controller permission is
	// checked.
	eks bool
	// nodePool is the NodePool whose launches are checked (its name is a
	// launch tag); "" means the class's own name.
	nodePool string
	// tags are the class's spec.tags.
	tags map[string]string
	// uid is the class's metadata.uid ("" in a manifest that has none).
	uid string
	// ec2 are the image, subnet and security-group ARNs the class's
	// selectors resolve to; nil when they are not resolved.
	ec2 *karpenter.EC2Resources
	// launch is what the NodePool and the class say of the instances
	// and volumes Karpenter launches (launchkeys.go).
	launch karpenter.Launch
}

func (cl class) nodePoolOrName() string {
	if cl.nodePool != "" {
		return cl.nodePool
	}
	return cl.name
}
