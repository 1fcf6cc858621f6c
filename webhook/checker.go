package webhook

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// OnIAMError says what to answer when IAM cannot be reached and no cached
// answer exists.
type OnIAMError string

// OnIAMError values.
const (
	OnIAMErrorAllow OnIAMError = "allow"
	OnIAMErrorDeny  OnIAMError = "deny"
)

// ParseOnIAMError parses the --on-iam-error flag.
func ParseOnIAMError(s string) (OnIAMError, error) {
	switch OnIAMError(s) {
	case OnIAMErrorAllow, OnIAMErrorDeny:
		return OnIAMError(s), nil
	}
	return "", fmt.Errorf("--on-iam-error=%q: want allow or deny", s)
}

// ClassGetter finds the node class a NodePool references. ok=false means the
// class does not exist (yet).
type ClassGetter interface {
	GetEC2NodeClass(ctx context.Context, name string) (obj *EC2NodeClass, ok bool, err error)
	GetNodeClass(ctx context.Context, name string) (obj *NodeClass, ok bool, err error)
}

// Checker holds what the rules need to know about the cluster and IAM. The
// same Checker serves the webhook and `check`; it is safe for concurrent use.
type Checker struct {
	// IAM answers the IAM questions; nil means offline: format checks only.
	IAM authz.View
	// Controller is the Karpenter controller's role; zero means unknown:
	// permission checks are skipped with a warning.
	Controller authz.RoleARN
	// ControllerARN is the controller role's full ARN (path included).
	ControllerARN string
	ClusterName   string
	Region        string
	OnIAMError    OnIAMError
	// IAMTimeout bounds all the IAM questions of one check together; 0
	// leaves only each call's own bound. Some checks ask in two rounds (the
	// instance profile, then iam:PassRole on the role inside it), so
	// without it a failing IAM would hold an admission for two call
	// timeouts. When it runs out, what is not answered yet is taken from
	// the cache (stale if need be) or reported as IAMUnavailable; the calls
	// themselves go on and fill the cache for the next request.
	IAMTimeout time.Duration
	// Classes resolves NodePool references; nil means none can be found.
	Classes ClassGetter
}

// Account returns the cluster's account, "" when unknown.
func (c *Checker) Account() string { return c.Controller.Account }

func (c *Checker) partition() string {
	if c.Controller.Partition != "" {
		return c.Controller.Partition
	}
	if strings.HasPrefix(c.Region, "cn-") {
		return "aws-cn"
	}
	if strings.HasPrefix(c.Region, "us-gov-") {
		return "aws-us-gov"
	}
	return "aws"
}

var (
	specPath            = field.NewPath("spec")
	rolePath            = specPath.Child("role")
	instanceProfilePath = specPath.Child("instanceProfile")
	nodeClassRefPath    = specPath.Child("template", "spec", "nodeClassRef")
)

// CheckEC2NodeClass validates a Karpenter EC2NodeClass: format, IAM state,
// and the controller's permissions.
func (c *Checker) CheckEC2NodeClass(ctx context.Context, nc *EC2NodeClass) Verdict {
	return c.checkClass(ctx, nc.Name, nc.Spec.Role, nc.Spec.InstanceProfile, false, nc.Name)
}

// CheckNodeClass validates an EKS Auto Mode NodeClass: format and IAM
// state; EKS, not Karpenter's controller, launches its nodes.
func (c *Checker) CheckNodeClass(ctx context.Context, nc *NodeClass) Verdict {
	return c.checkClass(ctx, nc.Name, nc.Spec.Role, nc.Spec.InstanceProfile, true, "")
}

// checkClass runs every class rule. nodePool is the NodePool name for the
// launch check's karpenter.sh/nodepool tag ("" for EKS).
func (c *Checker) checkClass(ctx context.Context, name, role, profile string, eks bool, nodePool string) Verdict {
	var v Verdict
	for _, f := range CheckExclusive(specPath, role, profile) {
		v.add(f)
	}
	var (
		ref       RoleRef
		roleOK    bool
		profName  string
		profileOK bool
	)
	if role != "" {
		var fs []Finding
		ref, fs, roleOK = CheckRoleFormat(rolePath, role, c.Account())
		for _, f := range fs {
			v.add(f)
		}
	}
	if profile != "" {
		var fs []Finding
		profName, fs, profileOK = CheckInstanceProfileFormat(instanceProfilePath, profile)
		for _, f := range fs {
			v.add(f)
		}
		if eks {
			for _, f := range CheckEKSInstanceProfilePrefix(instanceProfilePath, profile) {
				v.add(f)
			}
		}
	}
	if c.IAM == nil || (role != "" && profile != "") {
		return v
	}
	if c.IAMTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.IAMTimeout)
		defer cancel()
	}
	asked := time.Now()
	q := &questions{c: c, ctx: ctx}
	switch {
	case roleOK:
		c.checkRole(q, &v, ref, eks, name, nodePool)
	case profileOK:
		c.checkProfile(q, &v, profName, eks, name, nodePool)
	}
	q.report(&v)
	v.IAMTime = time.Since(asked)
	return v
}

// permissionsChecked reports whether the controller's permissions can be
// checked; when not, it adds the warning once.
func (c *Checker) permissionsChecked(v *Verdict, eks bool) bool {
	if eks {
		return false
	}
	if c.ControllerARN == "" {
		v.add(warn(PermissionChecksSkipped, specPath,
			"the Karpenter controller's role is unknown, so iam:PassRole and launch permissions were not checked. Start nodeclass-guard with --controller-role"))
		return false
	}
	return true
}

func (c *Checker) roleARN(ref RoleRef, path string) string {
	if path == "" {
		path = "/"
	}
	account := ref.Account
	if account == "" {
		account = c.Account()
	}
	return "arn:" + c.partition() + ":iam::" + account + ":role" + path + ref.Name
}

func (c *Checker) checkRole(q *questions, v *Verdict, ref RoleRef, eks bool, className, nodePool string) {
	perms := c.permissionsChecked(v, eks)
	// Ask everything that does not depend on the role's real path at once;
	// PassRole is asked for the path spec.role implies ("/" by default) and
	// asked again only if IAM says the path is another.
	var (
		roleAns   authz.Role
		roleErr   error
		guessARN  = c.roleARN(ref, ref.Path)
		guessPass = make(chan decided, 1)
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		roleAns, roleErr = q.role(ref.Name)
	}()
	if perms {
		go func() { guessPass <- q.decide(c.passRole(guessARN)) }()
		c.askInstanceProfileActions(q, v, className)
		c.askLaunch(q, v, className, nodePool)
	}
	wg.Wait()

	switch {
	case errors.Is(roleErr, authz.ErrNotFound):
		v.add(deny(RoleNotFound, rolePath,
			"no IAM role named %s in account %s. Create the role, or set spec.role to an existing role's name",
			ref.Name, c.accountOr(ref.Account)))
		if perms {
			<-guessPass
		}
		return
	case roleErr != nil:
		// Without the role's real ARN, a PassRole answer for the guessed
		// one could be about another ARN: report only the unavailability.
		q.unavailable(rolePath, "GetRole", roleErr)
		if perms {
			<-guessPass
		}
		return
	}
	q.served(roleAns.Served)
	if ref.Path != "" && roleAns.Path != ref.Path {
		v.add(deny(RolePathMismatch, rolePath,
			"spec.role gives the path %s, but role %s has the path %s (ARN %s). Set spec.role: %s",
			ref.Path, ref.Name, roleAns.Path, roleAns.ARN, ref.Name))
	}
	c.checkTrust(v, rolePath, roleAns)
	if !perms {
		return
	}
	pass := <-guessPass
	if roleAns.ARN != "" && roleAns.ARN != guessARN {
		pass = q.decide(c.passRole(roleAns.ARN))
	}
	c.reportPassRole(q, v, rolePath, pass.q.Resource, pass)
}

func (c *Checker) accountOr(a string) string {
	if a != "" {
		return a
	}
	if c.Account() != "" {
		return c.Account()
	}
	return "(unknown)"
}

func (c *Checker) checkProfile(q *questions, v *Verdict, name string, eks bool, className, nodePool string) {
	perms := c.permissionsChecked(v, eks)
	var (
		prof    authz.InstanceProfile
		profErr error
		wg      sync.WaitGroup
		read    = make(chan decided, 1)
		guess   = "arn:" + c.partition() + ":iam::" + c.Account() + ":instance-profile/" + name
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		prof, profErr = q.profile(name)
	}()
	if perms {
		go func() {
			read <- q.decide(authz.Question{Principal: c.ControllerARN, Action: "iam:GetInstanceProfile", Resource: guess})
		}()
		c.askLaunch(q, v, className, nodePool)
	}
	wg.Wait()
	switch {
	case errors.Is(profErr, authz.ErrNotFound):
		v.add(deny(InstanceProfileNotFound, instanceProfilePath,
			"no IAM instance profile named %s in account %s. Create it (aws iam create-instance-profile --instance-profile-name %s) and add the node role, or set spec.role and let Karpenter manage the profile",
			name, c.accountOr(""), name))
		if perms {
			<-read
		}
		return
	case profErr != nil:
		q.unavailable(instanceProfilePath, "GetInstanceProfile", profErr)
		if perms {
			c.reportProfileRead(q, v, <-read)
		}
		return
	}
	q.served(prof.Served)
	if perms {
		r := <-read
		if prof.ARN != "" && prof.ARN != guess {
			r = q.decide(authz.Question{Principal: c.ControllerARN, Action: "iam:GetInstanceProfile", Resource: prof.ARN})
		}
		c.reportProfileRead(q, v, r)
	}
	if len(prof.Roles) == 0 {
		v.add(deny(InstanceProfileHasNoRole, instanceProfilePath,
			"instance profile %s holds no role, so nodes would get no credentials. Add the node role: aws iam add-role-to-instance-profile --instance-profile-name %s --role-name <node role>",
			name, name))
		return
	}
	role := prof.Roles[0]
	c.checkTrust(v, instanceProfilePath, role)
	if perms {
		c.reportPassRole(q, v, instanceProfilePath, role.ARN, q.decide(c.passRole(role.ARN)))
	}
}

func (c *Checker) checkTrust(v *Verdict, path *field.Path, role authz.Role) {
	svc := authz.EC2ServicePrincipal(c.partition())
	if authz.TrustAllows(role.Trust, svc, "sts:AssumeRole") {
		return
	}
	v.add(deny(RoleTrustMissingEC2, path,
		"role %s does not trust %s to call sts:AssumeRole, so nodes could not get credentials. Add a trust policy statement: Effect Allow, Principal {\"Service\": \"%s\"}, Action sts:AssumeRole",
		role.ARN, svc, svc))
}

func (c *Checker) passRole(roleARN string) authz.Question {
	return authz.Question{
		Principal: c.ControllerARN,
		Action:    "iam:PassRole",
		Resource:  roleARN,
		Context:   map[string][]string{"iam:PassedToService": {authz.EC2ServicePrincipal(c.partition())}},
	}
}

func (c *Checker) reportPassRole(q *questions, v *Verdict, path *field.Path, roleARN string, d decided) {
	if !q.usable(path, d) {
		return
	}
	if d.ans.Allowed {
		return
	}
	svc := authz.EC2ServicePrincipal(c.partition())
	v.add(deny(PassRoleDenied, path,
		"role %s may not iam:PassRole %s to %s: %s. %s",
		c.ControllerARN, roleARN, svc, d.ans.Reason(),
		fix(d.ans, fmt.Sprintf("Allow iam:PassRole on that ARN with iam:PassedToService=%s", svc))))
}

func (c *Checker) reportProfileRead(q *questions, v *Verdict, d decided) {
	if !q.usable(instanceProfilePath, d) || d.ans.Allowed {
		return
	}
	v.add(deny(InstanceProfileReadDenied, instanceProfilePath,
		"role %s may not iam:GetInstanceProfile %s: %s. %s",
		c.ControllerARN, d.q.Resource, d.ans.Reason(),
		fix(d.ans, "Allow iam:GetInstanceProfile on that ARN")))
}

// karpenterTags are the tags Karpenter puts on what it creates for a class.
func (c *Checker) karpenterTags(className string) [][2]string {
	return [][2]string{
		{"kubernetes.io/cluster/" + c.ClusterName, "owned"},
		{"eks:eks-cluster-name", c.ClusterName},
		{"topology.kubernetes.io/region", c.Region},
		{"karpenter.k8s.aws/ec2nodeclass", className},
	}
}

func tagContext(tags [][2]string, request, resource bool) map[string][]string {
	ctx := map[string][]string{}
	keys := make([]string, 0, len(tags))
	for _, t := range tags {
		if request {
			ctx["aws:RequestTag/"+t[0]] = []string{t[1]}
		}
		if resource {
			ctx["aws:ResourceTag/"+t[0]] = []string{t[1]}
		}
		keys = append(keys, t[0])
	}
	if request {
		ctx["aws:TagKeys"] = keys
	}
	return ctx
}

func tagList(tags [][2]string) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = shown(t[0]) + "=" + shown(t[1])
	}
	return strings.Join(parts, ", ")
}

// instanceProfileActions are what Karpenter does to manage the instance
// profile of a class that names spec.role.
var instanceProfileActions = []string{"iam:CreateInstanceProfile", "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile"}

func (c *Checker) askInstanceProfileActions(q *questions, v *Verdict, className string) {
	tags := c.karpenterTags(className)
	resource := "arn:" + c.partition() + ":iam::" + c.Account() + ":instance-profile/*"
	qs := make([]authz.Question, len(instanceProfileActions))
	for i, action := range instanceProfileActions {
		qs[i] = authz.Question{Principal: c.ControllerARN, Action: action, Resource: resource,
			Context: tagContext(tags, action != "iam:AddRoleToInstanceProfile", action != "iam:CreateInstanceProfile")}
	}
	q.group(rolePath, qs, func(denied []decided) {
		v.add(deny(InstanceProfileActionsDenied, rolePath,
			"role %s may not %s on %s with Karpenter's tags (%s): %s. %s",
			c.ControllerARN, actionsOf(denied), resource, tagList(tags), denied[0].ans.Reason(),
			fix(denied[0].ans, "Karpenter creates the instance profile for spec.role: allow these actions on instance-profile/* for these tags, or set spec.instanceProfile to a profile you manage")))
	})
}

// launchActions are the EC2 calls Karpenter dry-runs and makes to launch
// nodes, with the resource type each is checked on.
var launchActions = [][2]string{
	{"ec2:RunInstances", "instance/*"},
	{"ec2:CreateFleet", "fleet/*"},
	{"ec2:CreateLaunchTemplate", "launch-template/*"},
}

func (c *Checker) askLaunch(q *questions, v *Verdict, className, nodePool string) {
	if nodePool == "" {
		nodePool = className
	}
	tags := [][2]string{
		{"kubernetes.io/cluster/" + c.ClusterName, "owned"},
		{"eks:eks-cluster-name", c.ClusterName},
		{"karpenter.sh/nodepool", nodePool},
		{"karpenter.k8s.aws/ec2nodeclass", className},
	}
	qs := make([]authz.Question, len(launchActions))
	// One context for the three actions: questions only read it.
	ctx := tagContext(tags, true, false)
	ctx["aws:RequestedRegion"] = []string{c.Region}
	for i, a := range launchActions {
		qs[i] = authz.Question{Principal: c.ControllerARN, Action: a[0],
			Resource: "arn:" + c.partition() + ":ec2:" + c.Region + ":" + c.Account() + ":" + a[1], Context: ctx}
	}
	q.group(specPath, qs, func(denied []decided) {
		resources := make([]string, len(denied))
		for i, d := range denied {
			resources[i] = d.q.Resource
		}
		v.add(deny(LaunchDenied, specPath,
			"role %s may not %s on %s with Karpenter's tags (%s): %s. %s",
			c.ControllerARN, actionsOf(denied), strings.Join(resources, ", "), tagList(tags), denied[0].ans.Reason(),
			fix(denied[0].ans, "Allow these EC2 actions in the region for requests carrying these tags, as Karpenter's controller policy does")))
	})
}

func actionsOf(ds []decided) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.q.Action
	}
	return strings.Join(names, ", ")
}

// fix says how to repair a denial, by what denied it.
func fix(d authz.Decision, allow string) string {
	switch {
	case d.Explicit && d.DeniedBy.Source == authz.DeniedBySCP:
		return "An Organizations service control policy denies it: ask your AWS Organizations administrator to exempt the Karpenter controller role"
	case d.Explicit:
		return "Narrow that Deny statement, or use a role or resource it does not cover"
	case d.DeniedBy.Source == authz.DeniedByBoundary:
		return allow + ", in the permissions boundary as well as in the role's policies"
	case d.DeniedBy.Source == authz.DeniedBySCP:
		return "Ask your AWS Organizations administrator to allow it in the service control policies"
	}
	return allow
}

// decided is a question and its answer.
type decided struct {
	q   authz.Question
	ans authz.Decision
	err error
}

// questions collects what happened while asking IAM during one check:
// unavailable answers, stale answers and unsupported conditions, reported
// once per object.
type questions struct {
	c   *Checker
	ctx context.Context

	mu          sync.Mutex
	groups      sync.WaitGroup
	unavail     []unavailability
	staleAge    time.Duration
	stale       bool
	missing     map[string]bool
	unsupported map[string]bool
	pending     []func()
}

type unavailability struct {
	path *field.Path
	op   string
	err  error
}

func (q *questions) role(name string) (authz.Role, error) {
	return q.c.IAM.Role(q.ctx, name)
}

func (q *questions) profile(name string) (authz.InstanceProfile, error) {
	return q.c.IAM.InstanceProfile(q.ctx, name)
}

func (q *questions) decide(question authz.Question) decided {
	d, err := q.c.IAM.Decide(q.ctx, question)
	return decided{q: question, ans: d, err: err}
}

// group asks qs in parallel; once all are answered, onDenied is called
// (at report time) with the usable denials, if any.
func (q *questions) group(path *field.Path, qs []authz.Question, onDenied func([]decided)) {
	results := make([]decided, len(qs))
	var wg sync.WaitGroup
	for i := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = q.decide(qs[i])
		}()
	}
	q.groups.Add(1)
	go func() {
		defer q.groups.Done()
		wg.Wait()
	}()
	q.mu.Lock()
	q.pending = append(q.pending, func() {
		var denied []decided
		for _, d := range results {
			if q.usable(path, d) && !d.ans.Allowed {
				denied = append(denied, d)
			}
		}
		if len(denied) > 0 {
			onDenied(denied)
		}
	})
	q.mu.Unlock()
}

// usable records what an answer says about IAM's availability and reports
// whether it can be judged.
func (q *questions) usable(path *field.Path, d decided) bool {
	if d.err != nil {
		q.unavailable(path, "SimulatePrincipalPolicy", d.err)
		return false
	}
	q.served(d.ans.Served)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range d.ans.MissingContext {
		if q.missing == nil {
			q.missing = map[string]bool{}
		}
		q.missing[k] = true
	}
	for _, op := range d.ans.Unsupported {
		if q.unsupported == nil {
			q.unsupported = map[string]bool{}
		}
		q.unsupported[op] = true
	}
	return true
}

func (q *questions) served(s authz.Served) {
	if !s.Stale {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stale = true
	if s.Age > q.staleAge {
		q.staleAge = s.Age
	}
}

func (q *questions) unavailable(path *field.Path, op string, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unavail = append(q.unavail, unavailability{path: path, op: op, err: err})
}

// report waits for every pending group and adds the findings they and the
// availability notes make.
func (q *questions) report(v *Verdict) {
	q.groups.Wait()
	for _, p := range q.pending {
		p()
	}
	if len(q.unavail) > 0 {
		u := q.unavail[0]
		ops := map[string]bool{}
		var names []string
		for _, x := range q.unavail {
			if !ops[x.op] {
				ops[x.op] = true
				names = append(names, x.op)
			}
		}
		f := Finding{Code: IAMUnavailable, Field: u.path, Deny: q.c.OnIAMError == OnIAMErrorDeny}
		if f.Deny {
			f.Message = fmt.Sprintf("IAM could not be asked (%s: %s) and no cached answer exists, so the object cannot be verified. Retry shortly; nodeclass-guard runs with --on-iam-error=deny", strings.Join(names, ", "), errSummary(u.err))
		} else {
			// What happened first: the error's detail is what a warning's
			// 256-character limit may cut.
			f.Message = fmt.Sprintf("admitted without the IAM checks (--on-iam-error=allow): IAM could not be asked (%s: %s)", strings.Join(names, ", "), errSummary(u.err))
		}
		v.add(f)
	}
	if q.stale {
		v.add(warn(IAMStale, specPath, "IAM could not be reached; the verdict uses cached IAM answers up to %s old", q.staleAge.Round(time.Second)))
	}
	if len(q.missing) > 0 {
		v.add(warn(PermissionContextMissing, specPath, "a policy of the controller role tests %s, which Karpenter's request may carry but this check cannot know; the answer at launch may differ", strings.Join(sortedKeys(q.missing), ", ")))
	}
	if len(q.unsupported) > 0 {
		v.add(warn(PolicyConditionUnsupported, specPath, "a controller policy statement uses condition operators %s, which the local evaluator does not support; such statements were counted as not matching", strings.Join(sortedKeys(q.unsupported), ", ")))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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
