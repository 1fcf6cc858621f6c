package authz

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// The SDK clients' operations that nodeclass-guard calls, taken as method
// values, so that no *ec2.Client (nor IAM's, SSM's, EKS's, KMS's) ever
// becomes an interface value. Kubernetes' Scheme calls reflect's
// MethodByName, and then the linker keeps every exported method of every
// type converted to an interface, with its serializers: EC2's ~700
// operations alone were 19 MiB of code. Through these the binary keeps
// the operations named here (103.7 MB stripped before, 73.9 MB with
// EC2's alone), and serve's RSS no longer counts the pages their
// initialization touched. Build the views over IAMMethods, EC2Methods,
// SSMMethods, EKSMethods and KMSMethods, not over the clients.

// IAMMethods is the IAM client's operations Live and ReadRoleDetail use.
type IAMMethods struct {
	getRole                  func(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	getInstanceProfile       func(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	simulatePrincipalPolicy  func(context.Context, *iam.SimulatePrincipalPolicyInput, ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
	listRolePolicies         func(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	getRolePolicy            func(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	listAttachedRolePolicies func(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	getPolicy                func(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	getPolicyVersion         func(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
}

var (
	_ IAMAPI       = (*IAMMethods)(nil)
	_ IAMPolicyAPI = (*IAMMethods)(nil)
)

// IAMMethods serves Live's questions and, found by a type assertion in
// Live.RolePolicies, the policy reads: the build fails here if either
// interface gains an operation IAMMethods lacks.
var (
	_ IAMAPI       = (*IAMMethods)(nil)
	_ IAMPolicyAPI = (*IAMMethods)(nil)
)

// NewIAMMethods takes c's operations.
func NewIAMMethods(c *iam.Client) *IAMMethods {
	return &IAMMethods{getRole: c.GetRole, getInstanceProfile: c.GetInstanceProfile, simulatePrincipalPolicy: c.SimulatePrincipalPolicy,
		listRolePolicies: c.ListRolePolicies, getRolePolicy: c.GetRolePolicy, listAttachedRolePolicies: c.ListAttachedRolePolicies,
		getPolicy: c.GetPolicy, getPolicyVersion: c.GetPolicyVersion}
}

func (m *IAMMethods) GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	return m.getRole(ctx, in, optFns...)
}

func (m *IAMMethods) GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, optFns ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	return m.getInstanceProfile(ctx, in, optFns...)
}

func (m *IAMMethods) SimulatePrincipalPolicy(ctx context.Context, in *iam.SimulatePrincipalPolicyInput, optFns ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error) {
	return m.simulatePrincipalPolicy(ctx, in, optFns...)
}

func (m *IAMMethods) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	return m.listRolePolicies(ctx, in, optFns...)
}

func (m *IAMMethods) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	return m.getRolePolicy(ctx, in, optFns...)
}

func (m *IAMMethods) ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	return m.listAttachedRolePolicies(ctx, in, optFns...)
}

func (m *IAMMethods) GetPolicy(ctx context.Context, in *iam.GetPolicyInput, optFns ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	return m.getPolicy(ctx, in, optFns...)
}

func (m *IAMMethods) GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, optFns ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	return m.getPolicyVersion(ctx, in, optFns...)
}

// EC2Methods is the EC2 client's operations EC2Live uses.
type EC2Methods struct {
	describeSubnets              func(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	describeSecurityGroups       func(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	describeImages               func(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	describeCapacityReservations func(context.Context, *ec2.DescribeCapacityReservationsInput, ...func(*ec2.Options)) (*ec2.DescribeCapacityReservationsOutput, error)
}

var _ EC2API = (*EC2Methods)(nil)

// NewEC2Methods takes c's operations.
func NewEC2Methods(c *ec2.Client) *EC2Methods {
	return &EC2Methods{describeSubnets: c.DescribeSubnets, describeSecurityGroups: c.DescribeSecurityGroups,
		describeImages: c.DescribeImages, describeCapacityReservations: c.DescribeCapacityReservations}
}

func (m *EC2Methods) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return m.describeSubnets(ctx, in, optFns...)
}

func (m *EC2Methods) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return m.describeSecurityGroups(ctx, in, optFns...)
}

func (m *EC2Methods) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return m.describeImages(ctx, in, optFns...)
}

func (m *EC2Methods) DescribeCapacityReservations(ctx context.Context, in *ec2.DescribeCapacityReservationsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeCapacityReservationsOutput, error) {
	return m.describeCapacityReservations(ctx, in, optFns...)
}

// SSMMethods is the SSM client's operation EC2Live uses.
type SSMMethods struct {
	getParameter func(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ SSMAPI = (*SSMMethods)(nil)

// NewSSMMethods takes c's operation.
func NewSSMMethods(c *ssm.Client) *SSMMethods { return &SSMMethods{getParameter: c.GetParameter} }

func (m *SSMMethods) GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return m.getParameter(ctx, in, optFns...)
}

// EKSMethods is the EKS client's operations EKSLive uses.
type EKSMethods struct {
	describeCluster              func(context.Context, *eks.DescribeClusterInput, ...func(*eks.Options)) (*eks.DescribeClusterOutput, error)
	describeAccessEntry          func(context.Context, *eks.DescribeAccessEntryInput, ...func(*eks.Options)) (*eks.DescribeAccessEntryOutput, error)
	listAssociatedAccessPolicies func(context.Context, *eks.ListAssociatedAccessPoliciesInput, ...func(*eks.Options)) (*eks.ListAssociatedAccessPoliciesOutput, error)
}

var _ EKSAPI = (*EKSMethods)(nil)

// NewEKSMethods takes c's operations.
func NewEKSMethods(c *eks.Client) *EKSMethods {
	return &EKSMethods{describeCluster: c.DescribeCluster, describeAccessEntry: c.DescribeAccessEntry, listAssociatedAccessPolicies: c.ListAssociatedAccessPolicies}
}

func (m *EKSMethods) DescribeCluster(ctx context.Context, in *eks.DescribeClusterInput, optFns ...func(*eks.Options)) (*eks.DescribeClusterOutput, error) {
	return m.describeCluster(ctx, in, optFns...)
}

func (m *EKSMethods) DescribeAccessEntry(ctx context.Context, in *eks.DescribeAccessEntryInput, optFns ...func(*eks.Options)) (*eks.DescribeAccessEntryOutput, error) {
	return m.describeAccessEntry(ctx, in, optFns...)
}

func (m *EKSMethods) ListAssociatedAccessPolicies(ctx context.Context, in *eks.ListAssociatedAccessPoliciesInput, optFns ...func(*eks.Options)) (*eks.ListAssociatedAccessPoliciesOutput, error) {
	return m.listAssociatedAccessPolicies(ctx, in, optFns...)
}

// KMSMethods is the KMS client's operations KMSLive uses.
type KMSMethods struct {
	describeKey  func(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	getKeyPolicy func(context.Context, *kms.GetKeyPolicyInput, ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	listGrants   func(context.Context, *kms.ListGrantsInput, ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
}

var _ KMSAPI = (*KMSMethods)(nil)

// NewKMSMethods takes c's operations.
func NewKMSMethods(c *kms.Client) *KMSMethods {
	return &KMSMethods{describeKey: c.DescribeKey, getKeyPolicy: c.GetKeyPolicy, listGrants: c.ListGrants}
}

func (m *KMSMethods) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return m.describeKey(ctx, in, optFns...)
}

func (m *KMSMethods) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, optFns ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	return m.getKeyPolicy(ctx, in, optFns...)
}

func (m *KMSMethods) ListGrants(ctx context.Context, in *kms.ListGrantsInput, optFns ...func(*kms.Options)) (*kms.ListGrantsOutput, error) {
	return m.listGrants(ctx, in, optFns...)
}
