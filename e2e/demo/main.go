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
	for _, dir := range []string{"examples/good", "examples/bad"} {
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
		err := c.Create(ctx, o)
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
		switch {
		case err == nil:
			fmt.Printf("%s created\n", name)
			t.created++
		case apierrors.IsAlreadyExists(err):
			fmt.Printf("%s unchanged\n", name)
		default:
			fmt.Printf("Error from server (%s): error when creating %q: %s\n", reason(err), file, message(err))
			t.denied++
			t.code(message(err))
			if strings.HasPrefix(dir, "examples/good") {
				t.goodDenied++
			}
		}
	}
	return nil
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
		if c := text[i+1 : i+j]; c != "" && !strings.ContainsAny(c, " \"/:") {
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
