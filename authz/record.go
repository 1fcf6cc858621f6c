package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Recorder stands between the rules and the live views while `snapshot`
// checks manifests: it asks AWS what the rules ask, and keeps every answer,
// so that WriteSnapshot writes exactly what `check` will need for the same
// manifests, and nothing else of the account. Permission questions are
// not put to SimulatePrincipalPolicy: the principal's policies are read
// once (ReadRoleDetail) and the question is evaluated on them, as the
// snapshot will be.
//
// An answer that could not be had (a permission the caller lacks,
// throttling) is kept as a failure: the section it belongs to is left out
// of the snapshot (its checks are then reported skipped, never passed), and
// Failures names it.
type Recorder struct {
	iam View
	eks EKSView
	ec2 EC2View
	kms KMSView
	// kmsAccount is the account whose keys the snapshot holds (the
	// controller role's): a snapshot answers "could not check" for any
	// other account's key.
	kmsAccount string
	details    func(ctx context.Context, role string) (RoleDetail, error)
	// progress is told the first time each service is asked.
	progress func(service string)

	mu         sync.Mutex
	told       map[string]bool
	roles      map[string]Role
	profiles   map[string]InstanceProfile
	principals map[string]*principal
	cluster    *Cluster
	entries    map[string]AccessEntry
	asked      map[string]bool // sections asked: "AccessEntries", "Subnets", ...
	subnets    map[string]Subnet
	groups     map[string]SecurityGroup
	images     map[string]Image
	reserved   map[string]CapacityReservation
	// seen orders the EC2 resources as EC2 first listed them (its answers'
	// order is the order the rules see, and report).
	seen      map[string]int
	params    map[string]string
	noParams  map[string]bool
	awsAuth   *AWSAuthData
	kmsKeys   map[string]KMSKey      // by ARN
	aliases   map[string]kmsAliasDoc // by alias name
	failures  []Failure
	failedSec map[string]bool
}

// principal is a role whose policies are read for permission questions.
type principal struct {
	arn    string
	once   sync.Once
	detail RoleDetail
	set    PolicySet
	ok     bool
	err    error
}

// Failure is an answer the recorder could not get.
type Failure struct {
	// Service is "IAM", "EKS", "EC2", "SSM" or "KMS"; Op the API.
	Service, Op string
	// About names what was asked ("role NodeRole", a query).
	About string
	Err   error
	// Effect says what a check on the snapshot makes of it.
	Effect string
}

func (f Failure) String() string {
	why := f.Err.Error()
	var u *UnavailableError
	if errors.As(f.Err, &u) {
		why = u.Summary()
	}
	return fmt.Sprintf("%s %s (%s): %s; %s", f.Service, f.Op, f.About, why, f.Effect)
}

// AWSAuthData is the aws-auth ConfigMap's data as the snapshot's "awsAuth"
// section holds it (`kubectl get configmap aws-auth -n kube-system -o
// json`, whose other fields are ignored); Absent records a cluster that has
// none.
type AWSAuthData struct {
	Data   map[string]string `json:"data,omitempty"`
	Absent bool              `json:"absent,omitempty"`
}

// NewRecorder records what is asked of iam, eks and ec2 (ec2 may be nil);
// details reads a principal's policies (ReadRoleDetail with the IAM
// client); progress, when set, is told the first time each service is
// asked.
func NewRecorder(iam View, eks EKSView, ec2 EC2View, details func(ctx context.Context, role string) (RoleDetail, error), progress func(service string)) *Recorder {
	return &Recorder{iam: iam, eks: eks, ec2: ec2, details: details, progress: progress,
		told: map[string]bool{}, roles: map[string]Role{}, profiles: map[string]InstanceProfile{}, principals: map[string]*principal{},
		entries: map[string]AccessEntry{}, asked: map[string]bool{}, subnets: map[string]Subnet{}, groups: map[string]SecurityGroup{},
		images: map[string]Image{}, reserved: map[string]CapacityReservation{}, seen: map[string]int{}, params: map[string]string{}, noParams: map[string]bool{},
		kmsKeys: map[string]KMSKey{}, aliases: map[string]kmsAliasDoc{}, failedSec: map[string]bool{}}
}

// SetKMS records what is asked of kms too, the keys of the snapshot's
// account (the controller role's); without it, Key answers that KMS could
// not be asked.
func (r *Recorder) SetKMS(kms KMSView, account string) {
	r.kms, r.kmsAccount = kms, account
}

var (
	_ View    = (*Recorder)(nil)
	_ EKSView = (*Recorder)(nil)
	_ EC2View = (*Recorder)(nil)
	_ KMSView = (*Recorder)(nil)
)

func (r *Recorder) tell(service string) {
	r.mu.Lock()
	first := !r.told[service]
	r.told[service] = true
	r.mu.Unlock()
	if first && r.progress != nil {
		r.progress(service)
	}
}

func (r *Recorder) fail(section string, f Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, f)
	if section != "" {
		r.failedSec[section] = true
	}
}

// Role implements View.
func (r *Recorder) Role(ctx context.Context, name string) (Role, error) {
	r.tell("IAM")
	role, err := r.iam.Role(ctx, name)
	switch {
	case err == nil:
		r.mu.Lock()
		r.roles[role.Name] = role
		r.mu.Unlock()
	case !errors.Is(err, ErrNotFound):
		r.fail("", Failure{Service: "IAM", Op: "GetRole", About: "role " + name, Err: err, Effect: "the snapshot lacks the role: check reports it not found"})
	}
	return role, err
}

// InstanceProfile implements View.
func (r *Recorder) InstanceProfile(ctx context.Context, name string) (InstanceProfile, error) {
	r.tell("IAM")
	p, err := r.iam.InstanceProfile(ctx, name)
	switch {
	case err == nil:
		r.mu.Lock()
		r.profiles[p.Name] = p
		r.mu.Unlock()
	case !errors.Is(err, ErrNotFound):
		r.fail("", Failure{Service: "IAM", Op: "GetInstanceProfile", About: "instance profile " + name, Err: err, Effect: "the snapshot lacks the profile: check reports it not found"})
	}
	return p, err
}

// Decide implements View: the principal's policies are read once, and
// every question about it is evaluated on them.
func (r *Recorder) Decide(ctx context.Context, q Question) (Decision, error) {
	arn, err := ParseRoleARN(q.Principal)
	if err != nil {
		return Decision{}, err
	}
	r.mu.Lock()
	p := r.principals[arn.Name]
	if p == nil {
		p = &principal{arn: q.Principal}
		r.principals[arn.Name] = p
	}
	r.mu.Unlock()
	p.once.Do(func() {
		r.tell("IAM")
		p.detail, p.err = r.details(ctx, arn.Name)
		if p.err != nil {
			if !errors.Is(p.err, ErrNotFound) {
				op := "GetRole"
				var u *UnavailableError
				if errors.As(p.err, &u) && u.Op != "" {
					op = u.Op
				}
				r.fail("", Failure{Service: "IAM", Op: op, About: "the policies of role " + arn.Name, Err: p.err,
					Effect: "the snapshot lacks the role: its permissions cannot be checked"})
			}
			return
		}
		for _, mp := range append(append([]ManagedPolicy(nil), p.detail.Attached...), derefManaged(p.detail.Boundary)...) {
			if mp.Err != nil {
				op := "GetPolicyVersion"
				var u *UnavailableError
				if errors.As(mp.Err, &u) && u.Op != "" {
					op = u.Op
				}
				r.fail("", Failure{Service: "IAM", Op: op, About: "policy " + mp.ARN + " of role " + arn.Name, Err: mp.Err,
					Effect: "the snapshot names the policy without its document: the role's permissions are reported not checked"})
			}
		}
		p.set, p.ok = p.detail.PolicySet()
	})
	if p.err != nil {
		return Decision{}, p.err
	}
	if !p.ok {
		return Decision{}, &UnavailableError{Op: "GetPolicyVersion", Err: fmt.Errorf("role %s: some of its policies could not be read", arn.Name)}
	}
	return Evaluate(p.set, q), nil
}

func derefManaged(m *ManagedPolicy) []ManagedPolicy {
	if m == nil {
		return nil
	}
	return []ManagedPolicy{*m}
}

// Cluster implements EKSView.
func (r *Recorder) Cluster(ctx context.Context, name string) (Cluster, error) {
	r.tell("EKS")
	c, err := r.eks.Cluster(ctx, name)
	switch {
	case err == nil:
		r.mu.Lock()
		r.cluster = &c
		r.mu.Unlock()
	case !errors.Is(err, ErrNotFound):
		r.fail("cluster", Failure{Service: "EKS", Op: "DescribeCluster", About: "cluster " + name, Err: err, Effect: "no cluster section: the node-join checks are reported skipped"})
	}
	return c, err
}

// AccessEntry implements EKSView.
func (r *Recorder) AccessEntry(ctx context.Context, cluster, principalARN string) (AccessEntry, error) {
	r.tell("EKS")
	e, err := r.eks.AccessEntry(ctx, cluster, principalARN)
	r.mu.Lock()
	r.asked["AccessEntries"] = true
	if err == nil {
		r.entries[e.PrincipalARN] = e
	}
	r.mu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		r.fail("AccessEntries", Failure{Service: "EKS", Op: "DescribeAccessEntry", About: principalARN, Err: err, Effect: "no AccessEntries section: the access-entry checks are reported skipped"})
	}
	return e, err
}

// sectionOf is the snapshot section an EC2 query's answers go to.
func sectionOf(res EC2Resource) string {
	switch res {
	case EC2Subnets:
		return "Subnets"
	case EC2SecurityGroups:
		return "SecurityGroups"
	case EC2Images:
		return "Images"
	case EC2CapacityReservations:
		return "CapacityReservations"
	}
	return string(res)
}

// Describe implements EC2View.
func (r *Recorder) Describe(ctx context.Context, q EC2Query) (EC2Resources, error) {
	if r.ec2 == nil {
		return EC2Resources{}, &UnavailableError{Service: "EC2", Op: string(q.Resource), Err: errors.New("no EC2 view")}
	}
	r.tell("EC2")
	res, err := r.ec2.Describe(ctx, q)
	sec := sectionOf(q.Resource)
	if err != nil {
		r.fail(sec, Failure{Service: "EC2", Op: string(q.Resource), About: q.String(), Err: err, Effect: "no " + sec + " section: those selector checks are reported skipped"})
		return res, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked[sec] = true
	see := func(id string) {
		if _, ok := r.seen[id]; !ok {
			r.seen[id] = len(r.seen)
		}
	}
	for _, x := range res.Subnets {
		r.subnets[x.ID] = x
		see(x.ID)
	}
	for _, x := range res.SecurityGroups {
		r.groups[x.ID] = x
		see(x.ID)
	}
	for _, x := range res.Images {
		r.images[x.ID] = x
		see(x.ID)
	}
	for _, x := range res.CapacityReservations {
		r.reserved[x.ID] = x
		see(x.ID)
	}
	return res, nil
}

// Parameter implements EC2View.
func (r *Recorder) Parameter(ctx context.Context, name string) (Parameter, error) {
	if r.ec2 == nil {
		return Parameter{}, &UnavailableError{Service: "SSM", Op: "GetParameter", Err: errors.New("no SSM view")}
	}
	r.tell("SSM")
	p, err := r.ec2.Parameter(ctx, name)
	r.mu.Lock()
	r.asked["Parameters"] = true
	switch {
	case err == nil:
		r.params[name] = p.Value
	case errors.Is(err, ErrNotFound):
		r.noParams[name] = true
	}
	r.mu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		r.fail("Parameters", Failure{Service: "SSM", Op: "GetParameter", About: name, Err: err, Effect: "no Parameters section: the AMI alias checks are reported skipped"})
	}
	return p, err
}

// Key implements KMSView: a key found is kept with its key policy and
// grants, and the alias it was named by; a key not found needs nothing
// (the KMSKeys section, written, holds every key check will ask for).
func (r *Recorder) Key(ctx context.Context, id string) (KMSKey, error) {
	if r.kms == nil {
		return KMSKey{}, &UnavailableError{Service: "KMS", Op: "DescribeKey", Err: errors.New("no KMS view")}
	}
	r.tell("KMS")
	key, err := r.kms.Key(ctx, id)
	_, account, isARN := KMSKeyARNParts(id)
	if err == nil {
		account, isARN = key.Account, true
	}
	other := isARN && r.kmsAccount != "" && account != r.kmsAccount
	r.mu.Lock()
	r.asked["KMSKeys"] = true
	r.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
		return key, err
	case err != nil && other:
		// Another account's key: a snapshot cannot hold it, and check on
		// it reports it not checked, as this answer does.
		return key, err
	case err != nil:
		op := "DescribeKey"
		var u *UnavailableError
		if errors.As(err, &u) && u.Op != "" {
			op = u.Op
		}
		r.fail("KMSKeys", Failure{Service: "KMS", Op: op, About: "key " + id, Err: err, Effect: "no KMSKeys section: the KMS checks are reported skipped"})
		return key, err
	case other:
		r.fail("", Failure{Service: "KMS", Op: "DescribeKey", About: "key " + id, Err: fmt.Errorf("the key is in account %s, a snapshot holds account %s's keys only", account, r.kmsAccount),
			Effect: "check on the snapshot reports the key not checked"})
		return key, nil
	}
	if key.PolicyUnknown != "" {
		r.fail("", Failure{Service: "KMS", Op: "GetKeyPolicy", About: "key " + key.ARN, Err: errors.New(strings.TrimPrefix(key.PolicyUnknown, "GetKeyPolicy: ")),
			Effect: "the key is written without its key policy: whether the controller may use it is reported not checked"})
	}
	if key.GrantsUnknown != "" {
		r.fail("", Failure{Service: "KMS", Op: "ListGrants", About: "key " + key.ARN, Err: errors.New(strings.TrimPrefix(key.GrantsUnknown, "ListGrants: ")),
			Effect: "the key is written with the grants listed before: as live, a grant that allows the controller may be missed"})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kmsKeys[key.ARN] = key
	if name, aliasARN, ok := kmsAlias(id, key); ok {
		r.aliases[name] = kmsAliasDoc{AliasName: name, AliasArn: aliasARN, TargetKeyId: kmsKeyID(key.ARN)}
	}
	return key, nil
}

// kmsKeyID is the key ID of a key ARN (arn:aws:kms:R:A:key/ID).
func kmsKeyID(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	return strings.TrimPrefix(parts[len(parts)-1], "key/")
}

// kmsAlias is the alias name and ARN id names, an alias name or ARN that
// resolved to key (aliases are in their key's region and account).
func kmsAlias(id string, key KMSKey) (name, arn string, ok bool) {
	if strings.HasPrefix(id, "alias/") {
		return id, "arn:" + keyPartition(key.ARN) + ":kms:" + key.Region + ":" + key.Account + ":" + id, true
	}
	if parts := strings.SplitN(id, ":", 6); len(parts) == 6 && strings.HasPrefix(parts[5], "alias/") {
		return parts[5], id, true
	}
	return "", "", false
}

// SetAWSAuth records the cluster's aws-auth ConfigMap (nil data and
// absent for a cluster without one).
func (r *Recorder) SetAWSAuth(data map[string]string, absent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.awsAuth = &AWSAuthData{Data: data, Absent: absent}
}

// FailAWSAuth records that aws-auth could not be read.
func (r *Recorder) FailAWSAuth(err error) {
	r.fail("awsAuth", Failure{Service: "Kubernetes", Op: "get configmap", About: "kube-system/aws-auth", Err: err, Effect: "no awsAuth section: the aws-auth checks are reported skipped"})
}

// Failures returns what could not be read, in the order it happened.
func (r *Recorder) Failures() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Failure(nil), r.failures...)
}

// The snapshot as WriteSnapshot writes it: the shapes LoadSnapshot reads
// (snapshot.go, eks_snapshot.go, ec2_snapshot.go).
type (
	outSnapshot struct {
		RoleDetailList       []outRole                 `json:"RoleDetailList"`
		Policies             []outPolicy               `json:"Policies"`
		InstanceProfiles     []outProfile              `json:"InstanceProfiles"`
		Cluster              *outCluster               `json:"cluster,omitempty"`
		AccessEntries        *[]outAccessEntry         `json:"AccessEntries,omitempty"`
		Subnets              *[]subnetDoc              `json:"Subnets,omitempty"`
		SecurityGroups       *[]securityGroupDoc       `json:"SecurityGroups,omitempty"`
		Images               *[]imageDoc               `json:"Images,omitempty"`
		CapacityReservations *[]capacityReservationDoc `json:"CapacityReservations,omitempty"`
		Parameters           *[]parameterDoc           `json:"Parameters,omitempty"`
		InvalidParameters    []string                  `json:"InvalidParameters,omitempty"`
		AWSAuth              *AWSAuthData              `json:"awsAuth,omitempty"`
		KMSKeys              *[]outKMSKey              `json:"KMSKeys,omitempty"`
		Aliases              *[]kmsAliasDoc            `json:"Aliases,omitempty"`
	}
	// outKMSKey is describe-key, get-key-policy and list-grants merged
	// (kms_snapshot.go).
	outKMSKey struct {
		KeyMetadata struct {
			KeyId        string
			Arn          string
			AWSAccountId string
			KeyState     string
			Enabled      bool
			DeletionDate *time.Time `json:",omitempty"`
		}
		Policy *string `json:",omitempty"`
		Grants []outGrant
	}
	outGrant struct {
		GrantId          string
		GranteePrincipal string
		Operations       []string
	}
	outRole struct {
		RoleName                 string
		Path                     string
		Arn                      string
		AssumeRolePolicyDocument json.RawMessage `json:",omitempty"`
		RolePolicyList           []outInline     `json:",omitempty"`
		AttachedManagedPolicies  []outAttached   `json:",omitempty"`
		PermissionsBoundary      *outBoundary    `json:",omitempty"`
	}
	outInline struct {
		PolicyName     string
		PolicyDocument json.RawMessage
	}
	outAttached struct {
		PolicyName string
		PolicyArn  string
	}
	outBoundary struct {
		PermissionsBoundaryArn  string
		PermissionsBoundaryType string
	}
	outPolicy struct {
		PolicyName        string
		Arn               string
		DefaultVersionId  string
		PolicyVersionList []outVersion
	}
	outVersion struct {
		Document         json.RawMessage
		VersionId        string
		IsDefaultVersion bool
	}
	outProfile struct {
		InstanceProfileName string
		Path                string
		Arn                 string
		Roles               []outProfileRole
	}
	outProfileRole struct {
		RoleName                 string
		Path                     string
		Arn                      string
		AssumeRolePolicyDocument json.RawMessage `json:",omitempty"`
	}
	outCluster struct {
		Name         string `json:"name"`
		Arn          string `json:"arn,omitempty"`
		RoleArn      string `json:"roleArn,omitempty"`
		Version      string `json:"version,omitempty"`
		AccessConfig struct {
			AuthenticationMode string `json:"authenticationMode"`
		} `json:"accessConfig"`
		ComputeConfig struct {
			Enabled bool `json:"enabled"`
		} `json:"computeConfig"`
	}
	outAccessEntry struct {
		AccessEntry struct {
			PrincipalArn     string   `json:"principalArn"`
			Type             string   `json:"type,omitempty"`
			Username         string   `json:"username,omitempty"`
			KubernetesGroups []string `json:"kubernetesGroups,omitempty"`
		} `json:"accessEntry"`
		AssociatedAccessPolicies []outAccessPolicy `json:"associatedAccessPolicies"`
	}
	outAccessPolicy struct {
		PolicyArn string `json:"policyArn"`
	}
)

// Summary counts what WriteSnapshot wrote, section by section.
type Summary struct {
	Roles, RolesWithPolicies, Policies, InstanceProfiles int
	Cluster                                              string
	AccessEntries, Subnets, SecurityGroups, Images       int
	CapacityReservations, Parameters, MissingParameters  int
	KMSKeys, Aliases                                     int
	AWSAuth                                              bool
	// Omitted lists the sections left out because an answer was missing.
	Omitted []string
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d role(s) (%d with their policies), %d managed policy(ies), %d instance profile(s)", s.Roles, s.RolesWithPolicies, s.Policies, s.InstanceProfiles)
	if s.Cluster != "" {
		fmt.Fprintf(&b, ", cluster %s", s.Cluster)
	}
	fmt.Fprintf(&b, ", %d access entry(ies), %d subnet(s), %d security group(s), %d image(s), %d capacity reservation(s), %d SSM parameter(s) (%d known missing)",
		s.AccessEntries, s.Subnets, s.SecurityGroups, s.Images, s.CapacityReservations, s.Parameters, s.MissingParameters)
	if s.KMSKeys > 0 || s.Aliases > 0 {
		fmt.Fprintf(&b, ", %d KMS key(s), %d alias(es)", s.KMSKeys, s.Aliases)
	}
	if s.AWSAuth {
		b.WriteString(", aws-auth")
	}
	return b.String()
}

func rawDoc(p *Policy) json.RawMessage {
	if p == nil || len(p.doc) == 0 {
		return nil
	}
	return json.RawMessage(p.Document())
}

func sortedTags(m map[string]string) []tagDoc {
	out := make([]tagDoc, 0, len(m))
	for k, v := range m {
		out = append(out, tagDoc{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// inOrder sorts EC2 resource IDs as EC2 first listed them.
func (r *Recorder) inOrder(ids []string) []string {
	sort.SliceStable(ids, func(i, j int) bool { return r.seen[ids[i]] < r.seen[ids[j]] })
	return ids
}

// WriteSnapshot writes what was recorded as a snapshot LoadSnapshot reads,
// indented, and returns what it wrote.
func (r *Recorder) WriteSnapshot(w io.Writer) (Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum Summary
	out := outSnapshot{RoleDetailList: []outRole{}, Policies: []outPolicy{}, InstanceProfiles: []outProfile{}}

	// Roles: every role looked up, and every principal with its policies.
	roles := map[string]*outRole{}
	addRole := func(role Role) *outRole {
		if o, ok := roles[role.Name]; ok {
			return o
		}
		o := &outRole{RoleName: role.Name, Path: normalisePath(role.Path), Arn: role.ARN, AssumeRolePolicyDocument: rawDoc(role.Trust)}
		roles[role.Name] = o
		return o
	}
	for _, name := range sortedKeys(r.roles) {
		addRole(r.roles[name])
	}
	policies := map[string]outPolicy{}
	addManaged := func(mp ManagedPolicy) {
		if mp.Policy == nil {
			return
		}
		version := mp.VersionID
		if version == "" {
			version = "v1"
		}
		policies[mp.ARN] = outPolicy{PolicyName: mp.Name, Arn: mp.ARN, DefaultVersionId: version,
			PolicyVersionList: []outVersion{{Document: rawDoc(mp.Policy), VersionId: version, IsDefaultVersion: true}}}
	}
	for _, name := range sortedKeys(r.principals) {
		p := r.principals[name]
		if errors.Is(p.err, ErrNotFound) {
			continue
		}
		if p.err != nil {
			// The role, with a policy the snapshot cannot contain: evaluating
			// its permissions then says why instead of denying everything.
			role, ok := r.roles[name]
			if !ok {
				role = Role{Name: name, ARN: p.arn}
			}
			why := p.err.Error()
			var u *UnavailableError
			if errors.As(p.err, &u) {
				why = "IAM " + u.Op + ": " + u.Summary()
			}
			o := addRole(role)
			o.AttachedManagedPolicies = []outAttached{{PolicyName: "unreadable", PolicyArn: "(the role's policies could not be read when the snapshot was taken: " + why + ")"}}
			continue
		}
		o := addRole(p.detail.Role)
		sum.RolesWithPolicies++
		o.RolePolicyList = nil
		for _, in := range p.detail.Inline {
			o.RolePolicyList = append(o.RolePolicyList, outInline{PolicyName: in.Name, PolicyDocument: rawDoc(in.Policy)})
		}
		o.AttachedManagedPolicies = nil
		for _, mp := range p.detail.Attached {
			o.AttachedManagedPolicies = append(o.AttachedManagedPolicies, outAttached{PolicyName: mp.Name, PolicyArn: mp.ARN})
			addManaged(mp)
		}
		if b := p.detail.Boundary; b != nil {
			o.PermissionsBoundary = &outBoundary{PermissionsBoundaryArn: b.ARN, PermissionsBoundaryType: "Policy"}
			addManaged(*b)
		}
	}
	for _, name := range sortedKeys(roles) {
		out.RoleDetailList = append(out.RoleDetailList, *roles[name])
	}
	for _, arn := range sortedKeys(policies) {
		out.Policies = append(out.Policies, policies[arn])
	}
	for _, name := range sortedKeys(r.profiles) {
		p := r.profiles[name]
		op := outProfile{InstanceProfileName: p.Name, Path: normalisePath(p.Path), Arn: p.ARN, Roles: []outProfileRole{}}
		for _, role := range p.Roles {
			op.Roles = append(op.Roles, outProfileRole{RoleName: role.Name, Path: normalisePath(role.Path), Arn: role.ARN, AssumeRolePolicyDocument: rawDoc(role.Trust)})
		}
		out.InstanceProfiles = append(out.InstanceProfiles, op)
	}
	sum.Roles, sum.Policies, sum.InstanceProfiles = len(out.RoleDetailList), len(out.Policies), len(out.InstanceProfiles)

	// EKS.
	if c := r.cluster; c != nil && !r.failedSec["cluster"] {
		oc := &outCluster{Name: c.Name, Arn: c.ARN, RoleArn: c.RoleARN, Version: c.Version}
		oc.AccessConfig.AuthenticationMode = c.AuthenticationMode
		oc.ComputeConfig.Enabled = c.AutoMode
		out.Cluster, sum.Cluster = oc, c.Name
	}
	if r.asked["AccessEntries"] && !r.failedSec["AccessEntries"] {
		entries := []outAccessEntry{}
		for _, arn := range sortedKeys(r.entries) {
			e := r.entries[arn]
			var oe outAccessEntry
			oe.AccessEntry.PrincipalArn, oe.AccessEntry.Type, oe.AccessEntry.Username, oe.AccessEntry.KubernetesGroups = e.PrincipalARN, e.Type, e.Username, e.Groups
			oe.AssociatedAccessPolicies = []outAccessPolicy{}
			for _, p := range e.Policies {
				oe.AssociatedAccessPolicies = append(oe.AssociatedAccessPolicies, outAccessPolicy{PolicyArn: p})
			}
			entries = append(entries, oe)
		}
		out.AccessEntries, sum.AccessEntries = &entries, len(entries)
	}

	// EC2 and SSM: a section only when asked, and every answer was had.
	keep := func(sec string) bool {
		if r.failedSec[sec] {
			sum.Omitted = append(sum.Omitted, sec)
			return false
		}
		return r.asked[sec]
	}
	if keep("Subnets") {
		s := []subnetDoc{}
		for _, id := range r.inOrder(sortedKeys(r.subnets)) {
			x := r.subnets[id]
			s = append(s, subnetDoc{SubnetId: x.ID, VpcId: x.VPCID, AvailabilityZone: x.AvailabilityZone, AvailabilityZoneId: x.AvailabilityZoneID, OwnerId: x.OwnerID, Tags: sortedTags(x.Tags)})
		}
		out.Subnets, sum.Subnets = &s, len(s)
	}
	if keep("SecurityGroups") {
		s := []securityGroupDoc{}
		for _, id := range r.inOrder(sortedKeys(r.groups)) {
			x := r.groups[id]
			s = append(s, securityGroupDoc{GroupId: x.ID, GroupName: x.Name, VpcId: x.VPCID, OwnerId: x.OwnerID, Tags: sortedTags(x.Tags)})
		}
		out.SecurityGroups, sum.SecurityGroups = &s, len(s)
	}
	if keep("Images") {
		s := []imageDoc{}
		for _, id := range r.inOrder(sortedKeys(r.images)) {
			x := r.images[id]
			s = append(s, imageDoc{ImageId: x.ID, Name: x.Name, OwnerId: x.OwnerID, ImageOwnerAlias: x.OwnerAlias, Architecture: x.Architecture, Platform: x.Platform, State: x.State, Public: x.Public, RootDeviceType: x.RootDeviceType, Tags: sortedTags(x.Tags)})
		}
		out.Images, sum.Images = &s, len(s)
	}
	if keep("CapacityReservations") {
		s := []capacityReservationDoc{}
		for _, id := range r.inOrder(sortedKeys(r.reserved)) {
			x := r.reserved[id]
			d := capacityReservationDoc{CapacityReservationId: x.ID, OwnerId: x.OwnerID, InstanceType: x.InstanceType, AvailabilityZone: x.AvailabilityZone,
				State: x.State, InstanceMatchCriteria: x.InstanceMatchCriteria, Tags: sortedTags(x.Tags)}
			if !x.EndDate.IsZero() {
				end := x.EndDate.UTC().Truncate(time.Second)
				d.EndDate = &end
			}
			s = append(s, d)
		}
		out.CapacityReservations, sum.CapacityReservations = &s, len(s)
	}
	if keep("Parameters") {
		s := []parameterDoc{}
		for _, name := range sortedKeys(r.params) {
			s = append(s, parameterDoc{Name: name, Value: r.params[name]})
		}
		out.Parameters, sum.Parameters = &s, len(s)
		out.InvalidParameters = sortedKeys(r.noParams)
		sum.MissingParameters = len(out.InvalidParameters)
	}
	if keep("KMSKeys") {
		keys := []outKMSKey{}
		for _, arn := range sortedKeys(r.kmsKeys) {
			k := r.kmsKeys[arn]
			var o outKMSKey
			m := &o.KeyMetadata
			m.KeyId, m.Arn, m.AWSAccountId, m.KeyState, m.Enabled, m.DeletionDate = kmsKeyID(k.ARN), k.ARN, k.Account, k.State, k.State == KMSKeyEnabled, k.DeletionDate
			if k.Policy != nil {
				doc := k.Policy.Document()
				o.Policy = &doc
			}
			o.Grants = []outGrant{}
			for _, g := range k.Grants {
				o.Grants = append(o.Grants, outGrant{GrantId: g.ID, GranteePrincipal: g.Grantee, Operations: g.Operations})
			}
			keys = append(keys, o)
		}
		aliases := []kmsAliasDoc{}
		for _, name := range sortedKeys(r.aliases) {
			aliases = append(aliases, r.aliases[name])
		}
		out.KMSKeys, out.Aliases, sum.KMSKeys, sum.Aliases = &keys, &aliases, len(keys), len(aliases)
	}
	if r.awsAuth != nil && !r.failedSec["awsAuth"] {
		out.AWSAuth, sum.AWSAuth = r.awsAuth, true
	}
	for _, sec := range []string{"cluster", "AccessEntries", "awsAuth"} {
		if r.failedSec[sec] {
			sum.Omitted = append(sum.Omitted, sec)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return sum, enc.Encode(out)
}
