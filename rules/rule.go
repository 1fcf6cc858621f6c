package rules

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// A rule is a declared value (Rule): its name and codes, the fields it
// reads, the facts it waits for and the facts it gives, a plan (the object
// and the facts so far to named questions) and a judge (the named answers
// to findings). Rules never ask AWS, never set a deadline and never order
// themselves: the runner (runner.go) does, from what they declare. A new
// rule is one file holding its value and one line in the registry
// (registry.go).

// fact names something a rule learns that other rules plan or judge with.
// A fact is given once every rule declaring it has judged, whatever it
// found: a rule needing the node role runs after the rules that look it
// up, and reads on the object whether they found one.
type fact uint8

const (
	// factNodeRole: the node role (subject.nodeRole), from spec.role's
	// GetRole or the role inside spec.instanceProfile.
	factNodeRole fact = iota + 1
	// factProfile: spec.instanceProfile's GetInstanceProfile answer
	// (subject.profile).
	factProfile
	// factCluster: the cluster's DescribeCluster answer (subject.cluster).
	factCluster
	// factLaunchKeys: what the NodePool and the class give the launch's
	// condition keys (subject.cl.launch).
	factLaunchKeys
	// factTerms, factOldTerms: the first round of the selector terms (of
	// the object, and of an update's old object): each term's EC2 answers,
	// and the SSM parameters behind image terms (subject.sides).
	factTerms
	factOldTerms
	// factResolution, factBefore: what the selector terms resolve to
	// (subject.sides[sideNew].res, [sideOld].res).
	factResolution
	factBefore
	// factPools: the NodePools using the class (subject.pools).
	factPools
	// factClaims: the NodeClaims of the class (subject.claims).
	factClaims
	// factKMSKeys: the KMS keys of the volumes (subject.kms).
	factKMSKeys
	// factClass: the class a NodePool names (subject.pool).
	factClass
	numFacts
)

// Rule is one rule, declared.
type Rule struct {
	// Name names the rule in the registry and in tests.
	Name string
	// Codes are the reason codes its judge may give.
	Codes []Code
	// Fields are the object fields it reads, as paths from the object's
	// root (Reads holds their union per kind).
	Fields []string
	// Needs are the facts it plans or judges with; Gives, the facts its
	// judge sets on the object.
	Needs, Gives []fact
	// Plan adds the rule's questions for the object, each under a name;
	// nil asks nothing.
	Plan func(c *Checker, o *subject, q *Questions)
	// Judge reads the answers by the names Plan gave them and adds the
	// rule's findings to v (its own; the runner orders the rules' findings
	// as the registry lists the rules).
	Judge func(c *Checker, o *subject, a Answers, v *Verdict)
	// Class, when set, is the node class object the rule judges with
	// (a NodePool's class), nil when none: the runner runs that object's
	// rules in the rule's round, before its judge, under the same
	// deadline, and puts their verdict in subject.classVerdict.
	Class func(c *Checker, o *subject) *subject
	// Finish, when set, adds findings once every rule has judged (what the
	// answers said about AWS itself, reported once).
	Finish func(c *Checker, o *subject, v *Verdict)
	// Late: the rule asks only permission questions, answered from the
	// policies read at start, and gives no fact; it runs in the last round,
	// with every other late rule, so that their questions go to IAM
	// together (in an organization, the SCPs are asked of IAM, and
	// questions asked together share calls).
	Late bool
	// Demotable: on an update that changed spec.tags alone (subject.demote)
	// the rule's denials come back as warnings: such an update never
	// starts refusing the node identity the class already had.
	Demotable bool
}

// Questions are a rule's plan: queries under names.
type Questions struct {
	names []string
	ends  []int
	qs    []Query
	plan  any
}

// query asks qs under name.
func (q *Questions) query(name string, qs ...Query) {
	q.names = append(q.names, name)
	q.qs = append(q.qs, qs...)
	q.ends = append(q.ends, len(q.qs))
}

// permissions asks the permission questions ps under name.
func (q *Questions) permissions(name string, ps []authz.Question) {
	q.names = append(q.names, name)
	q.qs = appendPermissions(q.qs, ps)
	q.ends = append(q.ends, len(q.qs))
}

func (q *Questions) reset() {
	q.names, q.ends, q.qs, q.plan = q.names[:0], q.ends[:0], q.qs[:0], nil
}

// span is where name's queries are in q.qs; ok is false when the plan did
// not ask name.
func (q *Questions) span(name string) (from, to int, ok bool) {
	start := 0
	for i, n := range q.names {
		if n == name {
			return start, q.ends[i], true
		}
		start = q.ends[i]
	}
	return 0, 0, false
}

// Answers are the answers to a rule's Questions, by name.
type Answers struct {
	q  *Questions
	as []Answer
}

// all are the answers to the queries asked under name; nil when none.
func (a Answers) all(name string) []Answer {
	from, to, ok := a.q.span(name)
	if !ok {
		return nil
	}
	return a.as[from:to]
}

// one is the answer to the one query asked under name; ok is false when
// the plan did not ask it.
func (a Answers) one(name string) (Answer, bool) {
	from, to, ok := a.q.span(name)
	if !ok || to == from {
		return Answer{}, false
	}
	return a.as[from], true
}

// questions are the permission questions asked under name.
func (a Answers) questions(name string) []authz.Question {
	from, to, ok := a.q.span(name)
	if !ok {
		return nil
	}
	out := make([]authz.Question, 0, to-from)
	for _, q := range a.q.qs[from:to] {
		out = append(out, q.Permission)
	}
	return out
}

// keep holds the plan's own state (a launch plan, a join plan) for the
// judge, which reads it back with Answers.kept.
func (q *Questions) keep(v any) { q.plan = v }

// kept is what the plan kept; nil when nothing.
func (a Answers) kept() any { return a.q.plan }

// subject is what the rules of one object read and learn: the object,
// which of its rules run, and the facts the rules give.
type subject struct {
	cl class
	// ec2 is the EC2NodeClass judged, eks the EKS Auto Mode NodeClass
	// (one of them); np the NodePool the class is judged for, old an
	// update's old class (the update guard runs when set).
	ec2 *EC2NodeClass
	eks *NodeClass
	np  *NodePool
	old *EC2NodeClass

	// identity runs the node identity rules (spec.role and
	// spec.instanceProfile, format first); demote turns their denials
	// into warnings (an update that changed spec.tags alone); node runs
	// the rules of what the node is given; selectors judges the selector
	// terms.
	identity, demote, node, selectors bool

	// ref is spec.role as the format rules read it (roleOK), profileName
	// spec.instanceProfile's (profileOK); iam: the identity's IAM rules
	// run (an IAM source, and one well-formed field of the two).
	ref         RoleRef
	roleOK      bool
	profileName string
	profileOK   bool
	iam         bool
	// perms: the controller's permissions are checked.
	perms bool
	// n notes what the identity rules' answers said about AWS itself,
	// reported once; sn the selector rules'.
	n, sn notes

	// realRoleARN is the role's ARN when IAM gave it another path than
	// spec.role did.
	realRoleARN string

	// factNodeRole: the node role, when found, and the field naming it.
	nodeRole      authz.Role
	nodeRoleFound bool
	path          *field.Path
	// factProfile: GetInstanceProfile's answer; profileFound when it
	// exists.
	profile      Answer
	profileFound bool
	// factCluster: DescribeCluster's answer; clusterAsked when there was
	// an EKS view to ask.
	cluster      Answer
	clusterAsked bool
	// factTerms, factResolution (sideNew) and the old object's
	// (sideOld).
	sides [2]selectorSide
	// factPools and factClaims: what the cluster has (poolsErr, claimsErr:
	// why it could not be listed).
	pools     []NodePool
	poolsErr  error
	claims    []NodeClaim
	claimsErr error
	// stale is the oldest answer past its TTL the rules used (staleRule).
	stale authz.Served
	// factKMSKeys: the volumes' keys and KMS's answers.
	kms []kmsKey
	// changed are the selector lists an update changed.
	changed []selectorList
	// reqsOnly marks a NodePool update that changed its requirements
	// alone.
	reqsOnly bool
	// pastBounds: the object is past the input bounds, and its rules
	// did not run.
	pastBounds bool
	// poolClass and classVerdict are a NodePool's class, as a Rule.Class
	// made it, and its verdict.
	poolClass    *subject
	classVerdict Verdict
	// spot: a NodePool allowing spot is judged (spotRule); spotAuto when
	// its class is an EKS Auto Mode NodeClass, whose cluster role
	// launches.
	spot, spotAuto bool
	// pool is the class a NodePool names, as the cluster has it.
	pool Answer
}

// kmsKey is one distinct KMS key the volumes name, in the cluster's
// region by its ARN, and KMS's answer about it.
type kmsKey struct {
	id    string
	path  *field.Path
	ans   Answer
	asked bool
}
