package authz

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// RolePolicies is what one read of a role's policies tells: the policies
// IAM evaluates for the role within its account, and whether the account
// is in an organization (whose SCPs only IAM can evaluate).
type RolePolicies struct {
	// ARN is the role's ARN, path included.
	ARN string
	Set PolicySet
	// Keys are the condition keys the documents test, lower-cased.
	Keys map[string]bool
	// InOrganization is set when IAM's simulation answered with an
	// OrganizationsDecisionDetail: SCPs (and RCPs) apply, which the
	// documents here do not show.
	InOrganization bool
	// Unreadable, when set, says why the policies could not be read
	// (IAM refused the read: the webhook's identity lacks
	// iam:GetRolePolicy...; or a document this evaluator cannot parse):
	// every question then goes to SimulatePrincipalPolicy, as before.
	Unreadable string
}

// PolicyReader reads a role's policies (Live with the IAM API; Budgeted
// in front of it).
type PolicyReader interface {
	RolePolicies(ctx context.Context, principal string) (RolePolicies, error)
}

var (
	_ PolicyReader = (*Live)(nil)
	_ PolicyReader = (*Budgeted)(nil)
)

// orgProbeAction is the action of the one SimulatePrincipalPolicy call per
// read that tells whether the account is in an organization: IAM adds
// OrganizationsDecisionDetail to its answers only then.
const orgProbeAction = "iam:GetRole"

// RolePolicies implements PolicyReader: GetRole (the boundary, the real
// ARN), ListRolePolicies and GetRolePolicy for each inline policy,
// ListAttachedRolePolicies, GetPolicy and GetPolicyVersion for each
// attached policy and the boundary, and one SimulatePrincipalPolicy to learn
// whether the account is in an organization: 5 + inline + 2 × managed
// calls, in three rounds. IAM refusing a read (AccessDenied) is not an
// error: the answer is Unreadable and questions go to the simulator.
func (l *Live) RolePolicies(ctx context.Context, principal string) (RolePolicies, error) {
	api, ok := l.client.(IAMPolicyAPI)
	if !ok {
		return RolePolicies{ARN: principal, Unreadable: "the IAM client cannot read policies"}, nil
	}
	arn, err := l.ResolvePrincipal(ctx, principal)
	if err != nil {
		if IsUnavailable(err) || errors.Is(err, ErrNotFound) {
			return RolePolicies{}, err
		}
		return RolePolicies{}, fmt.Errorf("principal %q: %w", principal, err)
	}
	ra, err := ParseRoleARN(arn)
	if err != nil {
		return RolePolicies{}, fmt.Errorf("principal %q: %w", principal, err)
	}
	name := ra.Name
	rp := RolePolicies{ARN: arn, Keys: map[string]bool{}}

	var (
		wg                  sync.WaitGroup
		role                *types.Role
		inlineNames         []string
		attached            []types.AttachedPolicy
		errRole, errInline  error
		errAttach, errProbe error
	)
	wg.Go(func() {
		var out *iam.GetRoleOutput
		out, errRole = callIAM(l, ctx, "GetRole", func(ctx context.Context) (*iam.GetRoleOutput, error) {
			return l.client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		})
		if errRole == nil {
			role = out.Role
		}
	})
	wg.Go(func() {
		var marker *string
		for page := 0; page < l.maxPages; page++ {
			out, err := callIAM(l, ctx, "ListRolePolicies", func(ctx context.Context) (*iam.ListRolePoliciesOutput, error) {
				return api.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name), Marker: marker})
			})
			if err != nil {
				errInline = err
				return
			}
			inlineNames = append(inlineNames, out.PolicyNames...)
			if !out.IsTruncated || aws.ToString(out.Marker) == "" {
				return
			}
			marker = out.Marker
		}
		errInline = &UnavailableError{Op: "ListRolePolicies", Err: fmt.Errorf("more than %d pages", l.maxPages)}
	})
	wg.Go(func() {
		var marker *string
		for page := 0; page < l.maxPages; page++ {
			out, err := callIAM(l, ctx, "ListAttachedRolePolicies", func(ctx context.Context) (*iam.ListAttachedRolePoliciesOutput, error) {
				return api.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name), Marker: marker})
			})
			if err != nil {
				errAttach = err
				return
			}
			attached = append(attached, out.AttachedPolicies...)
			if !out.IsTruncated || aws.ToString(out.Marker) == "" {
				return
			}
			marker = out.Marker
		}
		errAttach = &UnavailableError{Op: "ListAttachedRolePolicies", Err: fmt.Errorf("more than %d pages", l.maxPages)}
	})
	wg.Go(func() {
		var out *iam.SimulatePrincipalPolicyOutput
		out, errProbe = callIAM(l, ctx, "SimulatePrincipalPolicy", func(ctx context.Context) (*iam.SimulatePrincipalPolicyOutput, error) {
			return l.client.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(arn), ActionNames: []string{orgProbeAction}})
		})
		if errProbe == nil {
			for _, r := range out.EvaluationResults {
				if r.OrganizationsDecisionDetail != nil {
					rp.InOrganization = true
				}
			}
		}
	})
	wg.Wait()
	for _, err := range []error{errRole, errInline, errAttach, errProbe} {
		if err == nil {
			continue
		}
		if why, refused := readRefused(err); refused {
			rp.Unreadable = why
			return rp, nil
		}
		var nse *types.NoSuchEntityException
		if errors.As(err, &nse) {
			return RolePolicies{}, &NotFoundError{Kind: "role", Name: arn}
		}
		return RolePolicies{}, asUnavailable(err)
	}
	if role == nil {
		return RolePolicies{}, &UnavailableError{Op: "GetRole", Err: fmt.Errorf("response for role %q holds no Role element", name)}
	}
	if a := aws.ToString(role.Arn); a != "" {
		rp.ARN = a
	}

	// Second and third rounds: the documents.
	type doc struct {
		name  string // inline name or managed ARN
		text  string
		err   error
		bound bool
	}
	docs := make([]doc, 0, len(inlineNames)+len(attached)+1)
	for _, n := range inlineNames {
		docs = append(docs, doc{name: n})
	}
	inline := len(docs)
	for _, a := range attached {
		docs = append(docs, doc{name: aws.ToString(a.PolicyArn)})
	}
	if b := role.PermissionsBoundary; b != nil && aws.ToString(b.PermissionsBoundaryArn) != "" {
		docs = append(docs, doc{name: aws.ToString(b.PermissionsBoundaryArn), bound: true})
	}
	for i := range docs {
		d := &docs[i]
		wg.Go(func() {
			if i < inline {
				out, err := callIAM(l, ctx, "GetRolePolicy", func(ctx context.Context) (*iam.GetRolePolicyOutput, error) {
					return api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(d.name)})
				})
				if err == nil {
					d.text = aws.ToString(out.PolicyDocument)
				}
				d.err = err
				return
			}
			pol, err := callIAM(l, ctx, "GetPolicy", func(ctx context.Context) (*iam.GetPolicyOutput, error) {
				return api.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(d.name)})
			})
			if err != nil {
				d.err = err
				return
			}
			if pol.Policy == nil || aws.ToString(pol.Policy.DefaultVersionId) == "" {
				d.err = &UnavailableError{Op: "GetPolicy", Err: fmt.Errorf("policy %s: no DefaultVersionId", d.name)}
				return
			}
			ver, err := callIAM(l, ctx, "GetPolicyVersion", func(ctx context.Context) (*iam.GetPolicyVersionOutput, error) {
				return api.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(d.name), VersionId: pol.Policy.DefaultVersionId})
			})
			if err != nil {
				d.err = err
				return
			}
			if ver.PolicyVersion == nil {
				d.err = &UnavailableError{Op: "GetPolicyVersion", Err: fmt.Errorf("policy %s: no PolicyVersion element", d.name)}
				return
			}
			d.text = aws.ToString(ver.PolicyVersion.Document)
		})
	}
	wg.Wait()
	for _, d := range docs {
		if d.err != nil {
			if why, refused := readRefused(d.err); refused {
				rp.Unreadable = why
				return rp, nil
			}
			return RolePolicies{}, asUnavailable(d.err)
		}
		text := d.text
		if decoded, err := url.PathUnescape(text); err == nil {
			text = decoded
		}
		p, err := ParsePolicy([]byte(text))
		if err != nil {
			rp.Unreadable = fmt.Sprintf("policy %s: %v", d.name, err)
			return rp, nil
		}
		for _, k := range p.conditionKeys() {
			rp.Keys[strings.ToLower(k)] = true
		}
		np := NamedPolicy{Name: d.name, Policy: p}
		if d.bound {
			rp.Set.Boundary = &np
		} else {
			rp.Set.Identity = append(rp.Set.Identity, np)
		}
	}
	return rp, nil
}

// callIAM makes one IAM call within Live's in-flight bound, counted in
// its metrics.
func callIAM[T any](l *Live, ctx context.Context, op string, call func(context.Context) (T, error)) (T, error) {
	if err := l.acquire(ctx, op); err != nil {
		var zero T
		return zero, err
	}
	start := time.Now()
	out, err := call(ctx)
	l.release()
	l.metrics.observeCall(op, start, err)
	return out, err
}

// readRefused reports whether IAM refused a read of the policies
// (AccessDenied: the webhook's identity may simulate but not read).
func readRefused(err error) (string, bool) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
			return apiErr.ErrorCode() + ": " + apiErr.ErrorMessage(), true
		}
	}
	return "", false
}

// asUnavailable wraps err as an *UnavailableError unless it is one.
func asUnavailable(err error) error {
	if IsUnavailable(err) {
		return err
	}
	op := "GetRole"
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.Operation()
	}
	return &UnavailableError{Op: op, Err: err}
}

// RolePolicies implements PolicyReader: one token of the budget for the
// read, which happens once per cache TTL whatever the classes.
func (b *Budgeted) RolePolicies(ctx context.Context, principal string) (RolePolicies, error) {
	r, ok := b.inner.(PolicyReader)
	if !ok {
		return RolePolicies{ARN: principal, Unreadable: "the IAM view cannot read policies"}, nil
	}
	if err := b.spend(WithPriority(ctx), "GetRolePolicy"); err != nil {
		return RolePolicies{}, err
	}
	return r.RolePolicies(ctx, principal)
}

// conditionKeys lists the condition keys p's statements test.
func (p *Policy) conditionKeys() []string {
	var out []string
	for i := range p.Statements {
		for j := range p.Statements[i].conditions {
			out = append(out, p.Statements[i].conditions[j].key)
		}
	}
	return out
}

// SimulatedDecision evaluates q against set as IAM's SimulatePrincipalPolicy
// answers it, read as Live reads that answer: the evaluator's verdict,
// with what the simulator says of it (the denying statement as its line,
// the boundary's detail, the missing context keys) and nothing only the
// snapshot evaluator knows (near misses, failed conditions). Answers
// through PolicyView are then word for word those of Live against an
// endpoint that evaluates with Evaluate (the local IAM endpoint).
func SimulatedDecision(set PolicySet, q Question) Decision {
	if q.Resource == "" {
		q.Resource = "*"
	}
	full := Evaluate(set, q)
	d := Decision{MissingContext: full.MissingContext}
	if full.Allowed {
		d.Allowed = true
		return d
	}
	d.Explicit = full.Explicit
	boundaryAllows := true
	if set.Boundary != nil {
		boundaryAllows = Evaluate(PolicySet{Identity: []NamedPolicy{*set.Boundary}}, q).Allowed
	}
	// The matched statement, for an explicit deny: the denying one.
	var denyPolicy *NamedPolicy
	denyIndex := -1
	if full.Explicit {
		all := set.Identity
		if set.Boundary != nil {
			all = append(all[:len(all):len(all)], *set.Boundary)
		}
		for k := range all {
			np := &all[k]
			if np.Name != full.DeniedBy.Policy || np.Policy == nil {
				continue
			}
			for i := range np.Policy.Statements {
				if np.Policy.Statements[i].Label() == full.DeniedBy.Statement {
					denyPolicy, denyIndex = np, i
					break
				}
			}
			if denyPolicy != nil {
				break
			}
		}
	}
	inlineDeny := denyPolicy != nil && !isManagedPolicyARN(denyPolicy.Name)
	switch {
	case !boundaryAllows && !inlineDeny:
		d.DeniedBy.Source = DeniedByBoundary
	case d.Explicit:
		d.DeniedBy.Source = DeniedByIdentity
	default:
		denyPolicy = nil
	}
	if d.Explicit && denyPolicy != nil {
		d.DeniedBy.Policy = simulatorPolicyID(denyPolicy.Name)
		if spans := denyPolicy.Policy.Spans(); denyIndex < len(spans) {
			d.DeniedBy.Statement = fmt.Sprintf("line %d", spans[denyIndex].Start.Line)
		}
	}
	return d
}

// isManagedPolicyARN reports whether a NamedPolicy's name is a managed
// policy's ARN (an inline policy is named by its name).
func isManagedPolicyARN(name string) bool {
	a, err := ParseARN(name)
	return err == nil && strings.HasPrefix(a.Resource, "policy/")
}

// simulatorPolicyID is the SourcePolicyId IAM's simulator gives a
// policy: an inline policy's name, a managed policy's name (the last part
// of its ARN).
func simulatorPolicyID(name string) string {
	if !isManagedPolicyARN(name) {
		return name
	}
	a, _ := ParseARN(name)
	return a.Resource[strings.LastIndexByte(a.Resource, '/')+1:]
}

// PolicyView is an IAM View that reads the controller role's policies once
// per cache TTL and answers permission questions with the local evaluator
// (SimulatedDecision), so that a new class costs IAM nothing for them.
// Roles and instance profiles come from inner (a Cached view of Live).
//
// What only AWS sees stays with AWS: when the account is in an
// organization, a question the role's own policies allow is also asked of
// SimulatePrincipalPolicy (through inner, so cached, coalesced, batched
// and budgeted as before), for its SCPs' verdict, with its context
// projected onto the keys the policies can test (those the documents test
// and those IAM has reported missing), so that classes whose requests
// differ only in what no policy tests share one answer. When the
// policies cannot be read (IAM refuses the read, or a document is beyond
// this evaluator), or the evaluator meets a condition operator it does
// not know, the question goes to the simulator as well.
//
// The read of the policies follows the cache's contract: one shared read
// for concurrent callers, and, when IAM cannot be asked, the last read,
// marked stale, for StaleFor past its TTL; "could not check" otherwise.
type PolicyView struct {
	View
	reader   PolicyReader
	policies answerCache

	mu sync.RWMutex
	// learned are context keys, lower-cased, that a probe found tested
	// and the role's own statements about that request do not test: keys
	// an SCP tests.
	learned map[string]bool
	// refs are, by refKey, the keys a request's evaluation can test, as
	// a probe found them (askSCPs).
	refs map[string]refEntry

	// probeMu guards the probes waiting for the one in flight (probe).
	probeMu sync.Mutex
	probing bool
	waiting []*probeRequest
}

var (
	_ View    = (*PolicyView)(nil)
	_ Batcher = (*PolicyView)(nil)
)

// NewPolicyView returns a PolicyView reading policies through reader,
// asking inner for roles, profiles and what the simulator must answer.
// opts are the cache's (TTL, StaleFor, Timeout, Metrics); Size is ignored.
func NewPolicyView(inner View, reader PolicyReader, opts CacheOptions) *PolicyView {
	v := &PolicyView{View: inner, reader: reader, learned: map[string]bool{}, refs: map[string]refEntry{}}
	opts.Size, opts.NegativeSize = 64, 64
	v.policies.init(opts)
	return v
}

// Policies returns principal's policies as last read (reading them when
// the cache holds none fresh).
func (v *PolicyView) Policies(ctx context.Context, principal string) (RolePolicies, Served, error) {
	val, served, err := v.policies.lookup(ctx, "GetRolePolicy", "policies\x00"+principal, func(ctx context.Context) (any, error) {
		return v.reader.RolePolicies(ctx, principal)
	})
	if err != nil {
		return RolePolicies{}, served, err
	}
	return val.(RolePolicies), served, nil
}

// Keep reads principal's policies now and again before each read
// expires, until ctx ends, so that no admission waits for the read (three
// sequential IAM round trips: the lists, each policy, its version). A read
// IAM refuses is tried again after a tenth of the TTL (at most 30 s);
// meanwhile admissions read the policies themselves, under the cache's
// contract. The reads cost what the admissions' reads would have: one per
// TTL, whatever the classes.
func (v *PolicyView) Keep(ctx context.Context, principal string) {
	ttl := v.policies.opts.TTL
	retry := min(ttl/10, 30*time.Second)
	for {
		wait := ttl * 9 / 10
		if err := v.read(ctx, principal); err != nil {
			wait = retry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// read reads principal's policies and stores them, whatever the cache
// holds; a read already in flight is joined.
func (v *PolicyView) read(ctx context.Context, principal string) error {
	key := "policies\x00" + principal
	_, err, _ := v.policies.group.Do(key, func() (any, error) {
		callCtx, cancel := context.WithTimeout(ctx, v.policies.opts.Timeout)
		defer cancel()
		p, err := v.reader.RolePolicies(callCtx, principal)
		now := v.policies.opts.Now()
		switch {
		case err == nil:
			v.policies.store(key, &cacheEntry{value: p, fetched: now, expires: now.Add(v.policies.opts.TTL)})
		case errors.Is(err, ErrNotFound):
			v.policies.store(key, &cacheEntry{err: err, fetched: now, expires: now.Add(v.policies.opts.NegativeTTL)})
		}
		return p, err
	})
	return err
}

// Decide implements View.
func (v *PolicyView) Decide(ctx context.Context, q Question) (Decision, error) {
	ds, errs := v.DecideAll(ctx, []Question{q})
	return ds[0], errs[0]
}

// DecideAll implements Batcher.
func (v *PolicyView) DecideAll(ctx context.Context, qs []Question) ([]Decision, []error) {
	ds, errs := make([]Decision, len(qs)), make([]error, len(qs))
	// Questions the simulator answers: whole, or projected for the SCPs.
	var whole, scp []int
	var rp RolePolicies
	var served Served
	var have string
	for i, q := range qs {
		if have == "" || q.Principal != have {
			var err error
			rp, served, err = v.Policies(ctx, q.Principal)
			if err != nil {
				errs[i] = err
				have = ""
				continue
			}
			have = q.Principal
		}
		if rp.Unreadable != "" {
			whole = append(whole, i)
			continue
		}
		d := SimulatedDecision(rp.Set, q)
		if d.Allowed && evaluatorUnsure(rp.Set, q) {
			whole = append(whole, i)
			continue
		}
		d = knownAbsent(d, q)
		d.Served = served
		ds[i] = d
		if d.Allowed && rp.InOrganization {
			scp = append(scp, i)
		}
	}
	if len(whole) > 0 {
		sub := make([]Question, len(whole))
		for j, i := range whole {
			sub[j] = qs[i]
		}
		got, gotErrs := DecideAll(ctx, v.View, sub)
		for j, i := range whole {
			ds[i], errs[i] = got[j], gotErrs[j]
		}
	}
	if len(scp) > 0 {
		v.askSCPs(ctx, qs, scp, ds, errs)
	}
	return ds, errs
}

// evaluatorUnsure reports whether the evaluator met what it does not know
// (a condition operator) while deciding q: the simulator decides then.
func evaluatorUnsure(set PolicySet, q Question) bool {
	if q.Resource == "" {
		q.Resource = "*"
	}
	return len(Evaluate(set, q).Unsupported) > 0
}

// askSCPs asks the simulator the questions qs[idx] (allowed by the role's
// own policies) for what the organization's policies say, and keeps its
// answer where it denies. It costs a class as few calls as exactness
// allows:
//
//   - The keys a request's evaluation can test are learned once per
//     action and resource (references, a probe without context: IAM
//     reports every key the statements about it test, the role's and the
//     SCPs', as missing). A question is asked with only those keys of its
//     context, so that requests no statement tells apart across classes
//     share one answer.
//   - Questions whose contexts agree on every key each one's evaluation
//     can test go to IAM in one call, with the union of their contexts:
//     a key outside what a request's statements test changes nothing of
//     its evaluation. A class's launch, instance-profile and tagging
//     requests then take one call per value of ec2:CreateAction.
//
// Should IAM still report missing a key the request carries (the SCPs
// changed since the probe), the key joins the request's references and
// the question is asked again: at most twice, then "could not check".
func (v *PolicyView) askSCPs(ctx context.Context, qs []Question, idx []int, ds []Decision, errs []error) {
	for round := 0; round < 3 && len(idx) > 0; round++ {
		refs := v.references(ctx, qs, idx, errs)
		var asked []int
		finals := make([]Question, 0, len(idx))
		exact := make([]map[string][]string, 0, len(idx))
		for _, i := range idx {
			if errs[i] != nil {
				continue
			}
			asked = append(asked, i)
			q := qs[i]
			finals = append(finals, Question{Principal: q.Principal, Action: q.Action, Resource: q.Resource, Alike: q.Alike})
			exact = append(exact, restrict(q.Context, refs[refKey(q)]))
		}
		unite(finals, exact, func(j int) map[string]bool { return refs[refKey(qs[asked[j]])] })
		PrepareKeys(finals)
		got, gotErrs := DecideAll(ctx, v.View, finals)
		var again []int
		for j, i := range asked {
			if gotErrs[j] != nil {
				ds[i], errs[i] = Decision{}, gotErrs[j]
				continue
			}
			if v.extend(qs[i], got[j].MissingContext) {
				again = append(again, i)
				continue
			}
			if !got[j].Allowed {
				d := knownAbsent(got[j], qs[i])
				d.MissingRequestTags = missingRequestTags(tagKeys(d.MissingRequestTags), qs[i])
				ds[i] = d
			} else if got[j].Stale {
				ds[i].Served = got[j].Served
			}
		}
		idx = again
	}
	for _, i := range idx {
		ds[i], errs[i] = Decision{}, &UnavailableError{Op: "SimulatePrincipalPolicy", Err: fmt.Errorf("context keys for %s kept changing", qs[i].Action)}
	}
}

// refEntry is what one probe says a request's evaluation can test.
type refEntry struct {
	keys    map[string]bool // lower-cased
	expires time.Time
}

// refKey identifies a request for its references: principal, action and
// resource.
func refKey(q Question) string {
	r := q.Resource
	if r == "" {
		r = "*"
	}
	return q.Principal + "\x00" + strings.ToLower(q.Action) + "\x00" + r
}

// references returns the keys each question of qs[idx] can be tested on,
// by refKey, probing (one batch without context, through the cache and
// the budget) those not known within the policies' TTL. A probe that
// fails fails its questions (errs).
func (v *PolicyView) references(ctx context.Context, qs []Question, idx []int, errs []error) map[string]map[string]bool {
	now := v.policies.opts.Now()
	out := make(map[string]map[string]bool, len(idx))
	var probes []Question
	var probeIdx [][]int
	at := map[string]int{}
	v.mu.RLock()
	for _, i := range idx {
		k := refKey(qs[i])
		if _, ok := out[k]; ok {
			continue
		}
		if e, ok := v.refs[k]; ok && now.Before(e.expires) {
			out[k] = e.keys
			continue
		}
		j, ok := at[k]
		if !ok {
			j = len(probes)
			at[k] = j
			q := qs[i]
			probes = append(probes, Question{Principal: q.Principal, Action: q.Action, Resource: q.Resource, Alike: q.Alike})
			probeIdx = append(probeIdx, nil)
		}
		probeIdx[j] = append(probeIdx[j], i)
	}
	v.mu.RUnlock()
	if len(probes) == 0 {
		return out
	}
	got, gotErrs := v.probe(ctx, probes)
	v.mu.Lock()
	defer v.mu.Unlock()
	for j, p := range probes {
		if gotErrs[j] != nil {
			for _, i := range probeIdx[j] {
				errs[i] = gotErrs[j]
			}
			continue
		}
		keys := make(map[string]bool, len(got[j].MissingContext))
		for _, k := range got[j].MissingContext {
			keys[strings.ToLower(k)] = true
		}
		k := refKey(p)
		out[k] = keys
		// What the role's statements about it do not test, an SCP (or
		// RCP) does.
		if rp, _, err := v.Policies(ctx, p.Principal); err == nil {
			own := rp.Set.keysFor(p.Action, p.Resource)
			for key := range keys {
				if !own[key] {
					v.learned[key] = true
				}
			}
		}
		if !got[j].Stale {
			v.boundRefs(now)
			v.refs[k] = refEntry{keys: keys, expires: now.Add(v.policies.opts.TTL)}
		}
	}
	return out
}

// maxRefs bounds PolicyView.refs: a request's references are one entry
// per action and resource, and every class has its own instance-profile
// ARN, so a flood of classes must not grow them without end.
const maxRefs = 8192

// boundRefs makes room for one more entry in v.refs (v.mu held): the
// expired ones go first, and if none has expired, all (they are probed
// again as needed).
func (v *PolicyView) boundRefs(now time.Time) {
	if len(v.refs) < maxRefs {
		return
	}
	for k, e := range v.refs {
		if !now.Before(e.expires) {
			delete(v.refs, k)
		}
	}
	if len(v.refs) >= maxRefs {
		clear(v.refs)
	}
}

// extend adds to q's references the keys of missing that q's context
// carries (IAM tests them, yet the probe did not say so: the SCPs
// changed since), and reports whether there was one: q is then asked
// again. The probe's own answer may still be cached, so the keys are
// added rather than probed again.
func (v *PolicyView) extend(q Question, missing []string) bool {
	var found []string
	for _, m := range missing {
		if len(lookupContext(q.Context, m)) > 0 {
			found = append(found, strings.ToLower(m))
		}
	}
	if len(found) == 0 {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k := refKey(q)
	e, ok := v.refs[k]
	if !ok {
		// The probe's answer was a stale one, kept for no one: the next
		// round probes again.
		return true
	}
	keys := make(map[string]bool, len(e.keys)+len(found))
	maps.Copy(keys, e.keys)
	for _, f := range found {
		keys[f] = true
		v.learned[f] = true
	}
	v.refs[k] = refEntry{keys: keys, expires: e.expires}
	return true
}

// restrict returns the entries of ctx whose keys are in keys, nil when
// none is.
func restrict(ctx map[string][]string, keys map[string]bool) map[string][]string {
	var out map[string][]string
	for k, vals := range ctx {
		if keys[strings.ToLower(k)] {
			if out == nil {
				out = make(map[string][]string, len(keys))
			}
			out[k] = vals
		}
	}
	return out
}

// unite gives the questions qs (of one principal or several) contexts
// such that questions of one context may go to IAM in one call: each
// question's exact context (exact[j], the keys refs(j) its evaluation can
// test), united with those of the others of its group. A question joins
// the first group with which every member still sees its exact context
// on the keys its own evaluation can test; questions with nothing to
// test keep no context.
func unite(qs []Question, exact []map[string][]string, refs func(int) map[string]bool) {
	type group struct {
		principal string
		ctx       map[string][]string // lower-cased keys
		members   []int
	}
	var groups []*group
	fits := func(g *group, j int) bool {
		if g.principal != qs[j].Principal {
			return false
		}
		// The question sees its own values on the keys the group has...
		for k := range refs(j) {
			if gv, inGroup := g.ctx[k]; inGroup && !slices.Equal(gv, lookupContext(exact[j], k)) {
				return false
			}
		}
		// ...and the members see nothing new on theirs.
		for k, qv := range exact[j] {
			lk := strings.ToLower(k)
			if gv, ok := g.ctx[lk]; ok {
				if !slices.Equal(gv, qv) {
					return false
				}
				continue
			}
			for _, m := range g.members {
				if refs(m)[lk] {
					return false
				}
			}
		}
		return true
	}
	for j := range qs {
		if len(exact[j]) == 0 {
			continue
		}
		var into *group
		for _, g := range groups {
			if fits(g, j) {
				into = g
				break
			}
		}
		if into == nil {
			into = &group{principal: qs[j].Principal, ctx: map[string][]string{}}
			groups = append(groups, into)
		}
		for k, vals := range exact[j] {
			into.ctx[strings.ToLower(k)] = vals
		}
		into.members = append(into.members, j)
	}
	for _, g := range groups {
		ctx := make(map[string][]string, len(g.ctx))
		for _, m := range g.members {
			for k, vals := range exact[m] {
				ctx[k] = vals
			}
		}
		for _, m := range g.members {
			qs[m].Context = ctx
		}
	}
}

// LearnedKeys returns the context keys learned from IAM's answers, sorted.
func (v *PolicyView) LearnedKeys() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]string, 0, len(v.learned))
	for k := range v.learned {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestsConditionKey reports whether a policy of principal (as last read)
// tests the condition key key; ok is false when the policies could not be
// read, and nobody can tell.
func (v *PolicyView) TestsConditionKey(ctx context.Context, principal, key string) (tests, ok bool) {
	rp, _, err := v.Policies(ctx, principal)
	if err != nil || rp.Unreadable != "" || rp.Keys == nil {
		return false, false
	}
	return rp.Keys[strings.ToLower(key)], true
}

// tagKeys returns aws:RequestTag/X for each tag X.
func tagKeys(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = "aws:RequestTag/" + t
	}
	return out
}

// keysFor returns, lower-cased, the condition keys of the statements of
// set (identity policies and boundary) that match action on resource.
func (set PolicySet) keysFor(action, resource string) map[string]bool {
	if resource == "" {
		resource = "*"
	}
	keys := map[string]bool{}
	add := func(np NamedPolicy) {
		if np.Policy == nil {
			return
		}
		for i := range np.Policy.Statements {
			s := &np.Policy.Statements[i]
			if len(s.conditions) == 0 || !s.matchesAction(action) || !s.matchesResource(resource) {
				continue
			}
			for j := range s.conditions {
				keys[strings.ToLower(s.conditions[j].key)] = true
			}
		}
	}
	for _, np := range set.Identity {
		add(np)
	}
	if set.Boundary != nil {
		add(*set.Boundary)
	}
	return keys
}

// probeRequest is one caller's probes, answered index for index.
type probeRequest struct {
	qs   []Question
	ds   []Decision
	errs []error
	done chan struct{}
}

// probe answers probes (questions without context). Probes have no
// context, so any number of them, whatever the class, can go to IAM in
// one call: while one call is in flight, the probes of every other
// caller wait and then go together in the next one. A burst of new
// classes, each with its own instance-profile ARN to probe, then costs a
// few probe calls, not one per class. The calls are bounded by the
// cache's Timeout, not by one caller's context; a caller whose context
// ends first gets "could not check".
func (v *PolicyView) probe(ctx context.Context, qs []Question) ([]Decision, []error) {
	r := &probeRequest{qs: qs, done: make(chan struct{})}
	v.probeMu.Lock()
	v.waiting = append(v.waiting, r)
	lead := !v.probing
	v.probing = true
	v.probeMu.Unlock()
	if lead {
		go v.runProbes(context.WithoutCancel(ctx))
	}
	select {
	case <-r.done:
		return r.ds, r.errs
	case <-ctx.Done():
		// The caller's deadline ended first: the cache answers at once,
		// with an expired answer marked stale where it holds one (the
		// cache's contract), "could not check" otherwise.
		return DecideAll(ctx, v.View, qs)
	}
}

// runProbes sends the waiting probes, all of them in one DecideAll, until
// none waits.
func (v *PolicyView) runProbes(base context.Context) {
	for {
		v.probeMu.Lock()
		batch := v.waiting
		v.waiting = nil
		if len(batch) == 0 {
			v.probing = false
			v.probeMu.Unlock()
			return
		}
		v.probeMu.Unlock()
		var all []Question
		at := map[string]int{}
		for _, r := range batch {
			for _, q := range r.qs {
				k := refKey(q)
				if _, ok := at[k]; !ok {
					at[k] = len(all)
					all = append(all, q)
				}
			}
		}
		ctx, cancel := context.WithTimeout(base, v.policies.opts.Timeout)
		ds, errs := DecideAll(ctx, v.View, all)
		cancel()
		for _, r := range batch {
			r.ds, r.errs = make([]Decision, len(r.qs)), make([]error, len(r.qs))
			for i, q := range r.qs {
				j := at[refKey(q)]
				r.ds[i], r.errs[i] = ds[j], errs[j]
			}
			close(r.done)
		}
	}
}
