package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/karpenter"
	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// Report is the contract's JSON report of `check -o json`.
type Report struct {
	// Karpenter says which Karpenter version's requests the permission
	// checks asked, and where that version came from.
	Karpenter *KarpenterVersion `json:"karpenter,omitempty"`
	Results   []Result          `json:"results"`
}

// KarpenterVersion is the report's statement of the Karpenter version the
// checks assumed.
type KarpenterVersion struct {
	// Version is the modelled version whose requests were asked ("1.13").
	Version string `json:"version"`
	// Given is what the flag (or default) said ("1.13.2").
	Given string `json:"given,omitempty"`
	// Source says where it came from ("--karpenter-version").
	Source string `json:"source"`
	// Note says how Given maps to Version, when it is not one of its
	// releases.
	Note string `json:"note,omitempty"`
}

// Result is the verdict on one document.
type Result struct {
	Source string `json:"source"`
	// File is the file the object was read from ("<stdin>"), and Line
	// the object's first line in it.
	File       string `json:"file"`
	Line       int    `json:"line"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Allowed    bool   `json:"allowed"`
	Denials    []Item `json:"denials"`
	Warnings   []Item `json:"warnings"`
	// NotChecked are the parts of Karpenter's requests that were not asked
	// (the launch's image, subnets and security groups, until an EC2 view
	// resolves them): not a pass.
	NotChecked []karpenter.NotChecked `json:"notChecked,omitempty"`
	// UpdateOf names the cluster's object the document was judged as an
	// update of (check --kubeconfig); empty for a create.
	UpdateOf string `json:"updateOf,omitempty"`
}

// Item is one denial or warning.
type Item struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
	// Line and Column say where Field is written in the result's file
	// (1-based, the column in Unicode code points); omitted when unknown
	// (a NodeClassInvalid cause: its class may be in another file or only
	// in the cluster).
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Fix is, for a denial of the controller's permissions, the policy
	// document to change and the statements that would allow what was
	// denied (authz.SuggestFix).
	Fix *authz.Fix `json:"fix,omitempty"`
	// Causes are, for NodeClassInvalid, the denials of the referenced
	// class, each with its own code, field and message.
	Causes []Item `json:"causes,omitempty"`
}

// Denied reports whether any object was denied.
func (r Report) Denied() bool {
	for _, res := range r.Results {
		if !res.Allowed {
			return true
		}
	}
	return false
}

// InputClasses resolves NodePool references against the classes of the
// input, then (when set) against a cluster.
type InputClasses struct {
	ec2     map[string]*rules.EC2NodeClass
	eks     map[string]*rules.NodeClass
	pools   []rules.NodePool
	Cluster rules.ClassGetter
}

var (
	_ rules.ClassGetter    = (*InputClasses)(nil)
	_ rules.NodePoolLister = (*InputClasses)(nil)
)

// NodePoolsUsing implements rules.NodePoolLister: the input's NodePools
// naming the EC2NodeClass class.
func (ic *InputClasses) NodePoolsUsing(_ context.Context, class string) ([]rules.NodePool, error) {
	var out []rules.NodePool
	for _, np := range ic.pools {
		if ref := np.Spec.Template.Spec.NodeClassRef; ref != nil && ref.GroupKind() == rules.EC2NodeClassGK && ref.Name == class {
			out = append(out, np)
		}
	}
	return out, nil
}

// NewInputClasses indexes the classes among docs.
func NewInputClasses(docs []Document, cluster rules.ClassGetter) *InputClasses {
	ic := &InputClasses{ec2: map[string]*rules.EC2NodeClass{}, eks: map[string]*rules.NodeClass{}, Cluster: cluster}
	for _, d := range docs {
		switch {
		case d.EC2NodeClass != nil:
			ic.ec2[d.Name] = d.EC2NodeClass
		case d.NodeClass != nil:
			ic.eks[d.Name] = d.NodeClass
		case d.NodePool != nil:
			ic.pools = append(ic.pools, *d.NodePool)
		}
	}
	return ic
}

// Duplicates lists the classes the input defines more than once, one line
// each naming every place: NodePools resolve to the last definition, which
// may not be the one the cluster ends up with.
func Duplicates(docs []Document) []string {
	type key struct{ kind, name string }
	seen := map[key][]string{}
	var order []key
	for _, d := range docs {
		if d.EC2NodeClass == nil && d.NodeClass == nil {
			continue
		}
		k := key{d.Kind, d.Name}
		if _, ok := seen[k]; !ok {
			order = append(order, k)
		}
		seen[k] = append(seen[k], d.Source)
	}
	var out []string
	for _, k := range order {
		if places := seen[k]; len(places) > 1 {
			out = append(out, fmt.Sprintf("%s %q is defined %d times (%s); NodePools are checked against the last", k.kind, k.name, len(places), strings.Join(places, ", ")))
		}
	}
	return out
}

// GetEC2NodeClass implements rules.ClassGetter.
func (ic *InputClasses) GetEC2NodeClass(ctx context.Context, name string) (*rules.EC2NodeClass, bool, error) {
	if nc, ok := ic.ec2[name]; ok {
		return nc, true, nil
	}
	if ic.Cluster != nil {
		return ic.Cluster.GetEC2NodeClass(ctx, name)
	}
	return nil, false, nil
}

// GetNodeClass implements rules.ClassGetter.
func (ic *InputClasses) GetNodeClass(ctx context.Context, name string) (*rules.NodeClass, bool, error) {
	if nc, ok := ic.eks[name]; ok {
		return nc, true, nil
	}
	if ic.Cluster != nil {
		return ic.Cluster.GetNodeClass(ctx, name)
	}
	return nil, false, nil
}

// parallelism bounds how many documents are checked at once: IAM answers
// are cached, so this only overlaps the first lookups.
const parallelism = 8

// Run checks every document with c and returns the report, in input order.
// c.Classes is used to resolve NodePool references (see NewInputClasses).
func Run(ctx context.Context, c *rules.Checker, docs []Document) Report {
	checked := make([]Document, 0, len(docs))
	for _, d := range docs {
		if d.AWSAuth == nil {
			checked = append(checked, d)
		}
	}
	docs = checked
	results := make([]Result, len(docs))
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i := range docs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = checkOne(ctx, c, docs[i])
		}()
	}
	wg.Wait()
	kv := c.Karpenter()
	return Report{Results: results, Karpenter: &KarpenterVersion{Version: kv.Model.String(), Given: kv.Given, Source: kv.Source, Note: kv.Note}}
}

func checkOne(ctx context.Context, c *rules.Checker, d Document) Result {
	v := c.Check(ctx, rules.Review{EC2NodeClass: d.EC2NodeClass, OldEC2NodeClass: d.Current, NodePool: d.NodePool, NodeClass: d.NodeClass})
	updateOf := ""
	if d.Current != nil {
		updateOf = ClusterSource(d.Kind, d.Current.Name)
	}
	return Result{
		UpdateOf: updateOf,
		Source:   d.Source, File: d.File(), Line: d.Position(nil).Line,
		APIVersion: d.APIVersion, Kind: d.Kind, Name: d.Name,
		Allowed:    v.Allowed(),
		Denials:    items(d, v.Denials),
		Warnings:   items(d, v.Warnings),
		NotChecked: v.NotChecked,
	}
}

func items(d Document, fs []rules.Finding) []Item {
	out := make([]Item, len(fs))
	for i, f := range fs {
		pos := d.Position(f.Field)
		out[i] = Item{Code: string(f.Code), Field: f.Field.String(), Message: f.Message, Line: pos.Line, Column: pos.Column,
			Fix: suggest(f)}
		if len(f.Causes) > 0 {
			// The class may be elsewhere (or in the cluster): no position.
			out[i].Causes = items(Document{}, f.Causes)
		}
	}
	return out
}

// suggest returns the fix for a permission denial, from the questions IAM
// denied and its decisions, which the finding carries.
func suggest(f rules.Finding) *authz.Fix {
	if !f.Deny || len(f.Requests) == 0 || len(f.Decisions) != len(f.Requests) {
		return nil
	}
	ds := make([]authz.Denial, len(f.Requests))
	for i, q := range f.Requests {
		ds[i] = authz.Denial{Question: q, Decision: f.Decisions[i]}
	}
	fix := authz.SuggestFix(ds)
	return &fix
}

// Position returns where the item is written in res's file.
func (res Result) Position(it Item) Position {
	return Position{File: res.File, Line: it.Line, Column: it.Column}
}

// at is the "file:line:col: " prefix of a text report line, "" when the
// file is unknown.
func (res Result) at(it Item) string {
	if res.File == "" {
		return ""
	}
	return res.Position(it).String() + ": "
}

// notCheckedLine says in one line which requests were not asked: the
// actions and the resources.
func notCheckedLine(ns []karpenter.NotChecked) string {
	// One clause per reason: the actions, and the resources they were not
	// asked on.
	type clause struct{ actions, resources []string }
	var reasons []string
	by := map[string]*clause{}
	for _, n := range ns {
		why := strings.TrimPrefix(strings.TrimPrefix(n.Reason, "not checked yet: "), "not checked: ")
		c := by[why]
		if c == nil {
			c = &clause{}
			by[why] = c
			reasons = append(reasons, why)
		}
		if !slices.Contains(c.actions, n.Action) {
			c.actions = append(c.actions, n.Action)
		}
		if !slices.Contains(c.resources, n.Resource) {
			c.resources = append(c.resources, n.Resource)
		}
	}
	parts := make([]string, len(reasons))
	for i, why := range reasons {
		c := by[why]
		parts[i] = fmt.Sprintf("%s on the class's %s (%s)", strings.Join(c.actions, ", "), strings.Join(c.resources, ", "), why)
	}
	return strings.Join(parts, "; ") + "; see notChecked in -o json"
}

// WriteJSON writes the contract's JSON report.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Results == nil {
		r.Results = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a report for a terminal or a CI log: per object its
// verdict, then one line per denial and warning with the file:line:col of
// its field, its code, field and message (which ends with the fix).
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	allowed, warned, denied := 0, 0, 0
	for _, res := range r.Results {
		verdict := "ok  "
		switch {
		case !res.Allowed:
			verdict = "DENY"
			denied++
		case len(res.Warnings) > 0:
			verdict = "warn"
			warned++
		default:
			allowed++
		}
		if res.UpdateOf != "" {
			fmt.Fprintf(&b, "%s  %s/%s  (%s, an update of %s)\n", verdict, res.Kind, res.Name, res.Source, res.UpdateOf)
		} else {
			fmt.Fprintf(&b, "%s  %s/%s  (%s)\n", verdict, res.Kind, res.Name, res.Source)
		}
		for _, it := range res.Denials {
			fmt.Fprintf(&b, "      denied   %s%s: [%s] %s\n", res.at(it), it.Field, it.Code, it.Message)
		}
		for _, it := range res.Warnings {
			fmt.Fprintf(&b, "      warning  %s[%s] %s: %s\n", res.at(it), it.Code, it.Field, it.Message)
		}
		if len(res.NotChecked) > 0 {
			fmt.Fprintf(&b, "      not checked: %s\n", notCheckedLine(res.NotChecked))
		}
	}
	if len(r.Results) == 0 {
		b.WriteString("no EC2NodeClass, NodePool or EKS NodeClass found in the input\n")
	} else {
		b.WriteString("\n")
		if k := r.Karpenter; k != nil {
			fmt.Fprintf(&b, "permission checks asked Karpenter %s's requests (%s", k.Version, k.Source)
			if k.Given != "" && k.Given != k.Version {
				fmt.Fprintf(&b, ": %s", k.Given)
			}
			if k.Note != "" {
				fmt.Fprintf(&b, "; %s", k.Note)
			}
			b.WriteString(")\n")
		}
		fmt.Fprintf(&b, "%d object(s): %d allowed, %d allowed with warnings, %d denied\n", len(r.Results), allowed, warned, denied)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
