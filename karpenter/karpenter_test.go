package karpenter

import (
	"slices"
	"strings"
	"testing"
)

func in() Input {
	return Input{Partition: "aws", Region: "us-west-2", Account: "111122223333", Cluster: "demo", Class: "default",
		UID: "7f1f7c1e-3b7a-4c59-9d0e-2a4f0b6f5c11"}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		given, model string
		note         bool
	}{
		{"1.3", "1.3", false},
		{"v1.3.2", "1.3", false},
		{"1.13.0@sha256:0123", "1.13", false},
		{"1.15.1", "1.15", false},
		{"1.16.0", "1.15", true},
		{"2.0.0", "1.15", true},
		{"1.4.0-rc.1", "1.4", true},
	} {
		r, err := Resolve(tc.given, "test", "--karpenter-version")
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.given, err)
			continue
		}
		if r.Model.String() != tc.model || (r.Note != "") != tc.note {
			t.Errorf("Resolve(%q) = %+v, want model %s, note %v", tc.given, r, tc.model, tc.note)
		}
	}
	for _, bad := range []string{"", "latest", "one.two", "0.37.0", "v1.x"} {
		_, err := Resolve(bad, "test", "--karpenter-version")
		if err == nil || !strings.Contains(err.Error(), "--karpenter-version") {
			t.Errorf("Resolve(%q) = %v, want an error naming the flag", bad, err)
		}
	}
	if d := Default(""); d.Model != Newest || !strings.Contains(d.String(), "newest") {
		t.Errorf("Default = %+v", d)
	}
}

// TestInstanceProfile pins the name and path per version. The names of
// 1.0 to 1.6 are Karpenter's: mitchellh/hashstructure v2's hash of
// region+name (checked against that library, v2.0.2, when written).
func TestInstanceProfile(t *testing.T) {
	for _, tc := range []struct {
		v          Version
		arn        string
		random     bool
		noUID      bool
		wantNoUIDA string
	}{
		{v: Version{1, 0}, arn: "arn:aws:iam::111122223333:instance-profile/demo_4067990795380418201"},
		{v: Version{1, 6}, arn: "arn:aws:iam::111122223333:instance-profile/demo_4067990795380418201"},
		{v: Version{1, 7}, random: true},
		{v: Version{1, 12}, random: true},
		{v: Version{1, 13}, random: true, arn: "arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/7f1f7c1e-3b7a-4c59-9d0e-2a4f0b6f5c11/demo_"},
		{v: Version{1, 15}, random: true, arn: "arn:aws:iam::111122223333:instance-profile/karpenter/us-west-2/demo/7f1f7c1e-3b7a-4c59-9d0e-2a4f0b6f5c11/demo_"},
	} {
		p := InstanceProfile(tc.v, in())
		if p.NameRandom != tc.random || !strings.HasPrefix(p.ARN, tc.arn) || !strings.HasPrefix(p.Name, "demo_") {
			t.Errorf("%s: %+v, want ARN %s..., random %v", tc.v, p, tc.arn, tc.random)
		}
		if tc.v.Minor < 13 && p.Path != "/" {
			t.Errorf("%s: path %q, want /", tc.v, p.Path)
		}
		noUID := in()
		noUID.UID = ""
		q := InstanceProfile(tc.v, noUID)
		if tc.v.Minor >= 13 && (!q.UIDPlaceholder || !strings.Contains(q.ARN, "/"+PlaceholderUID+"/")) {
			t.Errorf("%s without a UID: %+v, want the stated placeholder in the path", tc.v, q)
		}
		if tc.v.Minor < 13 && q.UIDPlaceholder {
			t.Errorf("%s: no UID in the name or path, yet a placeholder is reported", tc.v)
		}
	}
	other := in()
	other.Region, other.Class = "eu-central-1", "gpu"
	if p := InstanceProfile(Version{1, 0}, other); p.Name != "demo_13154398203728994713" {
		t.Errorf("1.0 name of eu-central-1/gpu = %s", p.Name)
	}
}

func TestTagsMergeSpecTagsUnderKarpenters(t *testing.T) {
	i := in()
	i.Tags = map[string]string{"team": "payments", "eks:eks-cluster-name": "forged", "karpenter.sh/nodepool": "forged"}
	p := ProfileTags(i)
	if p["team"] != "payments" || p[TagEKSClusterName] != "demo" || p[TagRegion] != "us-west-2" || p[TagNodeClass] != "default" || p[ClusterTag("demo")] != "owned" {
		t.Errorf("profile tags %v", p)
	}
	l := LaunchTags(i, "pool")
	if l["team"] != "payments" || l[TagNodePool] != "pool" || l[TagEKSClusterName] != "demo" {
		t.Errorf("launch tags %v", l)
	}
	_, reqs := ProfileRequests(Newest, i)
	for _, r := range reqs {
		if r.Action == "iam:CreateInstanceProfile" && !slices.Contains(r.Context["aws:TagKeys"], "team") {
			t.Errorf("CreateInstanceProfile's aws:TagKeys %v lack spec.tags", r.Context["aws:TagKeys"])
		}
	}
}

// requestsOf indexes LaunchRequests by "step call action resource".
func requestsOf(v Version, i Input) (map[string]Request, []NotChecked) {
	reqs, nc := LaunchRequests(v, i)
	out := map[string]Request{}
	for _, r := range reqs {
		out[string(r.Step)+" "+r.Call+" "+r.Action+" "+r.Resource] = r
	}
	return out, nc
}

// TestChangesAreModelled: each entry of Changes shows in the requests.
func TestChangesAreModelled(t *testing.T) {
	const ec2 = "arn:aws:ec2:us-west-2:111122223333:"
	lt := "launch CreateLaunchTemplate ec2:CreateLaunchTemplate " + ec2 + "launch-template/*"
	v10, _ := requestsOf(Version{1, 0}, in())
	v11, _ := requestsOf(Version{1, 1}, in())
	if v10[lt].Context["aws:RequestTag/karpenter.k8s.aws/cluster"] == nil || v11[lt].Context["aws:RequestTag/karpenter.k8s.aws/cluster"] != nil {
		t.Errorf("karpenter.k8s.aws/cluster on launch templates: 1.0 %v, 1.1 %v", v10[lt].Context, v11[lt].Context)
	}
	v12, _ := requestsOf(Version{1, 2}, in())
	v13, _ := requestsOf(Version{1, 3}, in())
	dry := "validation RunInstances (dry-run) ec2:RunInstances " + ec2 + "instance/*"
	if _, ok := v12[dry]; ok {
		t.Errorf("1.2 has the validation's dry-run")
	}
	if r, ok := v13[dry]; !ok || r.Context["aws:RequestTag/karpenter.sh/nodepool"][0] != "" {
		t.Errorf("1.3's validation RunInstances: %+v, want karpenter.sh/nodepool=\"\"", r)
	}
	if _, ok := v13["validation CreateFleet (dry-run) ec2:CreateFleet "+ec2+"launch-template/"+mockLaunchTemplateID]; !ok {
		t.Errorf("1.3's validation CreateFleet names no mock launch template")
	}
	v17, _ := requestsOf(Version{1, 7}, in())
	if _, ok := v17["validation CreateLaunchTemplate ec2:CreateLaunchTemplate "+ec2+"launch-template/*"]; !ok {
		t.Errorf("1.7's validation creates no launch template")
	}
	if r, ok := v17["validation RunInstances (dry-run) ec2:RunInstances "+ec2+"launch-template/"+PlaceholderLaunchTemplateID]; !ok || r.Placeholder == "" ||
		r.Context["aws:ResourceTag/karpenter.sh/nodepool"] == nil {
		t.Errorf("1.7's validation RunInstances from its launch template: %+v", r)
	}
	if InstanceProfile(Version{1, 6}, in()).NameRandom || !InstanceProfile(Version{1, 7}, in()).NameRandom {
		t.Errorf("the random profile name starts at 1.7")
	}
	if InstanceProfile(Version{1, 12}, in()).Path != "/" || InstanceProfile(Version{1, 13}, in()).Path == "/" {
		t.Errorf("the profile path starts at 1.13")
	}
	for _, c := range Changes {
		if c.Source == "" || c.What == "" || c.Since.Minor > Newest.Minor {
			t.Errorf("change %+v: want a source and a text", c)
		}
	}
}

// resolved is in() with the class's image, subnet and security group
// resolved, each with its own tags.
func resolved() Input {
	i := in()
	i.EC2 = &EC2Resources{
		Images: []Image{{ARN: "arn:aws:ec2:us-west-2::image/ami-0123456789abcdef0", ID: "ami-0123456789abcdef0", Owner: "amazon", Public: true, RootDeviceType: "ebs",
			Tags: map[string]string{"os": "al2023"}}},
		Subnets: []Subnet{{ARN: "arn:aws:ec2:us-west-2:111122223333:subnet/subnet-0123", ID: "subnet-0123",
			VPC: "arn:aws:ec2:us-west-2:111122223333:vpc/vpc-0123", AvailabilityZone: "us-west-2a", AvailabilityZoneID: "usw2-az1", Tags: map[string]string{"karpenter.sh/discovery": "demo"}}},
		SecurityGroups: []SecurityGroup{{ARN: "arn:aws:ec2:us-west-2:111122223333:security-group/sg-0123", ID: "sg-0123",
			VPC: "arn:aws:ec2:us-west-2:111122223333:vpc/vpc-0123", Tags: map[string]string{"karpenter.sh/discovery": "demo"}}},
	}
	return i
}

// TestLaunchContext: every EC2 request carries aws:RequestedRegion and
// ec2:Region; a resource the call creates carries the request's tags and
// no resource tags, one that exists its own tags and not the request's,
// and both families are stated in full.
func TestLaunchContext(t *testing.T) {
	reqs, _ := LaunchRequests(Newest, resolved())
	for _, r := range reqs {
		for _, k := range []string{"aws:RequestedRegion", "ec2:Region"} {
			if got := r.Context[k]; len(got) != 1 || got[0] != "us-west-2" {
				t.Errorf("%s %s: %s = %v", r.Action, r.Resource, k, got)
			}
		}
		if !slices.Contains(r.Complete, "aws:RequestTag/") || !slices.Contains(r.Complete, "aws:ResourceTag/") || !slices.Contains(r.Complete, "ec2:Region") {
			t.Errorf("%s %s: complete %v", r.Action, r.Resource, r.Complete)
		}
		created := strings.HasSuffix(r.Resource, "/*")
		if r.Action == "ec2:CreateFleet" || r.Action == "ec2:RunInstances" {
			if created != (len(r.Context["aws:TagKeys"]) == 4) {
				t.Errorf("%s %s: request tags %v", r.Action, r.Resource, r.Context["aws:TagKeys"])
			}
			hasResourceTags := false
			for k := range r.Context {
				hasResourceTags = hasResourceTags || strings.HasPrefix(k, "aws:ResourceTag/")
			}
			if created == hasResourceTags {
				t.Errorf("%s %s: created %v, yet resource tags %v", r.Action, r.Resource, created, r.Context)
			}
		}
		if strings.Contains(r.Resource, "*") && !strings.HasSuffix(r.Resource, "/*") {
			t.Errorf("%s: a pattern passed off as a resource: %s", r.Action, r.Resource)
		}
		if r.Action == "ec2:CreateTags" && r.Context["ec2:CreateAction"] == nil {
			t.Errorf("CreateTags on %s without ec2:CreateAction", r.Resource)
		}
		if r.Action == "ec2:CreateFleet" && (strings.Contains(r.Resource, ":network-interface/") || strings.Contains(r.Resource, ":security-group/")) {
			t.Errorf("CreateFleet asked on %s, which the reference does not list for it", r.Resource)
		}
	}
}

// TestExistingResourceKeys: the image, subnet, security group and the
// launch template a launch uses carry their own tags and keys.
func TestExistingResourceKeys(t *testing.T) {
	i := resolved()
	reqs, _ := requestsOf(Newest, i)
	noUID := i
	noUID.UID = "" // ec2:InstanceProfile names the path with PlaceholderUID
	const ec2 = "arn:aws:ec2:us-west-2:111122223333:"
	for _, c := range []struct {
		key  string
		want map[string]string
	}{
		{"launch CreateFleet ec2:RunInstances arn:aws:ec2:us-west-2::image/ami-0123456789abcdef0",
			map[string]string{"aws:ResourceTag/os": "al2023", "ec2:ResourceTag/os": "al2023", "ec2:ImageID": "ami-0123456789abcdef0", "ec2:Owner": "amazon", "ec2:Public": "true", "ec2:ImageType": "machine", "ec2:RootDeviceType": "ebs"}},
		{"launch CreateFleet ec2:CreateFleet " + ec2 + "subnet/subnet-0123",
			map[string]string{"aws:ResourceTag/karpenter.sh/discovery": "demo", "ec2:SubnetID": "subnet-0123", "ec2:Vpc": ec2 + "vpc/vpc-0123", "ec2:AvailabilityZone": "us-west-2a", "ec2:AvailabilityZoneId": "usw2-az1"}},
		{"launch CreateFleet ec2:RunInstances " + ec2 + "security-group/sg-0123",
			map[string]string{"aws:ResourceTag/karpenter.sh/discovery": "demo", "ec2:SecurityGroupID": "sg-0123", "ec2:Vpc": ec2 + "vpc/vpc-0123"}},
		{"launch CreateFleet ec2:CreateFleet " + ec2 + "launch-template/" + PlaceholderLaunchTemplateID,
			map[string]string{"aws:ResourceTag/karpenter.sh/nodepool": "default", "aws:ResourceTag/" + ClusterTag("demo"): "owned"}},
		{"launch CreateFleet ec2:RunInstances " + ec2 + "network-interface/*",
			map[string]string{"aws:RequestTag/karpenter.sh/nodepool": "default", "ec2:Subnet": ec2 + "subnet/subnet-0123", "ec2:AvailabilityZone": "us-west-2a"}},
		{"launch CreateFleet ec2:RunInstances " + ec2 + "instance/*",
			map[string]string{"aws:RequestTag/karpenter.sh/nodepool": "default", "ec2:Tenancy": "default", "ec2:InstanceProfile": InstanceProfile(Newest, noUID).ARN, "ec2:RootDeviceType": "ebs",
				"ec2:AvailabilityZoneId": "usw2-az1"}},
	} {
		r, ok := reqs[c.key]
		if !ok {
			t.Errorf("no request %s", c.key)
			continue
		}
		for k, v := range c.want {
			if got := r.Context[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s = %v, want %s", c.key, k, got, v)
			}
		}
	}
	if r := reqs["launch CreateFleet ec2:RunInstances "+ec2+"instance/*"]; !slices.ContainsFunc(r.Unknown, func(u UnknownKey) bool { return u.Key == "ec2:InstanceType" }) {
		t.Errorf("the instance type is not reported unknown: %+v", r.Unknown)
	}
}

// TestLaunchKeysFromNodePoolAndVolumes: the NodePool's one instance type
// and capacity type, and the volumes, give their keys; several instance
// types are asked once each only where a policy tests the key.
func TestLaunchKeysFromNodePoolAndVolumes(t *testing.T) {
	i := resolved()
	no := false
	i.Launch = Launch{InstanceTypes: []string{"m5.large", "c5.large"}, MarketTypes: []string{"spot"},
		Volumes: []Volume{{Device: "/dev/xvda", Encrypted: &no, Type: "gp3", SizeGiB: 20}}}
	count := func(i Input) (instances int, vol Request) {
		reqs, _ := LaunchRequests(Newest, i)
		for _, r := range reqs {
			if r.Step == StepLaunch && r.Action == "ec2:RunInstances" && strings.HasSuffix(r.Resource, ":instance/*") {
				instances++
			}
			if r.Step == StepLaunch && r.Action == "ec2:RunInstances" && strings.HasSuffix(r.Resource, ":volume/*") {
				vol = r
			}
		}
		return instances, vol
	}
	n, vol := count(i)
	if n != 1 {
		t.Errorf("%d instance requests without a policy testing ec2:InstanceType, want 1", n)
	}
	for k, want := range map[string]string{"ec2:Encrypted": "false", "ec2:VolumeType": "gp3", "ec2:VolumeSize": "20", "ec2:AvailabilityZone": "us-west-2a"} {
		if got := vol.Context[k]; len(got) != 1 || got[0] != want {
			t.Errorf("volume %s = %v, want %s", k, got, want)
		}
	}
	if !slices.Contains(vol.Complete, "ec2:KmsKeyId") {
		t.Errorf("an unencrypted volume's key is not known absent: %v", vol.Complete)
	}
	i.Launch.Split = []string{"ec2:InstanceType"}
	if n, _ := count(i); n != 2 {
		t.Errorf("%d instance requests with a policy testing ec2:InstanceType, want 2", n)
	}
}

// TestEC2ResourcesSeam: the image, subnets and security groups are not
// checked without an EC2 view, and asked when resolved, on the actions the
// reference lists them for.
func TestEC2ResourcesSeam(t *testing.T) {
	_, nc := LaunchRequests(Newest, in())
	var kinds []string
	for _, n := range nc {
		kinds = append(kinds, n.Action+" "+n.Resource)
		if !strings.Contains(n.Reason, "not checked yet") {
			t.Errorf("reason %q", n.Reason)
		}
	}
	for _, want := range []string{"ec2:CreateFleet image", "ec2:CreateFleet subnet", "ec2:RunInstances security-group", "ec2:RunInstances image"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("not checked %v lacks %s", kinds, want)
		}
	}
	if slices.Contains(kinds, "ec2:CreateFleet security-group") {
		t.Errorf("not checked %v names CreateFleet on security groups", kinds)
	}
	i := resolved()
	reqs, nc := LaunchRequests(Newest, i)
	if len(nc) != 0 {
		t.Errorf("resolved, yet not checked: %v", nc)
	}
	asked := map[string]bool{}
	for _, r := range reqs {
		asked[r.Action+" "+r.Resource] = true
	}
	for _, arn := range []string{i.EC2.Images[0].ARN, i.EC2.Subnets[0].ARN} {
		if !asked["ec2:CreateFleet "+arn] || !asked["ec2:RunInstances "+arn] {
			t.Errorf("%s not asked for CreateFleet and the validation's RunInstances", arn)
		}
	}
	if g := i.EC2.SecurityGroups[0].ARN; asked["ec2:CreateFleet "+g] || !asked["ec2:RunInstances "+g] {
		t.Errorf("%s: want RunInstances only", g)
	}
}

// TestProfileRequestsAlike: from 1.13, with a class UID, the profile's
// requests are cached under the ARN without it (authz.Question.Alike), so
// re-creating the same manifest reuses the answer.
func TestProfileRequestsAlike(t *testing.T) {
	for _, tc := range []struct {
		v     Version
		uid   string
		alike bool
	}{
		{Version{1, 12}, "7f1f7c1e-3b7a-4c59-9d0e-2a4f0b6f5c11", false},
		{Version{1, 13}, "7f1f7c1e-3b7a-4c59-9d0e-2a4f0b6f5c11", true},
		{Version{1, 13}, "", false},
	} {
		i := in()
		i.UID = tc.uid
		p, reqs := ProfileRequests(tc.v, i)
		for _, r := range reqs {
			q := r.Question("arn:aws:iam::111122223333:role/KarpenterControllerRole")
			if q.Resource != p.ARN || (q.Alike != "") != tc.alike || (tc.alike && !strings.Contains(q.Alike, "/"+PlaceholderUID+"/")) {
				t.Errorf("%s uid %q: %s on %s, alike %q", tc.v, tc.uid, q.Action, q.Resource, q.Alike)
			}
		}
	}
}

// TestLaunchRequestsNameNoUID: the launch requests of the same manifest
// applied again (a new metadata.uid) are the same questions, so their
// answers are reused: ec2:InstanceProfile names the profile's path with
// PlaceholderUID.
func TestLaunchRequestsNameNoUID(t *testing.T) {
	a, b := resolved(), resolved()
	b.UID = "0b6f5c11-2a4f-4c59-9d0e-7f1f7c1e3b7a"
	ra, _ := LaunchRequests(Newest, a)
	rb, _ := LaunchRequests(Newest, b)
	if len(ra) != len(rb) {
		t.Fatalf("%d and %d requests", len(ra), len(rb))
	}
	for i := range ra {
		qa, qb := ra[i].Question("p"), rb[i].Question("p")
		if qa.Key() != qb.Key() {
			t.Errorf("%s %s differs with the UID: %v / %v", ra[i].Action, ra[i].Resource, ra[i].Context, rb[i].Context)
		}
	}
}
