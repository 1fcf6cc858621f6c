package authz_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// recordKMS asks ids through a Recorder in front of the live KMS view
// (the real SDK client against the local endpoint over the sample), and
// loads what it writes.
func recordKMS(t *testing.T, fault *iamserver.Failure, ids ...string) (*authz.Recorder, *authz.Snapshot, authz.Summary, []string) {
	t.Helper()
	live, srv := liveKMS(t, authz.CacheOptions{})
	if fault != nil {
		srv.InjectFailure(*fault)
	}
	var told []string
	rec := authz.NewRecorder(nil, nil, nil, nil, func(s string) { told = append(told, s) })
	rec.SetKMS(live, "111122223333")
	for _, id := range ids {
		rec.Key(context.Background(), id)
	}
	var buf bytes.Buffer
	sum, err := rec.WriteSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := authz.LoadSnapshot(&buf, "recorded")
	if err != nil {
		t.Fatalf("the written snapshot does not load: %v\n%s", err, buf.String())
	}
	return rec, snap, sum, told
}

// TestRecorderKMS: the keys check asks for are written (metadata, key
// policy, grants, the aliases they were named by) in the KMSKeys and
// Aliases sections, and the snapshot answers as KMS did; a key KMS does
// not have stays not found; another account's key, which KMS would not
// describe, is no failure of the snapshot's.
func TestRecorderKMS(t *testing.T) {
	const (
		missing    = "arn:aws:kms:us-west-2:111122223333:key/9999ffff-0000-4000-8000-000000000009"
		otherAcct  = "arn:aws:kms:us-west-2:444455556666:key/6666aaaa-0000-4000-8000-000000000006"
		appOnlyARN = "arn:aws:kms:us-west-2:111122223333:alias/app-only"
	)
	ids := []string{"alias/karpenter-ebs", kmsPending, appOnlyARN, missing, otherAcct, "alias/nope"}
	rec, snap, sum, told := recordKMS(t, nil, ids...)
	if f := rec.Failures(); len(f) != 0 {
		t.Errorf("failures: %v", f)
	}
	if !slices.Equal(told, []string{"KMS"}) {
		t.Errorf("progress told %v, want [KMS]", told)
	}
	if sum.KMSKeys != 3 || sum.Aliases != 2 || !strings.Contains(sum.String(), "3 KMS key(s), 2 alias(es)") {
		t.Errorf("summary %+v: %s", sum, sum)
	}
	ref := loadSample(t)
	ctx := context.Background()
	for _, id := range append(ids[:3:3], kmsGood, "1111aaaa-0000-4000-8000-000000000001", "arn:aws:kms:us-west-2:111122223333:alias/karpenter-ebs", "alias/app-only", kmsAppOnly) {
		got, err := snap.Key(ctx, id)
		want, werr := ref.Key(ctx, id)
		if err != nil || werr != nil {
			t.Fatalf("%s: recorded %v, sample %v", id, err, werr)
		}
		if got.ARN != want.ARN || got.State != want.State || got.Account != want.Account || got.Region != want.Region ||
			got.Policy == nil || got.Policy.Document() != want.Policy.Document() || len(got.Grants) != len(want.Grants) ||
			(got.DeletionDate == nil) != (want.DeletionDate == nil) || (got.DeletionDate != nil && !got.DeletionDate.Equal(*want.DeletionDate)) {
			t.Errorf("%s: recorded %+v, sample %+v", id, got, want)
		}
	}
	for _, id := range []string{missing, "alias/nope"} {
		if _, err := snap.Key(ctx, id); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("%s: %v, want not found", id, err)
		}
	}
	if _, err := snap.Key(ctx, "arn:aws:kms:us-west-2:111122223333:key/5555eeee-0000-4000-8000-000000000005"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("a key check did not ask for is written: %v", err)
	}
}

// TestRecorderKMSFailures: a key KMS would not describe leaves the
// KMSKeys section out (its checks then skipped, never passed) and is
// named with the permission; an unreadable key policy leaves the key
// without its policy, so whether the controller may use it is not checked.
func TestRecorderKMSFailures(t *testing.T) {
	rec, snap, sum, _ := recordKMS(t, &iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.KMSDescribeKey, Always: true}, kmsGood)
	f := rec.Failures()
	if len(f) != 1 || f[0].Service != "KMS" || f[0].Op != "DescribeKey" || !strings.Contains(f[0].String(), "AccessDenied") {
		t.Errorf("failures: %v", f)
	}
	if snap.HasKMS() || !slices.Contains(sum.Omitted, "KMSKeys") {
		t.Errorf("KMSKeys written after a failed DescribeKey (omitted %v)", sum.Omitted)
	}

	rec, snap, _, _ = recordKMS(t, &iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.KMSGetKeyPolicy, Always: true}, kmsGood)
	f = rec.Failures()
	if len(f) != 1 || f[0].Op != "GetKeyPolicy" || !strings.Contains(f[0].String(), "AccessDenied") {
		t.Errorf("failures: %v", f)
	}
	k, err := snap.Key(context.Background(), kmsGood)
	if err != nil || k.Policy != nil || k.PolicyUnknown == "" || k.State != authz.KMSKeyEnabled {
		t.Errorf("key with an unreadable policy: %+v, %v; want it without its policy", k, err)
	}
}
