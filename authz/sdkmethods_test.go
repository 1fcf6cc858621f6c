package authz_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// same fails t unless the answer through the SDK client and the answer
// through its *Methods (as serve wires them) are equal, errors included.
func same[T any](t *testing.T, what string, viaClient T, errClient error, viaMethods T, errMethods error) {
	t.Helper()
	if fmt.Sprint(errClient) != fmt.Sprint(errMethods) || !reflect.DeepEqual(viaClient, viaMethods) {
		t.Errorf("%s: through the client %+v, %v; through the methods %+v, %v", what, viaClient, errClient, viaMethods, errMethods)
	}
}

// TestSDKMethodsAnswerAsTheClients: the views serve builds over
// IAMMethods, EC2Methods, SSMMethods, EKSMethods and KMSMethods (so that
// the linker keeps only the operations they name) give every answer the
// views over the clients give, through the real SDK and the local
// endpoint; the controller role's policies are read through IAMMethods
// (Live finds IAMPolicyAPI on it), not reported unreadable.
func TestSDKMethodsAnswerAsTheClients(t *testing.T) {
	ctx := context.Background()
	url, _ := sampleEndpoint(t)
	iamc, err := authz.NewIAMClient(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	byClient, byMethods := authz.NewLive(iamc, authz.LiveOptions{}), authz.NewLive(authz.NewIAMMethods(iamc), authz.LiveOptions{})
	if _, err := byMethods.Role(ctx, "KarpenterNodeRole-demo"); err != nil {
		t.Fatalf("Role through IAMMethods: %v", err)
	}
	for _, name := range []string{"KarpenterNodeRole-demo", "AdminNodeRole", "NoSuchRole"} {
		a, errA := byClient.Role(ctx, name)
		b, errB := byMethods.Role(ctx, name)
		same(t, "Role "+name, a, errA, b, errB)
	}
	for _, name := range []string{"KarpenterNodeInstanceProfile-demo", "admin-profile", "no-such-profile"} {
		a, errA := byClient.InstanceProfile(ctx, name)
		b, errB := byMethods.InstanceProfile(ctx, name)
		same(t, "InstanceProfile "+name, a, errA, b, errB)
	}
	const controller = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
	a, errA := byClient.RolePolicies(ctx, controller)
	b, errB := byMethods.RolePolicies(ctx, controller)
	if errB != nil {
		t.Fatalf("RolePolicies through IAMMethods: %v", errB)
	}
	same(t, "RolePolicies", a, errA, b, errB)
	da, errA := authz.ReadRoleDetail(ctx, iamc, "KarpenterControllerRole")
	db, errB := authz.ReadRoleDetail(ctx, authz.NewIAMMethods(iamc), "KarpenterControllerRole")
	same(t, "ReadRoleDetail", da, errA, db, errB)

	ec2c, err := authz.NewEC2Client(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ssmc, err := authz.NewSSMClient(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ec2A, ec2B := authz.NewEC2Live(ec2c, ssmc, authz.LiveOptions{}), authz.NewEC2Live(authz.NewEC2Methods(ec2c), authz.NewSSMMethods(ssmc), authz.LiveOptions{})
	for _, tc := range ec2Cases {
		a, errA := ec2A.Describe(ctx, tc.q)
		b, errB := ec2B.Describe(ctx, tc.q)
		same(t, "Describe "+tc.name, a, errA, b, errB)
	}
	for _, name := range []string{"/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id", "/no/such/parameter"} {
		a, errA := ec2A.Parameter(ctx, name)
		b, errB := ec2B.Parameter(ctx, name)
		same(t, "Parameter "+name, a, errA, b, errB)
	}

	eksc, err := authz.NewEKSClient(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eksA, eksB := authz.NewEKSLive(eksc, authz.LiveOptions{}), authz.NewEKSLive(authz.NewEKSMethods(eksc), authz.LiveOptions{})
	ca, errA := eksA.Cluster(ctx, "demo")
	cb, errB := eksB.Cluster(ctx, "demo")
	if errB != nil {
		t.Fatalf("Cluster through EKSMethods: %v", errB)
	}
	same(t, "Cluster", ca, errA, cb, errB)
	for _, role := range []string{"arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "arn:aws:iam::111122223333:role/NoSuchRole"} {
		a, errA := eksA.AccessEntry(ctx, "demo", role)
		b, errB := eksB.AccessEntry(ctx, "demo", role)
		same(t, "AccessEntry "+role, a, errA, b, errB)
	}

	kmsc, err := authz.NewKMSClient(ctx, "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	kmsA, kmsB := authz.NewKMSLive(kmsc, authz.LiveOptions{}), authz.NewKMSLive(authz.NewKMSMethods(kmsc), authz.LiveOptions{})
	for _, id := range []string{kmsGood, "alias/karpenter-ebs", kmsPending} {
		a, errA := kmsA.Key(ctx, id)
		b, errB := kmsB.Key(ctx, id)
		if errB != nil {
			t.Fatalf("Key %s through KMSMethods: %v", id, errB)
		}
		same(t, "Key "+id, a, errA, b, errB)
	}
}
