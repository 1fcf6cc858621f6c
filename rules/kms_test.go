package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

func kmsClass(keys ...string) *EC2NodeClass {
	nc := nodeClass("", "")
	for _, k := range keys {
		t := true
		m := BlockDeviceMapping{EBS: &BlockDeviceEBS{Encrypted: &t}}
		if k != "" {
			k := k
			m.EBS.KMSKeyID = &k
		}
		nc.Spec.BlockDeviceMappings = append(nc.Spec.BlockDeviceMappings, m)
	}
	return nc
}

// kmsFindings are the KMS codes of v, denials then warnings, with their
// fields.
func kmsFindings(v Verdict) []string {
	var out []string
	for _, f := range append(append([]Finding(nil), v.Denials...), v.Warnings...) {
		if strings.HasPrefix(string(f.Code), "KMS") || strings.HasPrefix(string(f.Code), "EBS") {
			out = append(out, string(f.Code)+"@"+f.Field.String())
		}
	}
	return out
}

// TestKMSRules: the key of an encrypted volume, judged against the
// sample snapshot's KMSKeys (keys 1 to 5 and two aliases) and the
// controller role's policies (no kms: statement: only a key policy naming
// the role allows it).
func TestKMSRules(t *testing.T) {
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{IAM: snap, KMS: snap, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny}
	c := NewChecker(cfg)
	key := func(n string) string { return "arn:aws:kms:us-west-2:111122223333:key/" + n }
	const at = "@spec.blockDeviceMappings[0].ebs.kmsKeyID"
	for _, tc := range []struct {
		name, key string
		want      []string
		msg       string
	}{
		{name: "allowed by the key policy", key: key("1111aaaa-0000-4000-8000-000000000001")},
		{name: "alias", key: "alias/karpenter-ebs"},
		{name: "key ID", key: "1111aaaa-0000-4000-8000-000000000001"},
		{name: "default key", key: "", want: []string{"EBSDefaultKMSKey@spec.blockDeviceMappings[0].ebs.encrypted"}},
		{name: "pending deletion", key: key("2222bbbb-0000-4000-8000-000000000002"), want: []string{"KMSKeyNotEnabled" + at}, msg: "cancel-key-deletion"},
		{name: "disabled", key: key("3333cccc-0000-4000-8000-000000000003"), want: []string{"KMSKeyNotEnabled" + at}, msg: "enable-key"},
		{name: "another region", key: "arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-0000-4000-8000-000000000001", want: []string{"KMSKeyWrongRegion" + at}, msg: "eu-west-1"},
		{name: "neither allows nor delegates", key: "alias/app-only", want: []string{"KMSKeyAccessDenied" + at}, msg: "neither allows the role nor delegates to IAM"},
		{name: "delegates, IAM denies", key: key("5555eeee-0000-4000-8000-000000000005"), want: []string{"KMSKeyAccessDenied" + at}, msg: `"Sid": "AllowKarpenterEBS"`},
		{name: "missing", key: key("9999ffff-0000-4000-8000-000000000009"), want: []string{"KMSKeyNotFound" + at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := c.CheckEC2NodeClass(context.Background(), kmsClass(tc.key))
			if got := kmsFindings(v); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if tc.msg != "" {
				all := v.DenialMessage() + strings.Join(v.WarningLines(), "\n")
				if !strings.Contains(all, tc.msg) {
					t.Errorf("%q lacks %q", all, tc.msg)
				}
			}
		})
	}
	// Without a KMS source the key is not checked, and says so.
	cfg.KMS = nil
	v := NewChecker(cfg).CheckEC2NodeClass(context.Background(), kmsClass(key("2222bbbb-0000-4000-8000-000000000002")))
	if got := kmsFindings(v); !slices.Equal(got, []string{"KMSChecksSkipped@spec.blockDeviceMappings"}) {
		t.Fatalf("no KMS source: %v", got)
	}
	// A KMS that cannot be asked is "could not check", never a pass.
	v = NewChecker(Config{IAM: snap, KMS: unavailableKMS{}, Controller: ctl, Region: testRegion}).CheckEC2NodeClass(context.Background(), kmsClass("alias/x"))
	if got := kmsFindings(v); !slices.Equal(got, []string{"KMSChecksSkipped@spec.blockDeviceMappings"}) {
		t.Fatalf("KMS unavailable: %v", got)
	}
}

type unavailableKMS struct{}

func (unavailableKMS) Key(context.Context, string) (authz.KMSKey, error) {
	return authz.KMSKey{}, &authz.UnavailableError{Service: "KMS", Op: "DescribeKey", Err: context.DeadlineExceeded}
}

// TestKMSKeysAskedAtMost: a class naming more distinct keys than
// MaxKMSKeysAsked has the first ones looked up and the others reported as
// not checked: KMS's quota is the account's.
func TestKMSKeysAskedAtMost(t *testing.T) {
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := authz.ParseRoleARN(ctlKarpenter)
	if err != nil {
		t.Fatal(err)
	}
	kms := &countingKMS{KMSView: snap}
	c := NewChecker(Config{IAM: snap, KMS: kms, Controller: ctl, Region: testRegion, OnIAMError: OnIAMErrorDeny})
	var keys []string
	for i := range MaxKMSKeysAsked + 2 {
		keys = append(keys, fmt.Sprintf("alias/key-%d", i))
	}
	v := c.CheckEC2NodeClass(context.Background(), kmsClass(keys...))
	if kms.calls != MaxKMSKeysAsked {
		t.Errorf("KMS asked about %d keys, want %d", kms.calls, MaxKMSKeysAsked)
	}
	found := false
	for _, f := range v.Warnings {
		found = found || (f.Code == KMSChecksSkipped && strings.Contains(f.Message, "2 more keys from spec.blockDeviceMappings[8].ebs.kmsKeyID on"))
	}
	if !found {
		t.Errorf("no KMSChecksSkipped for the keys past the bound: %v", v.WarningLines())
	}
	if got := kmsFindings(v); len(got) < MaxKMSKeysAsked {
		t.Errorf("the keys asked were not judged: %v", got)
	}
}

type countingKMS struct {
	authz.KMSView
	mu    sync.Mutex
	calls int
}

func (k *countingKMS) Key(ctx context.Context, id string) (authz.KMSKey, error) {
	k.mu.Lock()
	k.calls++
	k.mu.Unlock()
	return k.KMSView.Key(ctx, id)
}
