package rules

import (
	"context"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// TestPermissionFindingsCarryRequests: every controller-permission denial
// carries the questions IAM denied (so a report can suggest the statement
// that allows them) and what denied them; no other finding carries any.
func TestPermissionFindingsCarryRequests(t *testing.T) {
	snap, err := authz.LoadSnapshotFile(sampleSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	permission := map[Code]bool{PassRoleDenied: true, InstanceProfileActionsDenied: true, InstanceProfileReadDenied: true, LaunchDenied: true}
	for _, tc := range []struct {
		ctl      string
		obj      *EC2NodeClass
		want     map[Code]int // requests per permission code
		deniedBy map[Code]string
	}{
		{ctl: ctlLimited, obj: ec2Class("c", "KarpenterNodeRole-demo", ""),
			// 4 instance-profile requests (GetInstanceProfile included);
			// Karpenter 1.15's 33 launch and validation requests (CreateFleet is also authorized as RunInstances; CreateFleet not on network interfaces, as the Service Authorization Reference lists it).
			want:     map[Code]int{InstanceProfileActionsDenied: 4, LaunchDenied: 33},
			deniedBy: map[Code]string{InstanceProfileActionsDenied: "", LaunchDenied: ""}},
		{ctl: ctlLimited, obj: ec2Class("c", "", "KarpenterNodeInstanceProfile-demo"),
			want: map[Code]int{InstanceProfileReadDenied: 1, LaunchDenied: 33}},
		{ctl: ctlKarpenter, obj: ec2Class("admin", "AdminNodeRole", ""),
			want: map[Code]int{PassRoleDenied: 1}, deniedBy: map[Code]string{PassRoleDenied: DeniedByExplicitDeny}},
		{ctl: ctlBounded, obj: ec2Class("c", "KarpenterNodeRole-demo", ""),
			want: map[Code]int{PassRoleDenied: 1, InstanceProfileActionsDenied: 4}, deniedBy: map[Code]string{InstanceProfileActionsDenied: DeniedByBoundary}},
		{ctl: ctlKarpenter, obj: ec2Class("c", "arn:aws:iam::111122223333:role/KarpenterNodeRole-notrust", ""), want: map[Code]int{}},
	} {
		ctl, err := authz.ParseRoleARN(tc.ctl)
		if err != nil {
			t.Fatal(err)
		}
		c := NewChecker(Config{IAM: snap, Controller: ctl, ClusterName: testCluster, Region: testRegion, OnIAMError: OnIAMErrorDeny})
		v := c.CheckEC2NodeClass(context.Background(), tc.obj)
		got := map[Code]int{}
		for _, f := range append(append([]Finding(nil), v.Denials...), v.Warnings...) {
			if !permission[f.Code] {
				if len(f.Requests) != 0 || f.DeniedBy != "" {
					t.Errorf("%s %s: %s carries requests %v", tc.ctl, tc.obj.Name, f.Code, f.Requests)
				}
				continue
			}
			got[f.Code] = len(f.Requests)
			for _, q := range f.Requests {
				d, err := snap.Decide(context.Background(), q)
				if err != nil || d.Allowed || q.Principal != tc.ctl {
					t.Errorf("%s: request %+v: %v, %+v; want a denied question of the controller", f.Code, q, err, d)
				}
			}
			if want, ok := tc.deniedBy[f.Code]; ok && f.DeniedBy != want {
				t.Errorf("%s %s: %s DeniedBy %q, want %q", tc.ctl, tc.obj.Name, f.Code, f.DeniedBy, want)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s %s: permission findings %v, want %v (verdict %v)", tc.ctl, tc.obj.Name, got, tc.want, v.Codes())
		}
		for code, n := range tc.want {
			if got[code] != n {
				t.Errorf("%s %s: %s carries %d requests, want %d", tc.ctl, tc.obj.Name, code, got[code], n)
			}
		}
	}
}
