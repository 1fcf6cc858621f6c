package envtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

// The selector codes through a real API server: serve resolves each
// class's selector terms with the real SDK EC2 and SSM clients against the
// local endpoint's EC2 Query API and SSM JSON API (the sample's Subnets,
// SecurityGroups, Images, CapacityReservations and Parameters; AMI aliases
// for the API server's own Kubernetes version, 1.36), and the update guard
// reads NodeClaims created through the API server with Karpenter's CRD.

func tags(k, v string) map[string]any { return map[string]any{"tags": map[string]any{k: v}} }

var demoTags = tags("karpenter.sh/discovery", "demo")

// selectorClass is a class whose role passes, with selector lists set.
func selectorClass(name string, lists map[string]any) *unstructured.Unstructured {
	o := ec2NodeClass(name, role("KarpenterNodeRole-demo"))
	for k, v := range lists {
		o.Object["spec"].(map[string]any)[k] = v
	}
	return o
}

func TestSelectorCodes(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	group := "karpenter.k8s.aws"

	t.Run("a term matching nothing warns", func(t *testing.T) {
		w, err := create(ctx, c, selectorClass("sel-typo", map[string]any{"subnetSelectorTerms": []any{demoTags, tags("karpenter.sh/discovery", "dmeo")}}), client.DryRunAll)
		requireAllowed(t, err, "sel-typo")
		requireWarnings(t, w, []string{"[SelectorTermMatchesNothing] spec.subnetSelectorTerms[1]"})
	})
	t.Run("a list matching nothing is denied", func(t *testing.T) {
		_, err := create(ctx, c, selectorClass("sel-nosg", map[string]any{"securityGroupSelectorTerms": []any{map[string]any{"id": "sg-0doesnotexist"}}}), client.DryRunAll)
		requireDenied(t, e, group, err, "spec.securityGroupSelectorTerms: SelectorMatchesNothing")
	})
	t.Run("a capacity reservation term matching nothing warns", func(t *testing.T) {
		w, err := create(ctx, c, selectorClass("sel-cr", map[string]any{"capacityReservationSelectorTerms": []any{map[string]any{"id": "cr-0demo1"}, map[string]any{"id": "cr-0gone"}}}), client.DryRunAll)
		requireAllowed(t, err, "sel-cr")
		requireWarnings(t, w, []string{"[CapacityReservationTermMatchesNothing] spec.capacityReservationSelectorTerms[1]"})
	})
	t.Run("subnets and security groups in no common VPC are denied", func(t *testing.T) {
		_, err := create(ctx, c, selectorClass("sel-vpc", map[string]any{"securityGroupSelectorTerms": []any{map[string]any{"name": "other-nodes"}}}), client.DryRunAll)
		requireDenied(t, e, group, err, "spec.subnetSelectorTerms: SubnetSecurityGroupVPCMismatch")
	})
	t.Run("an image family contradicting amiFamily warns", func(t *testing.T) {
		w, err := create(ctx, c, selectorClass("sel-family", map[string]any{"amiFamily": "AL2023", "amiSelectorTerms": []any{map[string]any{"id": "ami-0bottlerocket136"}}}), client.DryRunAll)
		requireAllowed(t, err, "sel-family")
		requireWarnings(t, w, []string{"[ImageFamilyMismatch] spec.amiFamily"})
	})
	t.Run("images of an architecture no NodePool allows are denied", func(t *testing.T) {
		np := nodePool("sel-amd-only", "karpenter.k8s.aws", "EC2NodeClass", "sel-arm")
		if _, err := create(ctx, c, np); err != nil {
			t.Fatal(err)
		}
		deleteAtEnd(t, c, np)
		arm := selectorClass("sel-arm", map[string]any{"amiFamily": "AL2023", "amiSelectorTerms": []any{tags("team", "platform")}})
		// serve sees the NodePool when its watch delivers it.
		_, err := dryRunUntil(t, ctx, c, arm, mentions("ImageArchitectureMismatch"))
		requireDenied(t, e, group, err, "spec.amiSelectorTerms: ImageArchitectureMismatch")
		if !strings.Contains(err.Error(), `NodePool "sel-amd-only"`) {
			t.Errorf("denial does not name the NodePool: %v", err)
		}
	})
	// The class works as long as one NodePool using it allows an
	// architecture of its images; an amd64-only NodePool beside one
	// allowing arm64 is refused itself, on its requirements.
	t.Run("images one NodePool cannot use and another can: only that NodePool is refused", func(t *testing.T) {
		arm := selectorClass("sel-arm-shared", map[string]any{"amiFamily": "AL2023", "amiSelectorTerms": []any{tags("team", "platform")}})
		amd := nodePool("sel-shared-amd", "karpenter.k8s.aws", "EC2NodeClass", "sel-arm-shared")
		if _, err := create(ctx, c, amd); err != nil {
			t.Fatal(err)
		}
		deleteAtEnd(t, c, amd)
		// serve sees the NodePool when its watch delivers it: the class is
		// refused while it is the only one.
		_, err := dryRunUntil(t, ctx, c, arm, mentions("ImageArchitectureMismatch"))
		requireDenied(t, e, group, err, "spec.amiSelectorTerms: ImageArchitectureMismatch")
		armPool := nodePool("sel-shared-arm", "karpenter.k8s.aws", "EC2NodeClass", "sel-arm-shared")
		setRequirements(t, armPool, requirement("kubernetes.io/arch", "arm64"))
		if _, err := create(ctx, c, armPool); err != nil {
			t.Fatal(err)
		}
		deleteAtEnd(t, c, armPool)
		if _, err := dryRunUntil(t, ctx, c, arm, func(_ []string, err error) bool { return err == nil }); err != nil {
			t.Fatalf("the class with a NodePool allowing arm64 beside the amd64-only one: %v", err)
		}
		w, err := create(ctx, c, arm)
		requireAllowed(t, err, "sel-arm-shared")
		deleteAtEnd(t, c, arm)
		requireWarnings(t, w, nil, "ImageArchitectureMismatch")

		// serve sees the class when its watch delivers it.
		again := nodePool("sel-shared-amd2", "karpenter.k8s.aws", "EC2NodeClass", "sel-arm-shared")
		_, err = dryRunUntil(t, ctx, c, again, mentions("ImageArchitectureMismatch"))
		lines := requireDenied(t, e, groupNodePool, err, "spec.template.spec.requirements: ImageArchitectureMismatch")
		if all := strings.Join(lines, "\n"); strings.Contains(all, "NodeClassInvalid") {
			t.Errorf("the class is not invalid, the NodePool is: %q", lines)
		}
		fits := nodePool("sel-shared-arm2", "karpenter.k8s.aws", "EC2NodeClass", "sel-arm-shared")
		setRequirements(t, fits, requirement("kubernetes.io/arch", "arm64"))
		w, err = create(ctx, c, fits, client.DryRunAll)
		requireAllowed(t, err, "sel-shared-arm2")
		requireWarnings(t, w, nil, "ImageArchitectureMismatch", "NodeClassNotFound")
	})
	// An EKS Auto Mode NodeClass's selector terms are judged as an
	// EC2NodeClass's; an update changing only them reaches the webhook
	// (matchConditions from rules.Reads) and is refused for what they break.
	t.Run("EKS Auto Mode NodeClass selectors", func(t *testing.T) {
		w, err := create(ctx, c, eksNodeClass("sel-auto-typo", map[string]any{"role": "EKSAutoNodeRole-demo",
			"subnetSelectorTerms": []any{demoTags, tags("karpenter.sh/discovery", "dmeo")}}), client.DryRunAll)
		requireAllowed(t, err, "sel-auto-typo")
		requireWarnings(t, w, []string{"[SelectorTermMatchesNothing] spec.subnetSelectorTerms[1]"})

		nc := eksNodeClass("sel-auto", role("EKSAutoNodeRole-demo"))
		if _, err := create(ctx, c, nc); err != nil {
			t.Fatal(err)
		}
		deleteAtEnd(t, c, nc)
		cur := get(ctx, t, c, nc)
		cur.Object["spec"].(map[string]any)["podSubnetSelectorTerms"] = []any{tags("kubernetes.io/role/pod", "1")}
		cur.Object["spec"].(map[string]any)["podSecurityGroupSelectorTerms"] = []any{demoTags}
		_, err = update(ctx, c, cur, client.DryRunAll)
		requireDenied(t, e, groupEKS, err, "spec.podSubnetSelectorTerms: SelectorMatchesNothing")
	})
	t.Run("EC2 that cannot be asked is could-not-check", func(t *testing.T) {
		e.IAM.InjectFailure(iamserver.Failure{Fault: iamserver.AccessDenied, Action: iamserver.EC2All, Always: true})
		defer e.IAM.ClearFailures()
		w, err := create(ctx, c, selectorClass("sel-unavailable", map[string]any{"subnetSelectorTerms": []any{tags("never-asked", "before")}}), client.DryRunAll)
		requireAllowed(t, err, "sel-unavailable")
		requireWarnings(t, w, []string{"[SelectorChecksSkipped] spec"})
		if !strings.Contains(strings.Join(w, "\n"), "DescribeSubnets: UnauthorizedOperation") {
			t.Errorf("warning does not name the check and why: %q", w)
		}
	})
}

// nodeClaim builds a v1 NodeClaim of class in zone, as Karpenter labels
// one once launched.
func nodeClaim(name, class, zone string) *unstructured.Unstructured {
	o := obj("karpenter.sh/v1", "NodeClaim", name, map[string]any{
		"nodeClassRef": map[string]any{"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": class},
		"requirements": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"amd64"}}},
	})
	o.SetLabels(map[string]string{"topology.kubernetes.io/zone": zone})
	return o
}

func TestUpdateGuard(t *testing.T) {
	e := v1Env.Get(t)
	ctx := testContext(t)
	c := newClient(t, e)
	group := "karpenter.k8s.aws"

	class := selectorClass("guarded", nil)
	if _, err := create(ctx, c, class); err != nil {
		t.Fatal(err)
	}
	deleteAtEnd(t, c, class)
	for _, z := range []string{"us-west-2a", "us-west-2b"} {
		nc := nodeClaim("guarded-"+z, "guarded", z)
		if _, err := create(ctx, c, nc); err != nil {
			t.Fatalf("creating NodeClaim: %v", err)
		}
		deleteAtEnd(t, c, nc)
	}
	withSubnets := func(terms ...any) *unstructured.Unstructured {
		cur := get(ctx, t, c, class)
		cur.Object["spec"].(map[string]any)["subnetSelectorTerms"] = terms
		return cur
	}
	// serve sees the NodeClaims when its watch delivers them.
	updateUntil := func(o *unstructured.Unstructured, code string) ([]string, error) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			w, err := update(ctx, c, o.DeepCopy(), client.DryRunAll)
			if mentions(code)(w, err) || time.Now().After(deadline) || ctx.Err() != nil {
				return w, err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("a subnet tag typo would strand the nodes", func(t *testing.T) {
		_, err := updateUntil(withSubnets(tags("karpenter.sh/discovery", "dmeo")), "SelectorUpdateStrandsNodes")
		lines := requireDenied(t, e, group, err, "spec.subnetSelectorTerms: SelectorUpdateStrandsNodes")
		if !strings.Contains(strings.Join(lines, "\n"), "spec.subnetSelectorTerms[0] changed from (tag karpenter.sh/discovery=demo) to (tag karpenter.sh/discovery=dmeo)") {
			t.Errorf("denial does not say which term changed:\n%s", strings.Join(lines, "\n"))
		}
	})
	t.Run("dropping every subnet of a zone with nodes", func(t *testing.T) {
		_, err := updateUntil(withSubnets(map[string]any{"id": "subnet-0a1demo"}, map[string]any{"id": "subnet-0c3demo"}), "SelectorUpdateStrandsNodes")
		lines := requireDenied(t, e, group, err, "spec.subnetSelectorTerms: SelectorUpdateStrandsNodes")
		if !strings.Contains(strings.Join(lines, "\n"), "us-west-2b") {
			t.Errorf("denial does not name the zone:\n%s", strings.Join(lines, "\n"))
		}
	})
	t.Run("dropping a zone without nodes warns with the difference", func(t *testing.T) {
		w, err := update(ctx, c, withSubnets(map[string]any{"id": "subnet-0a1demo"}, map[string]any{"id": "subnet-0b2demo"}), client.DryRunAll)
		requireAllowed(t, err, "guarded")
		requireWarnings(t, w, []string{"[SelectorUpdateChanges] spec"})
		if !strings.Contains(strings.Join(w, "\n"), "zones -us-west-2c") {
			t.Errorf("warning does not give the difference: %q", w)
		}
	})
	t.Run("check --kubeconfig refuses the same change in CI", func(t *testing.T) {
		// The pull request's manifest: the class with the typo, as a
		// GitOps tree holds it (no UID, no status).
		changed := withSubnets(tags("karpenter.sh/discovery", "dmeo"))
		manifest := map[string]any{"apiVersion": changed.GetAPIVersion(), "kind": changed.GetKind(),
			"metadata": map[string]any{"name": changed.GetName()}, "spec": changed.Object["spec"]}
		raw, err := json.Marshal(manifest)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "guarded.json")
		if err := os.WriteFile(file, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := e.Command(cctx, append(append([]string{"check", "--kubeconfig", e.Kubeconfig, "-o", "json"}, e.IAMArgs()...), file)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("check --kubeconfig: %v, want exit 1; stderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
		}
		var report struct {
			Results []struct {
				Name, UpdateOf string
				Denials        []struct{ Code, Message string }
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("check -o json: %v\n%s", err, stdout.String())
		}
		if len(report.Results) != 1 || report.Results[0].UpdateOf != "cluster:EC2NodeClass/guarded" {
			t.Fatalf("want one result judged as an update of the cluster's class:\n%s", stdout.String())
		}
		found := false
		for _, d := range report.Results[0].Denials {
			found = found || (d.Code == "SelectorUpdateStrandsNodes" && strings.Contains(d.Message, "2 NodeClaims"))
		}
		if !found {
			t.Errorf("no SelectorUpdateStrandsNodes counting the NodeClaims:\n%s", stdout.String())
		}
	})
	t.Run("a metadata update never reaches the guard", func(t *testing.T) {
		cur := get(ctx, t, c, class)
		cur.SetLabels(map[string]string{"team": "a"})
		w, err := update(ctx, c, cur, client.DryRunAll)
		requireAllowed(t, err, "guarded labels")
		if len(w) != 0 {
			t.Errorf("warnings %q on a label change", w)
		}
	})
}
