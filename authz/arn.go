package authz

import (
	"fmt"
	"strings"
)

// ARN is a parsed Amazon Resource Name.
type ARN struct {
	Partition string
	Service   string
	Region    string
	Account   string
	Resource  string
}

func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// knownPartitions are the AWS partitions an IAM ARN may name.
var knownPartitions = map[string]bool{
	"aws": true, "aws-cn": true, "aws-us-gov": true, "aws-iso": true,
	"aws-iso-b": true, "aws-iso-e": true, "aws-iso-f": true, "aws-eusc": true,
}

// ParseARN splits s into its six parts. It checks only the shape.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ARN{}, fmt.Errorf("%q is not an ARN (want arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)", s)
	}
	return ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}, nil
}

// RoleARN is a parsed IAM role ARN.
type RoleARN struct {
	Partition string
	Account   string
	Path      string // "/" or "/team/"
	Name      string
}

func (r RoleARN) String() string {
	return "arn:" + r.Partition + ":iam::" + r.Account + ":role" + r.Path + r.Name
}

// ParseRoleARN parses an IAM role ARN such as
// arn:aws:iam::111122223333:role/team/Name, and also accepts an STS
// assumed-role ARN (arn:aws:sts::111122223333:assumed-role/Name/session),
// whose path is unknown ("/") until IAM is asked. The error says which part
// is wrong.
func ParseRoleARN(s string) (RoleARN, error) {
	a, err := ParseARN(s)
	if err != nil {
		return RoleARN{}, err
	}
	if !knownPartitions[a.Partition] {
		return RoleARN{}, fmt.Errorf("%q has partition %q; want aws, aws-cn or aws-us-gov", s, a.Partition)
	}
	if !isAccountID(a.Account) {
		return RoleARN{}, fmt.Errorf("%q has account %q; want a 12-digit account ID", s, a.Account)
	}
	if a.Region != "" {
		return RoleARN{}, fmt.Errorf("%q has region %q; IAM ARNs have an empty region", s, a.Region)
	}
	switch {
	case a.Service == "iam" && strings.HasPrefix(a.Resource, "role/"):
		full := a.Resource[len("role"):] // "/team/Name"
		i := strings.LastIndexByte(full, '/')
		r := RoleARN{Partition: a.Partition, Account: a.Account, Path: full[:i+1], Name: full[i+1:]}
		if r.Name == "" {
			return RoleARN{}, fmt.Errorf("%q has no role name after %q", s, "role"+r.Path)
		}
		return r, nil
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/"):
		rest := strings.SplitN(a.Resource[len("assumed-role/"):], "/", 2)
		if rest[0] == "" {
			return RoleARN{}, fmt.Errorf("%q has no role name after assumed-role/", s)
		}
		return RoleARN{Partition: a.Partition, Account: a.Account, Path: "/", Name: rest[0]}, nil
	default:
		return RoleARN{}, fmt.Errorf("%q is not an IAM role ARN (want arn:%s:iam::%s:role/NAME)", s, a.Partition, a.Account)
	}
}

// IsAssumedRoleARN reports whether s is an STS assumed-role ARN.
func IsAssumedRoleARN(s string) bool {
	a, err := ParseARN(s)
	return err == nil && a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/")
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// PartitionOfRegion returns the partition a region belongs to: aws-cn for
// cn-*, aws-us-gov for us-gov-*, else aws.
func PartitionOfRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// IAMARN returns the ARN of an IAM resource: resource is "role/", a path
// and a name, "instance-profile/*", and so on.
func IAMARN(partition, account, resource string) string {
	return ARN{Partition: partition, Service: "iam", Account: account, Resource: resource}.String()
}

// InstanceProfileARN returns an instance profile's ARN; path is "/" or
// "/team/", "" counting as "/".
func InstanceProfileARN(partition, account, path, name string) string {
	if path == "" {
		path = "/"
	}
	return IAMARN(partition, account, "instance-profile"+path+name)
}

// EC2ARN returns the ARN of an EC2 resource (or pattern) in a region, such
// as instance/*.
func EC2ARN(partition, region, account, resource string) string {
	return ARN{Partition: partition, Service: "ec2", Region: region, Account: account, Resource: resource}.String()
}

// EC2PassRoleServices returns the values of iam:PassedToService under which
// the Karpenter controller passes a node role it names in spec.role. EC2
// receives the role with the partition's EC2 service principal; in China,
// IAM's AddRoleToInstanceProfile (Karpenter creating the instance profile)
// checks iam:PassRole with ec2.amazonaws.com as well, so both must be
// allowed there.
func EC2PassRoleServices(partition string) []string {
	if partition == "aws-cn" {
		return []string{EC2ServicePrincipal(partition), "ec2.amazonaws.com"}
	}
	return []string{EC2ServicePrincipal(partition)}
}

// EC2ServicePrincipal returns the EC2 service principal of a partition:
// ec2.amazonaws.com, or ec2.amazonaws.com.cn in China.
func EC2ServicePrincipal(partition string) string {
	if partition == "aws-cn" {
		return "ec2.amazonaws.com.cn"
	}
	return "ec2.amazonaws.com"
}

// WithoutPath returns the role's ARN as the aws-auth ConfigMap must name
// it: EKS's authenticator matches role/NAME and drops the path.
func (r RoleARN) WithoutPath() RoleARN {
	r.Path = "/"
	return r
}

// SpotServicePrincipal is the service of EC2 Spot's service-linked role.
const SpotServicePrincipal = "spot.amazonaws.com"

// SpotServiceLinkedRoleName is the name of EC2 Spot's service-linked role.
const SpotServiceLinkedRoleName = "AWSServiceRoleForEC2Spot"

// SpotServiceLinkedRoleARN returns the ARN of EC2 Spot's service-linked
// role in an account, as iam:CreateServiceLinkedRole is asked on it.
func SpotServiceLinkedRoleARN(partition, account string) string {
	return IAMARN(partition, account, "role/aws-service-role/"+SpotServicePrincipal+"/"+SpotServiceLinkedRoleName)
}

// EKSAccessPolicyARN returns the ARN of an EKS access policy such as
// AmazonEKSAutoNodePolicy.
func EKSAccessPolicyARN(partition, name string) string {
	return ARN{Partition: partition, Service: "eks", Account: "aws", Resource: "cluster-access-policy/" + name}.String()
}

// SubnetARN returns a subnet's ARN: the account is its owner's.
func SubnetARN(partition, region, owner, id string) string {
	return EC2ARN(partition, region, owner, "subnet/"+id)
}

// SecurityGroupARN returns a security group's ARN.
func SecurityGroupARN(partition, region, owner, id string) string {
	return EC2ARN(partition, region, owner, "security-group/"+id)
}

// ImageARN returns an image's ARN, which names no account (IAM matches
// RunInstances' image resource as arn:PARTITION:ec2:REGION::image/ID).
func ImageARN(partition, region, id string) string {
	return EC2ARN(partition, region, "", "image/"+id)
}

// CapacityReservationARN returns a capacity reservation's ARN.
func CapacityReservationARN(partition, region, owner, id string) string {
	return EC2ARN(partition, region, owner, "capacity-reservation/"+id)
}
