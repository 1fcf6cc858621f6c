package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Snapshot is an IAM View read from a file: the output of
// `aws iam get-account-authorization-details`, optionally merged with the
// `InstanceProfiles` array of `aws iam list-instance-profiles` (for example
// `jq -s add details.json profiles.json`), so that profiles holding no role
// are known too. Permission questions are answered by the local evaluator
// (Evaluate) from the principal's inline and attached managed policies (at
// their default version) and its permissions boundary; SCPs are not in the
// file and do not count.
//
// Names are looked up exactly first and then case-insensitively: IAM names
// are unique regardless of case, so the fallback can only find the entity
// the user meant, while the exact hit keeps the common path cheap.
//
// A Snapshot is immutable once loaded and safe for concurrent use.
type Snapshot struct {
	source string

	roles      []*snapRole // sorted by name
	roleByName map[string]*snapRole
	roleByFold map[string]*snapRole // lower-cased name
	roleByARN  map[string]*snapRole
	arnByFold  map[string]*snapRole // lower-cased ARN

	profiles      []InstanceProfile // sorted by name
	profileByName map[string]int
	profileByFold map[string]int
	profilesOf    map[string][]int // role name -> indexes into profiles

	eks eksSnapshot
	ec2 ec2Snapshot
	// awsAuth is the optional "awsAuth" section (record.go).
	awsAuth *AWSAuthData
	kms     kmsSnapshot

	// managed holds the file's managed policies (default version) by ARN.
	managed map[string]*Policy
	// org is the optional Organization section (scp.go).
	org *Organization
}

var _ View = (*Snapshot)(nil)

// snapRole is a role with its resolved policies.
type snapRole struct {
	role Role
	set  PolicySet
	// missing lists managed policy ARNs (attached or boundary) that the
	// file does not contain, so the role's permissions cannot be evaluated.
	missing []string
	// profileOnly is set for a role known only from an instance profile's
	// Roles (list-instance-profiles output): it exists, with its path and
	// trust policy, but its permissions are unknown.
	profileOnly bool
	// boundaryARN is the permissions boundary's ARN, "" for none.
	boundaryARN string
}

// incomplete explains why the role's permissions cannot be evaluated, or
// returns "".
func (sr *snapRole) incomplete() string {
	switch {
	case sr.profileOnly:
		return "appears only in an instance profile's Roles, without its RoleDetailList entry (policies unknown)"
	case len(sr.missing) > 0:
		return "uses managed policies the snapshot does not contain (" + strings.Join(sr.missing, ", ") + ")"
	}
	return ""
}

// The shapes of the CLI's JSON output; unknown fields (UserDetailList,
// GroupDetailList, RoleLastUsed, Tags...) are ignored.
type (
	authorizationDetails struct {
		RoleDetailList   []roleDetail
		Policies         []policyDetail
		InstanceProfiles []profileDetail
		// The optional EKS sections (eks_snapshot.go).
		Cluster       *eksClusterDoc    `json:"cluster"`
		AccessEntries *[]accessEntryDoc `json:"AccessEntries"`
		// The optional EC2 and SSM sections (ec2_snapshot.go).
		ec2Sections
		// The optional aws-auth section (record.go).
		AWSAuth *AWSAuthData `json:"awsAuth"`
		// The optional KMS sections (kms_snapshot.go).
		KMSKeys *[]kmsKeyDoc   `json:"KMSKeys"`
		Aliases *[]kmsAliasDoc `json:"Aliases"`
		// The optional Organization section (scp.go).
		Organization *organizationDoc
	}
	roleDetail struct {
		RoleName                 string
		Path                     string
		Arn                      string
		AssumeRolePolicyDocument json.RawMessage
		RolePolicyList           []struct {
			PolicyName     string
			PolicyDocument json.RawMessage
		}
		AttachedManagedPolicies []struct {
			PolicyName string
			PolicyArn  string
		}
		PermissionsBoundary *struct {
			PermissionsBoundaryArn  string
			PermissionsBoundaryType string
		}
		InstanceProfileList []profileDetail
	}
	profileDetail struct {
		InstanceProfileName string
		Path                string
		Arn                 string
		Roles               []struct {
			RoleName                 string
			Path                     string
			Arn                      string
			AssumeRolePolicyDocument json.RawMessage
		}
	}
	policyDetail struct {
		PolicyName        string
		Arn               string
		DefaultVersionId  string
		PolicyVersionList []struct {
			Document         json.RawMessage
			VersionId        string
			IsDefaultVersion bool
		}
	}
)

// LoadSnapshotFile reads a snapshot file; errors name the file.
func LoadSnapshotFile(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("IAM snapshot: %w", err)
	}
	defer f.Close()
	return LoadSnapshot(f, path)
}

// LoadSnapshot reads a snapshot. source names the input in errors, which
// say where and what is wrong, for example
// `iam.json: RoleDetailList[3] (role "X"): AssumeRolePolicyDocument: ...`,
// or `iam.json:12:7: ...` for JSON that does not parse. The input may also
// be a JSON array of such objects (`jq -s .`), which are merged.
func LoadSnapshot(r io.Reader, source string) (*Snapshot, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var docs []authorizationDetails
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%s: empty file; want the JSON printed by `aws iam get-account-authorization-details`", source)
	case trimmed[0] == '[':
		err = json.Unmarshal(data, &docs)
	case trimmed[0] == '{':
		docs = make([]authorizationDetails, 1)
		err = json.Unmarshal(data, &docs[0])
	default:
		return nil, fmt.Errorf("%s: not a JSON object; want the JSON printed by `aws iam get-account-authorization-details`", source)
	}
	if err != nil {
		return nil, jsonError(source, data, err)
	}
	var all authorizationDetails
	for _, d := range docs {
		if d.RoleDetailList == nil && d.InstanceProfiles == nil && d.Cluster == nil && d.AccessEntries == nil && !d.ec2Sections.any() && d.AWSAuth == nil && d.KMSKeys == nil && d.Organization == nil {
			return nil, fmt.Errorf("%s: has neither RoleDetailList nor InstanceProfiles; want the JSON printed by `aws iam get-account-authorization-details` (optionally merged with `aws iam list-instance-profiles`)", source)
		}
		all.RoleDetailList = append(all.RoleDetailList, d.RoleDetailList...)
		all.Policies = append(all.Policies, d.Policies...)
		all.InstanceProfiles = append(all.InstanceProfiles, d.InstanceProfiles...)
		if d.Cluster != nil {
			all.Cluster = d.Cluster
		}
		if d.Organization != nil {
			all.Organization = d.Organization
		}
		all.ec2Sections.merge(d.ec2Sections)
		if d.AWSAuth != nil {
			all.AWSAuth = d.AWSAuth
		}
		appendSection(&all.KMSKeys, d.KMSKeys)
		appendSection(&all.Aliases, d.Aliases)
		if d.AccessEntries != nil {
			if all.AccessEntries == nil {
				all.AccessEntries = new([]accessEntryDoc)
			}
			*all.AccessEntries = append(*all.AccessEntries, *d.AccessEntries...)
		}
	}
	s, err := build(all)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if s.org, err = buildOrganization(all.Organization); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if s.eks, err = buildEKS(all.Cluster, all.AccessEntries); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if s.ec2, err = buildEC2(all.ec2Sections, s.account()); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	s.awsAuth = all.AWSAuth
	if s.kms, err = buildKMS(all.KMSKeys, all.Aliases); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	s.source = source
	return s, nil
}

// AWSAuth returns the snapshot's "awsAuth" section: the aws-auth
// ConfigMap's data, or Absent for a cluster without one; ok is false when
// the snapshot has no such section.
func (s *Snapshot) AWSAuth() (a AWSAuthData, ok bool) {
	if s.awsAuth == nil {
		return AWSAuthData{}, false
	}
	return *s.awsAuth, true
}

// jsonError turns a decoding error into "source:line:col: message".
func jsonError(source string, data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %v", source, line, col, syn)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		field := typ.Field
		if field == "" {
			field = "document"
		}
		return fmt.Errorf("%s:%d:%d: %s: got JSON %s, want %s", source, line, col, field, typ.Value, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: invalid JSON: unexpected end of input", source)
	default:
		return fmt.Errorf("%s: %w", source, err)
	}
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// build resolves the decoded file into the lookup tables.
func build(all authorizationDetails) (*Snapshot, error) {
	s := &Snapshot{
		roleByName:    map[string]*snapRole{},
		roleByFold:    map[string]*snapRole{},
		roleByARN:     map[string]*snapRole{},
		arnByFold:     map[string]*snapRole{},
		profileByName: map[string]int{},
		profileByFold: map[string]int{},
		profilesOf:    map[string][]int{},
	}

	// Managed policies, default version only.
	managed := map[string]*Policy{}
	for i, p := range all.Policies {
		where := fmt.Sprintf("Policies[%d] (policy %q)", i, p.PolicyName)
		if p.Arn == "" {
			return nil, fmt.Errorf("%s: no Arn", where)
		}
		var doc json.RawMessage
		found := false
		for j, v := range p.PolicyVersionList {
			if v.IsDefaultVersion || (p.DefaultVersionId != "" && v.VersionId == p.DefaultVersionId) {
				if found {
					return nil, fmt.Errorf("%s: PolicyVersionList[%d]: a second default version", where, j)
				}
				doc, found = v.Document, true
				where = fmt.Sprintf("%s: PolicyVersionList[%d] (version %q)", where, j, v.VersionId)
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no default version in PolicyVersionList (DefaultVersionId %q)", where, p.DefaultVersionId)
		}
		pol, err := ParsePolicy(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: Document: %w", where, err)
		}
		managed[p.Arn] = pol
	}
	s.managed = managed

	// Roles.
	for i, rd := range all.RoleDetailList {
		where := fmt.Sprintf("RoleDetailList[%d] (role %q)", i, rd.RoleName)
		if rd.RoleName == "" {
			return nil, fmt.Errorf("RoleDetailList[%d]: no RoleName", i)
		}
		if rd.Arn == "" {
			return nil, fmt.Errorf("%s: no Arn", where)
		}
		if _, dup := s.roleByName[rd.RoleName]; dup {
			return nil, fmt.Errorf("%s: role listed twice", where)
		}
		sr := &snapRole{role: Role{Name: rd.RoleName, Path: normalisePath(rd.Path), ARN: rd.Arn}}
		if present(rd.AssumeRolePolicyDocument) {
			trust, err := ParsePolicy(rd.AssumeRolePolicyDocument)
			if err != nil {
				return nil, fmt.Errorf("%s: AssumeRolePolicyDocument: %w", where, err)
			}
			sr.role.Trust = trust
		}
		for j, inline := range rd.RolePolicyList {
			pol, err := ParsePolicy(inline.PolicyDocument)
			if err != nil {
				return nil, fmt.Errorf("%s: RolePolicyList[%d] (policy %q): PolicyDocument: %w", where, j, inline.PolicyName, err)
			}
			sr.set.Identity = append(sr.set.Identity, NamedPolicy{Name: inline.PolicyName, Policy: pol})
		}
		for j, att := range rd.AttachedManagedPolicies {
			if att.PolicyArn == "" {
				return nil, fmt.Errorf("%s: AttachedManagedPolicies[%d] (policy %q): no PolicyArn", where, j, att.PolicyName)
			}
			if pol, ok := managed[att.PolicyArn]; ok {
				sr.set.Identity = append(sr.set.Identity, NamedPolicy{Name: att.PolicyArn, Policy: pol})
			} else {
				sr.missing = append(sr.missing, att.PolicyArn)
			}
		}
		if b := rd.PermissionsBoundary; b != nil && b.PermissionsBoundaryArn != "" {
			sr.boundaryARN = b.PermissionsBoundaryArn
			if pol, ok := managed[b.PermissionsBoundaryArn]; ok {
				sr.set.Boundary = &NamedPolicy{Name: b.PermissionsBoundaryArn, Policy: pol}
			} else {
				sr.missing = append(sr.missing, b.PermissionsBoundaryArn)
			}
		}
		s.addRole(sr)
	}
	// Instance profiles: the union of the roles' InstanceProfileList and
	// the list-instance-profiles array, merged by name.
	type merged struct {
		name, path, arn string
		roles           []Role
	}
	byName := map[string]*merged{}
	var order []string
	add := func(where string, pd profileDetail) error {
		if pd.InstanceProfileName == "" {
			return fmt.Errorf("%s: no InstanceProfileName", where)
		}
		m := byName[pd.InstanceProfileName]
		if m == nil {
			m = &merged{name: pd.InstanceProfileName}
			byName[pd.InstanceProfileName] = m
			order = append(order, pd.InstanceProfileName)
		}
		if m.path == "" {
			m.path = pd.Path
		}
		if m.arn == "" {
			m.arn = pd.Arn
		}
	roles:
		for j, pr := range pd.Roles {
			if pr.RoleName == "" {
				return fmt.Errorf("%s: Roles[%d]: no RoleName", where, j)
			}
			for _, have := range m.roles {
				if have.Name == pr.RoleName {
					continue roles
				}
			}
			if known, ok := s.roleByName[pr.RoleName]; ok {
				m.roles = append(m.roles, known.role)
				continue
			}
			// A role known only through the profile (list-instance-profiles
			// output without the role's details).
			sr := &snapRole{role: Role{Name: pr.RoleName, Path: normalisePath(pr.Path), ARN: pr.Arn}, profileOnly: true}
			if present(pr.AssumeRolePolicyDocument) {
				trust, err := ParsePolicy(pr.AssumeRolePolicyDocument)
				if err != nil {
					return fmt.Errorf("%s: Roles[%d] (role %q): AssumeRolePolicyDocument: %w", where, j, pr.RoleName, err)
				}
				sr.role.Trust = trust
			}
			s.addRole(sr)
			m.roles = append(m.roles, sr.role)
		}
		return nil
	}
	for i, rd := range all.RoleDetailList {
		for j, pd := range rd.InstanceProfileList {
			if err := add(fmt.Sprintf("RoleDetailList[%d] (role %q): InstanceProfileList[%d] (instance profile %q)", i, rd.RoleName, j, pd.InstanceProfileName), pd); err != nil {
				return nil, err
			}
		}
	}
	for i, pd := range all.InstanceProfiles {
		if err := add(fmt.Sprintf("InstanceProfiles[%d] (instance profile %q)", i, pd.InstanceProfileName), pd); err != nil {
			return nil, err
		}
	}
	sort.Slice(s.roles, func(i, j int) bool { return s.roles[i].role.Name < s.roles[j].role.Name })
	sort.Strings(order)
	for _, name := range order {
		m := byName[name]
		if m.arn == "" {
			return nil, fmt.Errorf("instance profile %q: no Arn", name)
		}
		idx := len(s.profiles)
		s.profiles = append(s.profiles, InstanceProfile{Name: m.name, Path: normalisePath(m.path), ARN: m.arn, Roles: m.roles})
		s.profileByName[m.name] = idx
		s.profileByFold[strings.ToLower(m.name)] = idx
		for _, r := range m.roles {
			s.profilesOf[r.Name] = append(s.profilesOf[r.Name], idx)
		}
	}
	return s, nil
}

// addRole registers a role in the lookup tables.
func (s *Snapshot) addRole(sr *snapRole) {
	s.roles = append(s.roles, sr)
	s.roleByName[sr.role.Name] = sr
	s.roleByFold[strings.ToLower(sr.role.Name)] = sr
	if sr.role.ARN != "" {
		s.roleByARN[sr.role.ARN] = sr
		s.arnByFold[strings.ToLower(sr.role.ARN)] = sr
	}
}

// present reports whether an optional JSON field holds a value.
func present(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && string(raw) != "null"
}

// normalisePath gives IAM's default path "/" to entities printed without one.
func normalisePath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// Source returns the name the snapshot was loaded from.
func (s *Snapshot) Source() string { return s.source }

// Role returns the role with that name (no path).
func (s *Snapshot) Role(_ context.Context, name string) (Role, error) {
	if sr := s.roleNamed(name); sr != nil {
		return sr.role, nil
	}
	return Role{}, &NotFoundError{Kind: "role", Name: name}
}

func (s *Snapshot) roleNamed(name string) *snapRole {
	if sr, ok := s.roleByName[name]; ok {
		return sr
	}
	return s.roleByFold[strings.ToLower(name)]
}

// InstanceProfile returns the instance profile with that name (no path).
func (s *Snapshot) InstanceProfile(_ context.Context, name string) (InstanceProfile, error) {
	i, ok := s.profileByName[name]
	if !ok {
		i, ok = s.profileByFold[strings.ToLower(name)]
	}
	if !ok {
		return InstanceProfile{}, &NotFoundError{Kind: "instance profile", Name: name}
	}
	return copyProfile(s.profiles[i]), nil
}

// copyProfile copies the Roles slice so that callers cannot change the
// snapshot through it.
func copyProfile(p InstanceProfile) InstanceProfile {
	p.Roles = append([]Role(nil), p.Roles...)
	return p
}

// RoleByARN returns the role with that ARN. Role ARNs (path included) are
// matched exactly, then case-insensitively; an STS assumed-role ARN is
// matched by its role name and account.
func (s *Snapshot) RoleByARN(arn string) (Role, bool) {
	sr := s.roleByPrincipal(arn)
	if sr == nil {
		return Role{}, false
	}
	return sr.role, true
}

func (s *Snapshot) roleByPrincipal(arn string) *snapRole {
	if sr, ok := s.roleByARN[arn]; ok {
		return sr
	}
	if sr, ok := s.arnByFold[strings.ToLower(arn)]; ok {
		return sr
	}
	if IsAssumedRoleARN(arn) {
		ra, err := ParseRoleARN(arn)
		if err != nil {
			return nil
		}
		sr := s.roleNamed(ra.Name)
		if sr == nil {
			return nil
		}
		if own, err := ParseRoleARN(sr.role.ARN); err != nil || own.Account != ra.Account || own.Partition != ra.Partition {
			return nil
		}
		return sr
	}
	return nil
}

// InstanceProfilesForRole returns the instance profiles holding the role,
// sorted by name.
func (s *Snapshot) InstanceProfilesForRole(roleName string) []InstanceProfile {
	idx, ok := s.profilesOf[roleName]
	if !ok {
		if sr := s.roleNamed(roleName); sr != nil {
			idx = s.profilesOf[sr.role.Name]
		}
	}
	out := make([]InstanceProfile, 0, len(idx))
	for _, i := range idx {
		out = append(out, copyProfile(s.profiles[i]))
	}
	return out
}

// Roles returns every role in the snapshot, sorted by name.
func (s *Snapshot) Roles() []Role {
	out := make([]Role, len(s.roles))
	for i, sr := range s.roles {
		out[i] = sr.role
	}
	return out
}

// InstanceProfiles returns every instance profile, sorted by name.
func (s *Snapshot) InstanceProfiles() []InstanceProfile {
	out := make([]InstanceProfile, len(s.profiles))
	for i, p := range s.profiles {
		out[i] = copyProfile(p)
	}
	return out
}

// PolicySet returns the policies IAM would evaluate for the role (as
// RoleByARN finds it), for the local IAM endpoint's
// SimulatePrincipalPolicy. ok is false when the role is unknown or the
// snapshot lacks its policies (a managed policy missing from Policies, or a
// role seen only inside an instance profile).
func (s *Snapshot) PolicySet(roleARN string) (PolicySet, bool) {
	sr := s.roleByPrincipal(roleARN)
	if sr == nil || sr.incomplete() != "" {
		return PolicySet{}, false
	}
	return sr.set, true
}

// Decide evaluates q against the principal's policies. An unknown
// principal is a *NotFoundError of kind "role" naming the ARN; a role whose
// policies are missing from the file is an error asking for a complete
// snapshot, since any answer would be a guess.
func (s *Snapshot) Decide(_ context.Context, q Question) (Decision, error) {
	sr := s.roleByPrincipal(q.Principal)
	if sr == nil {
		return Decision{}, &NotFoundError{Kind: "role", Name: q.Principal}
	}
	if why := sr.incomplete(); why != "" {
		return Decision{}, fmt.Errorf("%s: role %q %s: cannot evaluate its permissions; regenerate the snapshot with `aws iam get-account-authorization-details` without --filter",
			s.source, sr.role.Name, why)
	}
	return Evaluate(sr.set, q), nil
}

// RolePolicyNames returns what IAM's ListRolePolicies and
// ListAttachedRolePolicies list for the role (as Role finds it): its
// inline policies with their documents, and the ARNs of its attached
// managed policies, including any the file lacks; and its boundary's ARN.
func (s *Snapshot) RolePolicyNames(roleName string) (inline []NamedPolicy, attached []string, boundary string, ok bool) {
	sr := s.roleNamed(roleName)
	if sr == nil {
		return nil, nil, "", false
	}
	for _, np := range sr.set.Identity {
		if isManagedPolicyARN(np.Name) {
			attached = append(attached, np.Name)
		} else {
			inline = append(inline, np)
		}
	}
	for _, m := range sr.missing {
		if m != sr.boundaryARN {
			attached = append(attached, m)
		}
	}
	return inline, attached, sr.boundaryARN, true
}

// ManagedPolicy returns the file's managed policy with that ARN (its
// default version).
func (s *Snapshot) ManagedPolicy(arn string) (*Policy, bool) {
	p, ok := s.managed[arn]
	return p, ok
}

// TestsConditionKey reports whether a policy of principal in the snapshot
// (identity or boundary) tests the condition key key; ok is false when
// the snapshot does not hold the role whole.
func (s *Snapshot) TestsConditionKey(_ context.Context, principal, key string) (tests, ok bool) {
	sr := s.roleByPrincipal(principal)
	if sr == nil || sr.incomplete() != "" {
		return false, false
	}
	policies := sr.set.Identity
	if sr.set.Boundary != nil {
		policies = append(policies[:len(policies):len(policies)], *sr.set.Boundary)
	}
	for _, np := range policies {
		if np.Policy == nil {
			continue
		}
		for _, k := range np.Policy.conditionKeys() {
			if strings.EqualFold(k, key) {
				return true, true
			}
		}
	}
	return false, true
}
