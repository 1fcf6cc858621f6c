// Command demo is `make demo`: a local control plane (kube-apiserver and
// etcd via envtest) serving Karpenter's real CRDs, nodeclass-guard's real
// binary registered as its admission webhook, a local IAM endpoint serving
// the sample account (testdata/iam/sample-snapshot.json, the one copy of
// it, read from the repository), and the manifests of examples/good and
// examples/bad applied with a real client. It prints what the API server
// answered the way kubectl does, then stops everything, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

func main() {
	os.Exit(run())
}

func run() int {
	// Ctrl-C cancels ctx; the signal stays captured until everything is
	// stopped, so that a second Ctrl-C cannot orphan the control plane.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	began := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	}
	env, err := framework.Start(ctx, framework.Options{
		IAM:  framework.IAMLocalEndpoint,
		Logf: say,
	})
	var missing *framework.MissingAssetsError
	switch {
	case errors.As(err, &missing):
		say("%v", err)
		return 2
	case errors.Is(err, context.Canceled):
		say("interrupted while starting; everything started was stopped")
		return 130
	case err != nil:
		say("%v", err)
		return 1
	}
	say("control plane and webhook ready in %s", time.Since(began).Round(100*time.Millisecond))

	tally := &tally{codes: map[string]int{}}
	failed := false
	// e2e/demo/update: a node of class "default" runs, then an edit of the
	// class that would strand it.
	for _, dir := range []string{"examples/good", "examples/bad", "e2e/demo/update"} {
		if ctx.Err() != nil {
			break
		}
		if err := apply(ctx, env, dir, tally); err != nil {
			say("%v", err)
			failed = true
			break
		}
	}
	interrupted := ctx.Err() != nil
	if interrupted {
		say("interrupted; stopping")
	}

	stopErr := env.Stop()
	if stopErr != nil {
		say("stopping: %v", stopErr)
	}
	summary := tally.String()
	if interrupted {
		summary = "interrupted after " + summary
	}
	fmt.Printf("\nnodeclass-guard demo: %s; control plane and webhook stopped (%s)\n", summary, time.Since(began).Round(100*time.Millisecond))
	switch {
	case failed || stopErr != nil || tally.goodDenied > 0:
		return 1
	case interrupted:
		return 130
	}
	return 0
}

// tally counts what the API server answered.
type tally struct {
	created, denied, warnings, goodDenied int
	codes                                 map[string]int
}

func (t *tally) String() string {
	codes := make([]string, 0, len(t.codes))
	for c := range t.codes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	s := fmt.Sprintf("%d created, %d denied, %d warnings", t.created, t.denied, t.warnings)
	if len(codes) > 0 {
		s += " (" + strings.Join(codes, ", ") + ")"
	}
	if t.goodDenied > 0 {
		s += fmt.Sprintf("; %d objects of examples/good were DENIED", t.goodDenied)
	}
	return s
}

// apply creates every object of dir's manifests, in file order, and prints
// the API server's answers as `kubectl apply -f dir` would.
func apply(ctx context.Context, env *framework.Env, dir string, t *tally) error {
	docs, err := framework.ReadManifests(filepath.Join(env.Root, dir))
	if err != nil {
		return err
	}
	c, err := env.NewClient()
	if err != nil {
		return err
	}
	fmt.Printf("\n$ kubectl apply -f %s\n", dir)
	for _, d := range docs {
		if ctx.Err() != nil {
			return nil
		}
		o := d.Object
		file := d.Source
		if i := strings.LastIndex(file, "#"); i >= 0 {
			file = file[:i]
		}
		if r, err := filepath.Rel(env.Root, file); err == nil {
			file = r
		}
		c.TakeWarnings()
		// kubectl apply of an object that exists is an update (the
		// webhook sees a CREATE of an existing name first, so ask).
		var err error
		updated := stored(ctx, c, o)
		if updated {
			err = applyUpdate(ctx, c, o)
		} else {
			err = c.Create(ctx, o)
		}
		if ctx.Err() != nil {
			return nil // interrupted: the answer, if any, is not worth printing
		}
		for _, w := range c.TakeWarnings() {
			fmt.Printf("Warning: %s\n", w)
			t.warnings++
			t.code(w)
		}
		gvk := o.GroupVersionKind()
		name := strings.ToLower(gvk.Kind) + "." + gvk.Group + "/" + o.GetName()
		verb := "creating"
		if updated {
			verb = "applying"
		}
		switch {
		case err == nil && updated:
			fmt.Printf("%s configured\n", name)
			t.created++
		case err == nil:
			fmt.Printf("%s created\n", name)
			t.created++
		default:
			fmt.Printf("Error from server (%s): error when %s %q: %s\n", reason(err), verb, file, message(err))
			t.denied++
			t.code(message(err))
			if strings.HasPrefix(dir, "examples/good") {
				t.goodDenied++
			}
		}
	}
	return nil
}

// stored reports whether o exists in the API server.
func stored(ctx context.Context, c *framework.Client, o *unstructured.Unstructured) bool {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(o.GroupVersionKind())
	return c.Get(ctx, client.ObjectKeyFromObject(o), cur) == nil
}

// applyUpdate replaces the stored object's spec with o's. serve reads
// NodeClaims through its informer cache: a NodeClaim created an instant
// before may not be there yet, so dry runs wait (at most 5s) until serve's
// answer is a denial or stops changing, as it would be a moment later.
func applyUpdate(ctx context.Context, c *framework.Client, o *unstructured.Unstructured) error {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(o.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(o), cur); err != nil {
		return err
	}
	cur.Object["spec"] = o.Object["spec"]
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c.TakeWarnings()
		if err := c.Update(ctx, cur.DeepCopy(), client.DryRunAll); err != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.TakeWarnings()
	return c.Update(ctx, cur)
}

// code records the reason codes ("[Code]") found in text.
func (t *tally) code(text string) {
	for {
		i := strings.Index(text, "[")
		if i < 0 {
			return
		}
		j := strings.Index(text[i:], "]")
		if j < 0 {
			return
		}
		if c := text[i+1 : i+j]; c != "" && c[0] >= 'A' && c[0] <= 'Z' && !strings.ContainsAny(c, " \"/:") {
			t.codes[c]++
		}
		text = text[i+j+1:]
	}
}

// reason is the status reason kubectl puts in parentheses.
func reason(err error) string {
	if r := apierrors.ReasonForError(err); r != "" {
		return string(r)
	}
	return "Unknown"
}

func message(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Message
	}
	return err.Error()
}
