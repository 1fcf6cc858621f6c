package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

const (
	kmsGood    = "arn:aws:kms:us-west-2:111122223333:key/1111aaaa-0000-4000-8000-000000000001"
	kmsPending = "arn:aws:kms:us-west-2:111122223333:key/2222bbbb-0000-4000-8000-000000000002"
	kmsAppOnly = "arn:aws:kms:us-west-2:111122223333:key/4444dddd-0000-4000-8000-000000000004"
	kmsCtl     = "arn:aws:iam::111122223333:role/KarpenterControllerRole"
)

// liveKMS is the KMS view serve builds: the real SDK KMS client asking
// the local endpoint over the sample snapshot, behind the cache.
func liveKMS(t *testing.T, opts authz.CacheOptions) (*authz.CachedKMS, *iamserver.Server) {
	t.Helper()
	url, srv := sampleEndpoint(t)
	c, err := authz.NewKMSClient(context.Background(), "us-west-2", url, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewCachedKMS(authz.NewKMSLive(c, authz.LiveOptions{}), opts), srv
}

// TestKMSSnapshotAndLiveAgree: the snapshot and the live client (three
// calls per key) describe the same keys, aliases resolved, and a missing
// key is not found in both.
func TestKMSSnapshotAndLiveAgree(t *testing.T) {
	snap := loadSample(t)
	live, srv := liveKMS(t, authz.CacheOptions{})
	ctx := context.Background()
	for _, id := range []string{kmsGood, "alias/karpenter-ebs", "1111aaaa-0000-4000-8000-000000000001", kmsPending, kmsAppOnly} {
		want, err := snap.Key(ctx, id)
		if err != nil {
			t.Fatalf("snapshot %s: %v", id, err)
		}
		got, err := live.Key(ctx, id)
		if err != nil {
			t.Fatalf("live %s: %v", id, err)
		}
		if got.ARN != want.ARN || got.State != want.State || got.Region != "us-west-2" || got.Account != want.Account ||
			got.Policy == nil || got.Policy.Document() != want.Policy.Document() || (want.DeletionDate == nil) != (got.DeletionDate == nil) {
			t.Errorf("%s: live %+v, snapshot %+v", id, got, want)
		}
	}
	for _, v := range []authz.KMSView{snap, live} {
		if _, err := v.Key(ctx, "arn:aws:kms:us-west-2:111122223333:key/9999ffff-0000-4000-8000-000000000009"); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("%T: missing key: %v, want not found", v, err)
		}
	}
	if n := srv.Calls(iamserver.KMSDescribeKey); n != 6 {
		t.Errorf("DescribeKey calls = %d, want 6 (one per distinct id)", n)
	}
	if n := srv.Calls(iamserver.KMSGetKeyPolicy) + srv.Calls(iamserver.KMSListGrants); n != 10 {
		t.Errorf("GetKeyPolicy and ListGrants calls = %d, want 10 (two per key found)", n)
	}
	live.Key(ctx, kmsGood)
	if n := srv.Calls(iamserver.KMSDescribeKey); n != 6 {
		t.Errorf("DescribeKey calls = %d after a cached key, want 6", n)
	}
}

// TestKMSUnavailable: a KMS that cannot be asked is "could not check"
// (Service KMS), a cached key is served stale, never a pass.
func TestKMSUnavailable(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	live, srv := liveKMS(t, authz.CacheOptions{Now: func() time.Time { return now }, TTL: time.Minute, Timeout: 3 * time.Second})
	ctx := context.Background()
	if _, err := live.Key(ctx, kmsGood); err != nil {
		t.Fatal(err)
	}
	srv.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.KMSAll, Always: true})
	now = now.Add(2 * time.Minute)
	if k, err := live.Key(ctx, kmsGood); err != nil || !k.Stale {
		t.Errorf("expired key while KMS denies: %+v, %v; want the stale answer", k, err)
	}
	_, err := live.Key(ctx, kmsPending)
	var u *authz.UnavailableError
	if !errors.As(err, &u) || u.Service != "KMS" || !strings.Contains(u.Summary(), "AccessDenied") {
		t.Errorf("never-asked key while KMS denies: %v; want KMS unavailable", err)
	}
	if _, err := authz.LoadSnapshot(strings.NewReader(`{"RoleDetailList": []}`), "x"); err != nil {
		t.Fatal(err)
	}
	old, _ := authz.LoadSnapshot(strings.NewReader(`{"RoleDetailList": []}`), "x")
	if _, err := old.Key(ctx, kmsGood); !errors.As(err, &u) || u.Service != "KMS" || old.HasKMS() {
		t.Errorf("snapshot without KMSKeys: %v; want KMS unavailable", err)
	}
}

// TestDecideKeyUse: the key policy as AWS evaluates it for a role.
func TestDecideKeyUse(t *testing.T) {
	pol := func(doc string) *authz.Policy {
		p, err := authz.ParsePolicy([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowIAM := authz.Decision{Allowed: true}
	denyIAM := authz.Decision{}
	q := authz.Question{Principal: kmsCtl, Action: "kms:CreateGrant", Resource: kmsGood,
		Context: map[string][]string{"kms:ViaService": {"ec2.us-west-2.amazonaws.com"}}}
	root := `{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}`
	role := `{"Effect": "Allow", "Principal": {"AWS": "` + kmsCtl + `"}, "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": "ec2.us-west-2.amazonaws.com"}}}`
	for _, tc := range []struct {
		name    string
		policy  string
		account string
		iam     authz.Decision
		grants  []authz.KMSGrant
		allowed bool
		why     string
	}{
		{name: "key policy names the role", policy: role, iam: denyIAM, allowed: true},
		{name: "delegates, IAM allows", policy: root, iam: allowIAM, allowed: true},
		{name: "delegates, IAM denies", policy: root, iam: denyIAM, why: "delegates to IAM"},
		{name: "neither", policy: `{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/App"}, "Action": "kms:*", "Resource": "*"}`, iam: allowIAM, why: "neither allows the role nor delegates"},
		{name: "IAM explicit deny", policy: role, iam: authz.Decision{Explicit: true}, why: "IAM explicitly denied"},
		{name: "key policy deny", policy: root + `, {"Sid": "NoGrants", "Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant", "Resource": "*"}`, iam: allowIAM, why: `"NoGrants" denies`},
		{name: "condition fails", policy: strings.Replace(role, "us-west-2", "eu-west-1", 1), iam: denyIAM, why: "neither"},
		{name: "other account's key names the role, IAM denies", policy: role, account: "444455556666", iam: denyIAM, why: "IAM policies do not allow it too"},
		{name: "other account's key names the role, IAM allows", policy: role, account: "444455556666", iam: allowIAM, allowed: true},
		{name: "grant", policy: `{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/App"}, "Action": "kms:*", "Resource": "*"}`, iam: denyIAM,
			grants: []authz.KMSGrant{{ID: "g1", Grantee: kmsCtl, Operations: []string{"CreateGrant", "Decrypt"}}}, allowed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := tc.account
			if acct == "" {
				acct = "111122223333"
			}
			key := authz.KMSKey{ARN: kmsGood, Account: acct, Region: "us-west-2", State: authz.KMSKeyEnabled, Grants: tc.grants,
				Policy: pol(`{"Version": "2012-10-17", "Statement": [` + tc.policy + `]}`)}
			u := authz.DecideKeyUse(key, q, tc.iam)
			if u.Allowed != tc.allowed || !strings.Contains(u.Why, tc.why) {
				t.Errorf("got %+v, want allowed=%v why~%q", u, tc.allowed, tc.why)
			}
		})
	}
}
