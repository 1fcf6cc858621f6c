package nodeconfig

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

const mimeAL2023 = `MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="BOUNDARY"

--BOUNDARY
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    config:
      shutdownGracePeriod: 30s
    flags:
      - --node-labels=team=a
  instance:
    localStorage:
      strategy: RAID0

--BOUNDARY
Content-Type: text/x-shellscript; charset="us-ascii"

#!/bin/bash
echo "hello" > /etc/motd

--BOUNDARY--
`

func TestUserData(t *testing.T) {
	for _, tc := range []struct {
		name, family, data string
		want               []string // "Check substring"
	}{
		{name: "AL2023 MIME", family: FamilyAL2023, data: mimeAL2023},
		{name: "AL2023 one NodeConfig", family: FamilyAL2023, data: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags: [--v=2]\n"},
		{name: "AL2023 one script", family: FamilyAL2023, data: "#!/bin/bash\necho hi\n"},
		{name: "AL2023 wrong apiVersion", family: FamilyAL2023, data: "apiVersion: node.eks.aws/v1\nkind: NodeConfig\nspec: {}\n",
			want: []string{`UserDataInvalid line 1 ("apiVersion: node.eks.aws/v1")`}},
		{name: "AL2023 YAML broken", family: FamilyAL2023, data: strings.Replace(mimeAL2023, "      - --node-labels=team=a", "     - --node-labels: [", 1),
			want: []string{"UserDataInvalid YAML does not parse"}},
		{name: "AL2023 wrong type", family: FamilyAL2023, data: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags: --v=2\n",
			want: []string{`UserDataInvalid line 5 ("flags: --v=2")`}},
		{name: "AL2023 CA not base64", family: FamilyAL2023, data: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n    certificateAuthority: not base64!\n",
			want: []string{"UserDataInvalid base64", "UserDataSetsKarpenterField certificateAuthority"}},
		{name: "AL2023 unknown field", family: FamilyAL2023, data: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flag: [--v=2]\n",
			want: []string{`UserDataFieldIgnored Did you mean "flags"?`}},
		{name: "AL2023 sets cluster", family: FamilyAL2023, data: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n    name: demo\n    apiServerEndpoint: https://x\n",
			want: []string{"UserDataSetsKarpenterField line 5", "UserDataSetsKarpenterField apiServerEndpoint"}},
		{name: "AL2 script on AL2023", family: FamilyAL2023, data: "#!/bin/bash\nset -ex\n/etc/eks/bootstrap.sh demo --kubelet-extra-args '--max-pods=110'\n",
			want: []string{`UserDataWrongFamily line 3 ("/etc/eks/bootstrap.sh demo`}},
		{name: "AL2 script part in MIME on AL2023", family: FamilyAL2023, data: strings.Replace(mimeAL2023, `echo "hello" > /etc/motd`, "/etc/eks/bootstrap.sh demo", 1),
			want: []string{`UserDataWrongFamily line 23`}},
		{name: "AL2023 MIME unterminated", family: FamilyAL2023, data: strings.Replace(mimeAL2023, "--BOUNDARY--\n", "", 1),
			want: []string{"UserDataInvalid closing --BOUNDARY--"}},
		{name: "AL2023 MIME not multipart", family: FamilyAL2023, data: "MIME-Version: 1.0\nContent-Type: text/plain\n\nhello\n",
			want: []string{"UserDataInvalid not multipart"}},
		{name: "AL2 script", family: FamilyAL2, data: "#!/bin/bash\necho hi\n"},
		{name: "AL2 MIME", family: FamilyAL2, data: strings.Replace(mimeAL2023, "Content-Type: application/node.eks.aws\n\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      shutdownGracePeriod: 30s\n    flags:\n      - --node-labels=team=a\n  instance:\n    localStorage:\n      strategy: RAID0\n", "Content-Type: text/cloud-config\n\n#cloud-config\npackages: [jq]\n", 1)},
		{name: "AL2 no shebang", family: FamilyAL2, data: "echo hi\n",
			want: []string{`UserDataInvalid line 1 ("echo hi"): an AL2 shell script must start with a #! line`}},
		{name: "AL2 NodeConfig", family: FamilyAL2, data: mimeAL2023,
			want: []string{"UserDataWrongFamily AL2023"}},
		{name: "AL2 bootstrap.sh", family: FamilyAL2, data: "#!/bin/bash\n/etc/eks/bootstrap.sh demo\n",
			want: []string{"UserDataSetsKarpenterField bootstraps twice"}},
		{name: "Bottlerocket", family: FamilyBottlerocket, data: "[settings.kubernetes]\nmax-pods = 110\n[settings.kubernetes.node-labels]\nteam = \"a\"\n"},
		{name: "Bottlerocket bad TOML", family: FamilyBottlerocket, data: "[settings.kubernetes]\nmax-pods = 110\nnode-labels = {team = \"a\"\n",
			want: []string{`UserDataInvalid line 3 ("node-labels = {team = \"a\""): the Bottlerocket userData is not TOML`}},
		{name: "Bottlerocket script", family: FamilyBottlerocket, data: "#!/bin/bash\necho hi\n",
			want: []string{"UserDataWrongFamily shell script"}},
		{name: "Bottlerocket sets cluster", family: FamilyBottlerocket, data: "[settings.kubernetes]\ncluster-name = \"other\"\n",
			want: []string{`UserDataSetsKarpenterField line 2 ("cluster-name = \"other\"")`}},
		{name: "Windows", family: FamilyWindows2022, data: "Write-Host 'hello'\n"},
		{name: "Windows tags", family: FamilyWindows2022, data: "<powershell>\nWrite-Host 'hello'\n</powershell>\n",
			want: []string{`UserDataInvalid line 1 ("<powershell>")`}},
		{name: "Windows bootstrap", family: FamilyWindows2019, data: "& $env:ProgramFiles\\Amazon\\EKS\\Start-EKSBootstrap.ps1 -EKSClusterName x\n",
			want: []string{"UserDataSetsKarpenterField twice"}},
		{name: "Custom", family: FamilyCustom, data: "anything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := UserData(field.NewPath("spec", "userData"), tc.data, tc.family)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				check, sub, _ := strings.Cut(w, " ")
				if string(got[i].Check) != check {
					t.Errorf("finding %d: %s, want %s (%s)", i, got[i].Check, check, got[i].Message)
				}
				if !strings.Contains(got[i].Message, sub) {
					t.Errorf("finding %d: %q lacks %q", i, got[i].Message, sub)
				}
				if got[i].Warn != (check == string(UserDataSetsKarpenterField) || check == string(UserDataFieldIgnored)) {
					t.Errorf("finding %d: warn=%v", i, got[i].Warn)
				}
			}
		})
	}
}
