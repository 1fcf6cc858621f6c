// Package authz answers the IAM questions nodeclass-guard's rules ask: does
// a role or instance profile exist, what does a role trust, and may the
// Karpenter controller's role perform an action on a resource.
//
// The rules depend only on View. Implementations: Snapshot (an
// `aws iam get-account-authorization-details` file and a local policy
// evaluator), Live (the IAM API through aws-sdk-go-v2) and Cached (a bounded,
// TTL'd, coalescing cache in front of either). authz knows nothing of
// Kubernetes.
package authz

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// View is the narrow interface the rules ask IAM questions through.
//
// Errors: a missing role or profile is a *NotFoundError (errors.Is(err,
// ErrNotFound)); IAM that could not be asked in time (throttling, timeouts,
// 5xx, credentials) is an *UnavailableError. The two are different answers:
// the first is the user's mistake, the second is nobody's verdict.
type View interface {
	// Role returns the role with that name (no path).
	Role(ctx context.Context, name string) (Role, error)
	// InstanceProfile returns the instance profile with that name (no path).
	InstanceProfile(ctx context.Context, name string) (InstanceProfile, error)
	// Decide answers whether q.Principal may perform q.Action on q.Resource
	// with the request context q.Context.
	Decide(ctx context.Context, q Question) (Decision, error)
}

// Served says how an answer was served. The zero value is a fresh answer.
type Served struct {
	// Stale is set when the answer came from a cache entry past its TTL,
	// served because IAM could not be reached.
	Stale bool `json:"-"`
	// Age is how old a stale answer is.
	Age time.Duration `json:"-"`
}

// Role is an IAM role as the rules need it.
type Role struct {
	Name string
	// Path is the role's IAM path, "/" or "/team/" (leading and trailing slash).
	Path string
	ARN  string
	// Trust is the role's parsed trust (assume-role) policy; nil when the
	// role has none.
	Trust *Policy
	Served
}

// InstanceProfile is an IAM instance profile as the rules need it.
type InstanceProfile struct {
	Name  string
	Path  string
	ARN   string
	Roles []Role
	Served
}

// Question is one permission question: may Principal perform Action on
// Resource, with these context keys. It is the unit of caching: two
// questions with the same Key get the same answer.
type Question struct {
	// Principal is the full ARN of the IAM role whose permissions are asked
	// about (path included).
	Principal string
	Action    string
	Resource  string
	// Context holds condition keys and their values, for example
	// "iam:PassedToService": {"ec2.amazonaws.com"}. A key with one value is
	// a string; a key with several (or aws:TagKeys) is a list.
	Context map[string][]string
	// Complete lists the condition key families the question states in
	// full: a key ("aws:RequestedRegion") or a prefix ending in '/'
	// ("aws:RequestTag/"), compared case-insensitively. A condition on a
	// key of those families that Context lacks tests a key known to be
	// absent from the request: it is evaluated as absent and is not
	// reported in Decision.MissingContext, which is left for keys nobody
	// here can know (aws:SourceIp, other principals' tags, ...).
	Complete []string
	// Alike, when set, is the resource the cache files the answer under
	// instead of Resource: the same request about another object that no
	// policy written in practice tells apart (Karpenter's instance-profile
	// ARN with the class's UID replaced by a placeholder; a policy cannot
	// name a UID before the class exists). Re-creating the same manifest
	// (a dry-run, a GitOps re-apply: a new UID each time) then reuses the
	// answer, and an IAM outage serves it, instead of asking again. IAM is
	// always asked about Resource.
	Alike string
	// ctxKey is Context and Complete as Key writes them, filled in by
	// PrepareKeys; "" means not prepared.
	ctxKey string
}

// PrepareKeys fills in, for every question of qs, what Key, CacheKey and
// BatchKey write of its Context and Complete, writing it once per distinct
// Context map and Complete slice: Karpenter's requests share a handful of
// contexts among dozens of questions, and the keys are built on every
// cache lookup. The questions' Context and Complete must not change
// afterwards.
func PrepareKeys(qs []Question) {
	// Within one call the questions' maps and slices do not change, so
	// their addresses name their contents.
	type id struct {
		ctx      uintptr
		complete *string
		n        int
	}
	var memo map[id]string
	for i := range qs {
		q := &qs[i]
		if q.ctxKey != "" {
			continue
		}
		k := id{ctx: reflect.ValueOf(q.Context).Pointer(), n: len(q.Complete)}
		if len(q.Complete) > 0 {
			k.complete = &q.Complete[0]
		}
		if s, ok := memo[k]; ok {
			q.ctxKey = s
			continue
		}
		q.ctxKey = contextKey(q.Context, q.Complete)
		if memo == nil {
			memo = map[id]string{}
		}
		memo[k] = q.ctxKey
	}
}

// contextKey writes ctx and complete as Key and BatchKey identify them.
// It is never "": a question without context still writes its marker.
func contextKey(ctx map[string][]string, complete []string) string {
	keys := make([]string, 0, len(ctx))
	n := 1
	for k, vs := range ctx {
		keys = append(keys, k)
		n += len(k) + 2
		for _, v := range vs {
			n += len(v) + 1
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n)
	writeContext(&b, keys, ctx)
	writeComplete(&b, complete)
	b.WriteByte('\x03')
	return b.String()
}

// CacheKey is Key with Resource replaced by Alike when set: what the
// cache files the answer under.
func (q Question) CacheKey() string {
	if q.Alike == "" {
		return q.Key()
	}
	q.Resource = q.Alike
	return q.Key()
}

// KnowsAbsent reports whether key, absent from q.Context, is known to be
// absent from the request (it belongs to a family of q.Complete).
func (q Question) KnowsAbsent(key string) bool {
	return completeCovers(q.Complete, key)
}

func completeCovers(complete []string, key string) bool {
	for _, f := range complete {
		if strings.HasSuffix(f, "/") {
			if len(key) > len(f) && strings.EqualFold(key[:len(f)], f) {
				return true
			}
		} else if strings.EqualFold(key, f) {
			return true
		}
	}
	return false
}

// writeComplete writes q.Complete, sorted, for Key and BatchKey: two
// questions that differ only in what is known absent are different
// questions.
func writeComplete(b *strings.Builder, complete []string) {
	if len(complete) == 0 {
		return
	}
	sorted := slices.Clone(complete)
	slices.Sort(sorted)
	b.WriteString("\x00\x02")
	for i, f := range sorted {
		if i > 0 {
			b.WriteByte('\x01')
		}
		writeLower(b, f)
	}
}

// Key returns a deterministic string identifying the question. It is
// built on every cache lookup: in one allocation when PrepareKeys has
// written the context part.
func (q Question) Key() string {
	ctx := q.ctxKey
	if ctx == "" {
		ctx = contextKey(q.Context, q.Complete)
	}
	var b strings.Builder
	b.Grow(len(q.Principal) + len(q.Action) + len(q.Resource) + 2 + len(ctx))
	b.WriteString(q.Principal)
	b.WriteByte('\x00')
	b.WriteString(q.Action)
	b.WriteByte('\x00')
	b.WriteString(q.Resource)
	b.WriteString(ctx)
	return b.String()
}

// BatchKey returns what must be equal for questions to go to IAM in one
// SimulatePrincipalPolicy call: the principal, whether a resource is named,
// and every context entry. Actions and resources may differ.
func (q Question) BatchKey() string {
	ctx := q.ctxKey
	if ctx == "" {
		ctx = contextKey(q.Context, q.Complete)
	}
	named := "\x00-"
	if q.Resource != "" {
		named = "\x00+"
	}
	return q.Principal + named + ctx
}

// writeContext writes the context entries of keys (sorted) as Key and
// BatchKey identify them: names case-insensitively, values as they are.
func writeContext(b *strings.Builder, keys []string, ctx map[string][]string) {
	for _, k := range keys {
		b.WriteByte('\x00')
		writeLower(b, k)
		b.WriteByte('=')
		for i, v := range ctx[k] {
			if i > 0 {
				b.WriteByte('\x01')
			}
			b.WriteString(v)
		}
	}
}

// writeLower writes strings.ToLower(s) without allocating for ASCII s.
func writeLower(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			b.WriteString(strings.ToLower(s))
			return
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// IsListKey reports whether a context entry goes to IAM as a list
// (stringList): a multivalued key (aws:TagKeys...), even with one value,
// or any key given several values.
func IsListKey(key string, values []string) bool {
	return len(values) != 1 || IsMultivaluedKey(key)
}

// Decision is the answer to a Question.
type Decision struct {
	Allowed bool
	// Explicit is set when a Deny statement (identity policy, permissions
	// boundary or SCP) matched; otherwise a denial is implicit.
	Explicit bool
	// DeniedBy names what denied the request, where known.
	DeniedBy Denier
	// AllowedButForDeny is set, on an explicit denial, when the identity
	// policies and the boundary would allow the request were it not for
	// the Deny: narrowing the Deny is then enough. Only the snapshot
	// evaluator knows.
	AllowedButForDeny bool
	// AlsoDeniedByBoundary names the permissions boundary when, on an
	// implicit denial by the identity policies, the boundary does not
	// allow the request either: allowing it takes a statement in both.
	// Only the snapshot evaluator knows; the live answer reports the
	// boundary in DeniedBy.
	AlsoDeniedByBoundary string
	// NearMisses lists resource patterns of Allow statements that matched
	// the action but not the resource, or whose conditions did not hold, so
	// that a message can say what the policy does cover.
	NearMisses []string
	// FailedConditions lists, for an implicit deny, the conditions
	// ("StringEquals iam:PassedToService ec2.amazonaws.com.cn") of Allow
	// statements that matched the action and the resource but whose
	// conditions did not hold.
	FailedConditions []string
	// Unsupported lists condition operators the evaluator does not know;
	// statements using them were treated as not matching.
	Unsupported []string
	// MissingContext lists condition keys a policy tested that the request
	// did not supply (IAM's MissingContextValues), except those the
	// question knows to be absent (Question.Complete).
	MissingContext []string
	// MissingRequestTags lists, on a denial by a service control policy,
	// the tags (the X of aws:RequestTag/X) a policy tested that the
	// request does not carry, the question's Complete families included:
	// the tags whose absence can be why the SCP denies, for the message
	// to name.
	MissingRequestTags []string
	// NeedsSetOperator lists conditions ("StringEquals aws:TagKeys") that
	// test a multivalued key without ForAnyValue: or ForAllValues:. IAM is
	// reported not to match such a condition whatever the values, so the
	// local evaluator counts it as not holding; the policy should use a
	// set operator. Only the snapshot evaluator knows.
	NeedsSetOperator []string
	Served
}

// DenySource says which layer of IAM's evaluation denied a request.
type DenySource string

// DenySource values.
const (
	DeniedByIdentity DenySource = "identity policy"
	DeniedByBoundary DenySource = "permissions boundary"
	DeniedBySCP      DenySource = "service control policy"
	DeniedByRCP      DenySource = "resource control policy"
)

// SCPOfYourOrganization is how every message names a service control
// policy as the cause of a denial, live and offline alike.
const SCPOfYourOrganization = "a service control policy of your organization"

// Denier names the policy and statement that denied a request.
type Denier struct {
	Source    DenySource
	Policy    string // policy name or ARN, "" when unknown
	Statement string // statement Sid, or "#<index>" when it has none
}

// Reason explains a denial in one clause, for a message such as
// "role X may not iam:PassRole Y: <Reason>".
func (d Decision) Reason() string {
	if d.Allowed {
		return "allowed"
	}
	var b strings.Builder
	switch {
	case d.DeniedBy.Source == DeniedBySCP:
		// Live, IAM says only that Organizations denied; offline the
		// evaluator knows which SCP and statement.
		if d.Explicit {
			b.WriteString("explicitly denied by " + SCPOfYourOrganization)
		} else {
			b.WriteString("implicitly denied by " + SCPOfYourOrganization + ", which allows no such request")
		}
		switch {
		case d.DeniedBy.Policy != "" && d.DeniedBy.Statement != "":
			fmt.Fprintf(&b, " (SCP %q, statement %q)", d.DeniedBy.Policy, d.DeniedBy.Statement)
		case d.DeniedBy.Policy != "":
			fmt.Fprintf(&b, " (SCP %q)", d.DeniedBy.Policy)
		}
	case d.Explicit:
		b.WriteString("explicitly denied")
		if d.DeniedBy.Source != "" {
			b.WriteString(" by ")
			b.WriteString(string(d.DeniedBy.Source))
		}
		if d.DeniedBy.Policy != "" {
			fmt.Fprintf(&b, " %q", d.DeniedBy.Policy)
		}
		if d.DeniedBy.Statement != "" {
			fmt.Fprintf(&b, " statement %q", d.DeniedBy.Statement)
		}
	case d.DeniedBy.Source == DeniedByBoundary:
		b.WriteString("implicitly denied: the permissions boundary")
		if d.DeniedBy.Policy != "" {
			fmt.Fprintf(&b, " %q", d.DeniedBy.Policy)
		}
		b.WriteString(" does not allow it")
	default:
		b.WriteString("no statement allows it")
		if len(d.FailedConditions) > 0 {
			b.WriteString(" (a statement covers that resource, but its condition ")
			b.WriteString(strings.Join(d.FailedConditions, "; "))
			b.WriteString(" does not hold)")
		} else if len(d.NearMisses) > 0 {
			b.WriteString(" (policy statements match ")
			b.WriteString(strings.Join(d.NearMisses, ", "))
			b.WriteString(" only)")
		}
	}
	if len(d.NeedsSetOperator) > 0 {
		fmt.Fprintf(&b, "; %s tests a multivalued key without ForAnyValue: or ForAllValues:, which IAM does not match: write it with a set operator (ForAllValues: to limit the tag keys a request may carry)", strings.Join(d.NeedsSetOperator, ", "))
	}
	if len(d.Unsupported) > 0 {
		fmt.Fprintf(&b, "; statements using unsupported condition operators %s were not counted", strings.Join(d.Unsupported, ", "))
	}
	return b.String()
}

// ErrNotFound matches every *NotFoundError.
var ErrNotFound = errors.New("not found")

// NotFoundError says that IAM has no entity of that kind and name
// (IAM's NoSuchEntity).
type NotFoundError struct {
	Kind string // "role" or "instance profile"
	Name string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.Name) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// UnavailableError says that IAM could not be asked: throttling, timeouts,
// server errors, missing credentials. No verdict can be drawn from it.
type UnavailableError struct {
	// Service is the AWS service asked, "" meaning IAM.
	Service string
	Op      string // the API, for example "GetRole"
	Err     error
}

func (e *UnavailableError) Error() string {
	svc := e.Service
	if svc == "" {
		svc = "IAM"
	}
	return fmt.Sprintf("%s %s unavailable: %v", svc, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err means IAM could not be asked.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// Summary says in a few words why IAM could not be asked, for a one-line
// message: the API's error code and message where IAM answered ("Throttling:
// Rate exceeded"), the HTTP status where only that is known, or "timed out",
// without the SDK's retry and request details.
func (e *UnavailableError) Summary() string {
	err := e.Err
	if err == nil {
		return "unknown error"
	}
	var api interface {
		ErrorCode() string
		ErrorMessage() string
	}
	if errors.As(err, &api) && api.ErrorCode() != "" {
		if msg := api.ErrorMessage(); msg != "" {
			return api.ErrorCode() + ": " + msg
		}
		return api.ErrorCode()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timed out"
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() != 0 {
		return fmt.Sprintf("HTTP %d", status.HTTPStatusCode())
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return "timed out"
	}
	return err.Error()
}
