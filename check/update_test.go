package check

import (
	"context"
	"strings"
	"testing"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// runningCluster stands for the cluster behind --kubeconfig: the classes
// guarded and narrowed as they run (subnets tagged demo), with NodeClaims.
type runningCluster struct{}

func (runningCluster) GetEC2NodeClass(_ context.Context, name string) (*rules.EC2NodeClass, bool, error) {
	if name != "guarded" && name != "narrowed" {
		return nil, false, nil
	}
	demo := rules.SelectorTerm{Tags: map[string]string{"karpenter.sh/discovery": "demo"}}
	nc := &rules.EC2NodeClass{Spec: rules.EC2NodeClassSpec{Role: "KarpenterNodeRole-demo",
		AMISelectorTerms:           []rules.SelectorTerm{{Alias: "al2023@latest"}},
		SubnetSelectorTerms:        []rules.SelectorTerm{demo},
		SecurityGroupSelectorTerms: []rules.SelectorTerm{demo}}}
	nc.Name, nc.UID = name, "6f1c2a4e-0000-4000-8000-00000000c1a5"
	return nc, true, nil
}

func (runningCluster) GetNodeClass(context.Context, string) (*rules.NodeClass, bool, error) {
	return nil, false, nil
}

// NodeClaimsUsing: guarded runs nodes in us-west-2a and -2b, narrowed in
// us-west-2a.
func (runningCluster) NodeClaimsUsing(_ context.Context, class string) ([]rules.NodeClaim, error) {
	zones := map[string][]string{"guarded": {"us-west-2a", "us-west-2b"}, "narrowed": {"us-west-2a"}}[class]
	var out []rules.NodeClaim
	for _, z := range zones {
		var n rules.NodeClaim
		n.Name = class + "-" + z
		n.Labels = map[string]string{rules.ZoneLabel: z}
		n.Spec.NodeClassRef = &rules.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: class}
		out = append(out, n)
	}
	return out, nil
}

// TestRunAgainstCluster: with a cluster (check --kubeconfig), a class it
// already has is judged as an update of its copy, the update guard
// included, so that a pull request that would strand nodes fails in CI;
// a class it lacks is a create.
func TestRunAgainstCluster(t *testing.T) {
	docs, err := ReadPaths([]string{"testdata/update/subnet-typo.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := AgainstCluster(context.Background(), docs, runningCluster{}); err != nil {
		t.Fatal(err)
	}
	snap := loadSnapshot(t)
	ctl, err := authz.ParseRoleARN("arn:aws:iam::111122223333:role/KarpenterControllerRole")
	if err != nil {
		t.Fatal(err)
	}
	c := rules.NewChecker(rules.Config{IAM: snap, EKS: snap, EC2: snap, KubernetesVersion: "1.34", Controller: ctl,
		ClusterName: "demo", Region: "us-west-2", OnIAMError: rules.OnIAMErrorDeny, NodeClaims: runningCluster{}})
	report := Run(context.Background(), c, docs)
	byName := map[string]Result{}
	for _, r := range report.Results {
		byName[r.Name] = r
	}

	guarded := byName["guarded"]
	if guarded.Allowed || guarded.UpdateOf != "cluster:EC2NodeClass/guarded" {
		t.Fatalf("guarded: allowed %v, updateOf %q; want denied as an update of the cluster's copy", guarded.Allowed, guarded.UpdateOf)
	}
	deny, _ := resultCodes(guarded)
	if !contains(deny, "SelectorUpdateStrandsNodes") {
		t.Errorf("guarded: denials %v, want SelectorUpdateStrandsNodes", deny)
	}
	for _, it := range guarded.Denials {
		if it.Code == "SelectorUpdateStrandsNodes" && (it.Line == 0 || !strings.Contains(it.Message, "dmeo")) {
			t.Errorf("the denial has no position or does not name the changed term: %+v", it)
		}
	}

	narrowed := byName["narrowed"]
	if _, warn := resultCodes(narrowed); !narrowed.Allowed || !contains(warn, "SelectorUpdateChanges") {
		t.Errorf("narrowed: allowed %v, warnings %v; want allowed with SelectorUpdateChanges", narrowed.Allowed, warn)
	}

	created := byName["new-class"]
	if !created.Allowed || created.UpdateOf != "" {
		t.Errorf("new-class: allowed %v, updateOf %q; want a create, allowed", created.Allowed, created.UpdateOf)
	}

	var text strings.Builder
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "an update of cluster:EC2NodeClass/guarded") {
		t.Errorf("the text report does not say what it judged an update of:\n%s", text.String())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
