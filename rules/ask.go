package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The rules run in three steps: plan functions turn an object into the
// Queries it needs, one asker (Checker.ask) puts them to AWS, and judge
// functions turn the Answers into findings. Only the asker does I/O.

// QueryKind says which service answers a Query and which of its fields
// hold the question and the answer. Another service's question (as EKS's
// cluster and access entries, join.go; an EC2 selector next) is a new
// kind, its fields, and a case in Checker.lookup; the plans and judges of
// the rules that need it are its own.
type QueryKind uint8

// QueryKind values.
const (
	// QueryRole is IAM's GetRole of Name; the answer is Answer.Role.
	QueryRole QueryKind = iota + 1
	// QueryInstanceProfile is IAM's GetInstanceProfile of Name; the answer
	// is Answer.Profile.
	QueryInstanceProfile
	// QueryPermission is IAM's SimulatePrincipalPolicy of Permission; the
	// answer is Answer.Decision. Permission queries with the same
	// authz.Question.BatchKey are asked in one call.
	QueryPermission
	// QueryCluster is EKS's DescribeCluster of Name; the answer is
	// Answer.Cluster.
	QueryCluster
	// QueryAccessEntry is EKS's DescribeAccessEntry (with the entry's
	// associated access policies) of the principal ARN Name in the
	// cluster of Config.ClusterName; the answer is Answer.Entry.
	QueryAccessEntry
	// QueryAWSAuth reads the cluster's aws-auth ConfigMap; the answer is
	// Answer.AWSAuth.
	QueryAWSAuth
	// QueryEC2 is one EC2 Describe call, Query.EC2 (one selector term, or
	// the images behind SSM parameters); the answer is Answer.EC2.
	QueryEC2
	// QueryParameter is SSM's GetParameter of Name; the answer is
	// Answer.Parameter.
	QueryParameter
	// QueryKMSKey is KMS's DescribeKey (with the key policy and grants)
	// of the key ID, ARN or alias Name; the answer is Answer.Key.
	QueryKMSKey
	// QueryPolicyTests asks the view of the controller's policies whether
	// one of them tests the condition key Name; the answer is
	// Answer.Tests (false when the view cannot tell).
	QueryPolicyTests
	// QueryNodePools lists the NodePools naming the class Name (the
	// manager's cache); the answer is Answer.NodePools.
	QueryNodePools
	// QueryNodeClaims lists the NodeClaims of the class Name; the answer
	// is Answer.NodeClaims.
	QueryNodeClaims
	// QueryEC2NodeClass and QueryNodeClass read the class Name a NodePool
	// names; the answer is Answer.EC2NodeClass or Answer.NodeClass, Err a
	// *authz.NotFoundError when the cluster has none.
	QueryEC2NodeClass
	QueryNodeClass
)

// Query is one thing a rule needs to know from AWS.
type Query struct {
	Kind       QueryKind
	Name       string
	Permission authz.Question
	EC2        authz.EC2Query
}

// Answer is AWS's answer to a Query. Err is a *authz.NotFoundError when the
// entity does not exist, an *authz.UnavailableError when AWS could not be
// asked; the two are different answers.
type Answer struct {
	Role      authz.Role
	Profile   authz.InstanceProfile
	Decision  authz.Decision
	Cluster   authz.Cluster
	Entry     authz.AccessEntry
	AWSAuth   AWSAuth
	EC2       authz.EC2Resources
	Parameter authz.Parameter
	Key       authz.KMSKey
	Tests     bool
	// The Kubernetes reads' answers.
	NodePools    []NodePool
	NodeClaims   []NodeClaim
	EC2NodeClass *EC2NodeClass
	NodeClass    *NodeClass
	Err          error
	// op names the EC2 or SSM API asked, for messages.
	op string
}

func roleQuery(name string) Query { return Query{Kind: QueryRole, Name: name} }

func profileQuery(name string) Query { return Query{Kind: QueryInstanceProfile, Name: name} }

// appendPermissions appends a permission query for each of ps.
func appendPermissions(qs []Query, ps []authz.Question) []Query {
	for _, p := range ps {
		qs = append(qs, Query{Kind: QueryPermission, Permission: p})
	}
	return qs
}

// ask puts qs to AWS at once and returns their answers in order: each
// lookup on a goroutine of its own, and every permission query in one
// authz.DecideAll, which asks IAM one call per batch of questions sharing
// principal and context (and nothing for cached answers). ctx carries the
// admission's deadline.
func (c *Checker) ask(ctx context.Context, qs []Query) []Answer {
	answers := make([]Answer, len(qs))
	nPerm, nLookup := 0, 0
	for _, q := range qs {
		if q.Kind == QueryPermission {
			nPerm++
		} else {
			nLookup++
		}
	}
	var wg sync.WaitGroup
	for i, q := range qs {
		switch {
		case q.Kind == QueryPermission:
		case nPerm == 0 && nLookup == 1:
			c.lookup(ctx, q, &answers[i])
		default:
			wg.Go(func() { c.lookup(ctx, q, &answers[i]) })
		}
	}
	if nPerm > 0 {
		perms := make([]authz.Question, 0, nPerm)
		for _, q := range qs {
			if q.Kind == QueryPermission {
				perms = append(perms, q.Permission)
			}
		}
		authz.PrepareKeys(perms)
		ds, errs := authz.DecideAll(ctx, c.cfg.IAM, perms)
		j := 0
		for i, q := range qs {
			if q.Kind == QueryPermission {
				answers[i].Decision, answers[i].Err = ds[j], errs[j]
				j++
			}
		}
	}
	wg.Wait()
	record(ctx, answers)
	return answers
}

// lookup answers one query that is not a permission question.
func (c *Checker) lookup(ctx context.Context, q Query, a *Answer) {
	switch q.Kind {
	case QueryRole:
		a.Role, a.Err = c.cfg.IAM.Role(ctx, q.Name)
	case QueryInstanceProfile:
		a.Profile, a.Err = c.cfg.IAM.InstanceProfile(ctx, q.Name)
	case QueryCluster:
		a.Cluster, a.Err = c.cfg.EKS.Cluster(ctx, q.Name)
	case QueryAccessEntry:
		a.Entry, a.Err = c.cfg.EKS.AccessEntry(ctx, c.cfg.ClusterName, q.Name)
	case QueryAWSAuth:
		if c.cfg.AWSAuth == nil {
			a.Err = errNoAWSAuth
			return
		}
		a.AWSAuth, a.Err = c.cfg.AWSAuth.AWSAuth(ctx)
	case QueryEC2:
		a.op = string(q.EC2.Resource)
		if c.cfg.EC2 == nil {
			a.Err = errNoEC2
			return
		}
		a.EC2, a.Err = c.cfg.EC2.Describe(ctx, q.EC2)
	case QueryParameter:
		a.op = "GetParameter"
		if c.cfg.EC2 == nil {
			a.Err = errNoEC2
			return
		}
		a.Parameter, a.Err = c.cfg.EC2.Parameter(ctx, q.Name)
	case QueryKMSKey:
		if c.cfg.KMS == nil {
			a.Err = errNoKMS
			return
		}
		a.Key, a.Err = c.cfg.KMS.Key(ctx, q.Name)
	case QueryPolicyTests:
		if t, ok := c.cfg.IAM.(conditionKeyTester); ok && c.controllerARN != "" {
			tests, known := t.TestsConditionKey(ctx, c.controllerARN, q.Name)
			a.Tests = known && tests
		}
	case QueryNodePools:
		a.NodePools, a.Err = c.cfg.NodePools.NodePoolsUsing(ctx, q.Name)
	case QueryNodeClaims:
		a.NodeClaims, a.Err = c.cfg.NodeClaims.NodeClaimsUsing(ctx, q.Name)
	case QueryEC2NodeClass, QueryNodeClass:
		c.readClass(ctx, q, a)
	default:
		a.Err = fmt.Errorf("query kind %d has no asker", q.Kind)
	}
}

// record notes the answers as of ctx's object.
func record(ctx context.Context, as []Answer) {
	rec, _ := ctx.Value(askRecordKey{}).(*askRecord)
	if rec == nil {
		return
	}
	for _, a := range as {
		if a.uncertain() {
			rec.uncertain.Store(true)
			return
		}
	}
}

// uncertain reports whether a is not a fresh answer: unavailable, stale,
// or an error other than "not found".
func (a Answer) uncertain() bool {
	if a.Err != nil && !errors.Is(a.Err, authz.ErrNotFound) {
		return true
	}
	return a.Role.Stale || a.Profile.Stale || a.Decision.Stale || a.Cluster.Stale || a.Entry.Stale ||
		a.EC2.Stale || a.Parameter.Stale || a.Key.Stale
}

// readClass reads the class a NodePool names; a class the cluster does
// not have is a *authz.NotFoundError, and no reader (no --kubeconfig in
// check) is one too.
func (c *Checker) readClass(ctx context.Context, q Query, a *Answer) {
	found := false
	if c.cfg.Classes != nil {
		if q.Kind == QueryEC2NodeClass {
			a.EC2NodeClass, found, a.Err = c.cfg.Classes.GetEC2NodeClass(ctx, q.Name)
		} else {
			a.NodeClass, found, a.Err = c.cfg.Classes.GetNodeClass(ctx, q.Name)
		}
	}
	if a.Err == nil && !found {
		a.Err = &authz.NotFoundError{Kind: "node class", Name: q.Name}
	}
}

// notes records, while the judges read the answers of one object, what the
// answers said about IAM itself: unavailable and stale answers, condition
// keys the request did not carry, condition operators the evaluator does
// not know. They are reported once per object, after the findings.
type notes struct {
	// skipped are the node-join checks that could not run, with why.
	skipped []string
	// selectorSkipped are the selector checks that could not run.
	selectorSkipped []string
	unavail         []unavailability
	staleAge        time.Duration
	stale           bool
	missing         map[string]bool
	unsupported     map[string]bool
	// needsSet are conditions testing a multivalued key without a set
	// operator ("StringEquals aws:TagKeys").
	needsSet map[string]bool
}

type unavailability struct {
	path *field.Path
	op   string
	err  error
}

// decision reports whether a permission answer can be judged, recording
// what it says about IAM; an unusable answer is noted as unavailable.
func (n *notes) decision(path *field.Path, a Answer) bool {
	if a.Err != nil {
		n.unavailable(path, "SimulatePrincipalPolicy", a.Err)
		return false
	}
	n.served(a.Decision.Served)
	for _, k := range a.Decision.MissingContext {
		if n.missing == nil {
			n.missing = map[string]bool{}
		}
		n.missing[k] = true
	}
	for _, op := range a.Decision.Unsupported {
		if n.unsupported == nil {
			n.unsupported = map[string]bool{}
		}
		n.unsupported[op] = true
	}
	for _, c := range a.Decision.NeedsSetOperator {
		if n.needsSet == nil {
			n.needsSet = map[string]bool{}
		}
		n.needsSet[c] = true
	}
	return true
}

func (n *notes) served(s authz.Served) {
	if !s.Stale {
		return
	}
	n.stale = true
	n.staleAge = max(n.staleAge, s.Age)
}

// skipSelector records that a selector check could not run, and why
// (once per check and reason).
func (n *notes) skipSelector(check, why string) {
	s := check + " (" + why + ")"
	if !containsString(n.selectorSkipped, s) {
		n.selectorSkipped = append(n.selectorSkipped, s)
	}
}

// skip records that a node-join check could not run, and why.
func (n *notes) skip(check, why string) {
	n.skipped = append(n.skipped, check+" ("+why+")")
}

func (n *notes) unavailable(path *field.Path, op string, err error) {
	n.unavail = append(n.unavail, unavailability{path: path, op: op, err: err})
}

// report adds the findings the notes make, but for stale answers: those
// go to stale, the object's, which staleRule reports once.
func (n *notes) report(v *Verdict, onErr OnIAMError, stale *authz.Served) {
	if n.stale && (!stale.Stale || n.staleAge > stale.Age) {
		*stale = authz.Served{Stale: true, Age: n.staleAge}
	}
	if len(n.unavail) > 0 {
		u := n.unavail[0]
		var names []string
		for _, x := range n.unavail {
			if !containsString(names, x.op) {
				names = append(names, x.op)
			}
		}
		f := Finding{Code: IAMUnavailable, Field: u.path, Deny: onErr == OnIAMErrorDeny}
		if f.Deny {
			f.Message = fmt.Sprintf("IAM could not be asked (%s: %s) and no cached answer exists, so the object cannot be verified. Retry shortly; nodeclass-guard runs with --on-iam-error=deny", strings.Join(names, ", "), errSummary(u.err))
		} else {
			// What happened first: the error's detail is what a warning's
			// 256-character limit may cut.
			f.Message = fmt.Sprintf("admitted without the IAM checks (--on-iam-error=allow): IAM could not be asked (%s: %s)", strings.Join(names, ", "), errSummary(u.err))
		}
		v.add(f)
	}
	if len(n.skipped) > 0 {
		v.add(warn(NodeJoinChecksSkipped, specPath, "not checked whether nodes can join the cluster: %s", truncate(strings.Join(n.skipped, "; "), 170)))
	}
	if len(n.selectorSkipped) > 0 {
		v.add(warn(SelectorChecksSkipped, specPath, "not checked what the selector terms match: %s", truncate(strings.Join(n.selectorSkipped, "; "), 170)))
	}
	if len(n.missing) > 0 {
		v.add(warn(PermissionContextMissing, specPath, "a policy of the controller role tests %s, which Karpenter's request may carry but this check cannot know; the answer at launch may differ", strings.Join(sortedKeys(n.missing), ", ")))
	}
	if len(n.needsSet) > 0 {
		v.add(warn(PolicySetOperatorMissing, specPath, "a controller policy tests a multivalued key with a plain operator (%s), which IAM never matches: the statement does not apply. Write it with ForAnyValue: or ForAllValues:", strings.Join(sortedKeys(n.needsSet), ", ")))
	}
	if len(n.unsupported) > 0 {
		v.add(warn(PolicyConditionUnsupported, specPath, "a controller policy statement uses condition operators %s, which the local evaluator does not support; such statements were counted as not matching", strings.Join(sortedKeys(n.unsupported), ", ")))
	}
}

// errSummary keeps an IAM error short enough for one line.
func errSummary(err error) string {
	var u *authz.UnavailableError
	if errors.As(err, &u) {
		return truncate(oneLine(u.Summary()), 120)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return truncate(oneLine(err.Error()), 120)
}

// errNoAWSAuth answers QueryAWSAuth when the Checker has no aws-auth source.
var errNoAWSAuth = errors.New("nodeclass-guard was given no aws-auth ConfigMap")

// errNoEC2 answers the EC2 kinds when the Checker has no EC2 source.
var errNoEC2 = &authz.UnavailableError{Service: "EC2", Op: "Describe", Err: errors.New("nodeclass-guard was given no EC2 source")}

// errNoKMS answers QueryKMSKey when the Checker has no KMS source.
var errNoKMS = &authz.UnavailableError{Service: "KMS", Op: "DescribeKey", Err: errors.New("nodeclass-guard was given no KMS source")}

// conditionKeyTester is what a view that reads the controller's policies
// tells of them (authz.PolicyView, authz.Snapshot).
type conditionKeyTester interface {
	TestsConditionKey(ctx context.Context, principal, key string) (tests, ok bool)
}

var (
	_ conditionKeyTester = (*authz.PolicyView)(nil)
	_ conditionKeyTester = (*authz.Snapshot)(nil)
)
