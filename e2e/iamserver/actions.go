package iamserver

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// createDate is the CreateDate of every entity: a snapshot does not carry
// one, and a fixed date keeps answers reproducible.
const createDate = "2024-01-15T09:30:00Z"

// namePattern is IAM's rule for role and instance profile names.
var namePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)

// validName checks a name parameter the way IAM's request validation does,
// answering ValidationError when it fails; it reports whether to go on.
func (c *call) validName(param, field string, max int) (string, bool) {
	v := c.r.Form.Get(param)
	switch {
	case v == "":
		c.fail(http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field))
		return "", false
	case len(v) > max:
		c.fail(http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", v, field, max))
		return "", false
	case !namePattern.MatchString(v):
		c.fail(http.StatusBadRequest, "Sender", "ValidationError",
			fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", v, field))
		return "", false
	}
	return v, true
}

func (c *call) getRole() {
	name, ok := c.validName("RoleName", "roleName", 64)
	if !ok {
		return
	}
	role, err := c.snap.Role(context.Background(), name)
	if err != nil {
		c.noSuchRole(name)
		return
	}
	var out getRoleResponse
	out.Result.Role = c.roleXML(role)
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

func (c *call) noSuchRole(name string) {
	c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("The role with name %s cannot be found.", name))
}

func (c *call) getInstanceProfile() {
	name, ok := c.validName("InstanceProfileName", "instanceProfileName", 128)
	if !ok {
		return
	}
	p, err := c.snap.InstanceProfile(context.Background(), name)
	if err != nil {
		c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("Instance Profile %s cannot be found.", name))
		return
	}
	var out getInstanceProfileResponse
	out.Result.InstanceProfile = c.profileXML(p)
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

func (c *call) listInstanceProfilesForRole() {
	name, ok := c.validName("RoleName", "roleName", 64)
	if !ok {
		return
	}
	role, err := c.snap.Role(context.Background(), name)
	if err != nil {
		c.noSuchRole(name)
		return
	}
	profiles := c.snap.InstanceProfilesForRole(role.Name)
	from, to, next, ok := c.page(len(profiles))
	if !ok {
		return
	}
	var out listInstanceProfilesForRoleResponse
	for _, p := range profiles[from:to] {
		out.Result.InstanceProfiles.Members = append(out.Result.InstanceProfiles.Members, c.profileXML(p))
	}
	out.Result.IsTruncated, out.Result.Marker = next != "", next
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

// page applies MaxItems (1..1000, default 100) and Marker to a list of n
// items; the marker is opaque to clients, as IAM's is.
func (c *call) page(n int) (from, to int, next string, ok bool) {
	max := 100
	if v := c.r.Form.Get("MaxItems"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 || m > 1000 {
			c.fail(http.StatusBadRequest, "Sender", "ValidationError",
				fmt.Sprintf("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v))
			return 0, 0, "", false
		}
		max = m
	}
	if v := c.r.Form.Get("Marker"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		off, convErr := strconv.Atoi(strings.TrimPrefix(string(raw), "offset:"))
		if err != nil || convErr != nil || !strings.HasPrefix(string(raw), "offset:") || off < 0 || off > n {
			c.fail(http.StatusBadRequest, "Sender", "InvalidInput", "Invalid Marker.")
			return 0, 0, "", false
		}
		from = off
	}
	to = min(from+max, n)
	if to < n {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(to)))
	}
	return from, to, next, true
}

func (c *call) roleXML(r authz.Role) roleXML {
	x := roleXML{
		Path:               r.Path,
		RoleName:           r.Name,
		RoleID:             entityID("AROA", r.ARN),
		Arn:                r.ARN,
		CreateDate:         createDate,
		MaxSessionDuration: 3600,
	}
	if r.Trust != nil {
		// IAM percent-encodes documents (spaces as %20, not '+').
		x.AssumeRolePolicyDocument = strings.ReplaceAll(url.QueryEscape(r.Trust.Document()), "+", "%20")
	}
	if set, ok := c.snap.PolicySet(r.ARN); ok && set.Boundary != nil {
		x.PermissionsBoundary = &boundaryXML{PermissionsBoundaryType: "Policy", PermissionsBoundaryArn: set.Boundary.Name}
	}
	return x
}

func (c *call) profileXML(p authz.InstanceProfile) instanceProfileXML {
	x := instanceProfileXML{
		InstanceProfileID:   entityID("AIPA", p.ARN),
		InstanceProfileName: p.Name,
		Path:                p.Path,
		Arn:                 p.ARN,
		CreateDate:          createDate,
	}
	for _, r := range p.Roles {
		x.Roles.Members = append(x.Roles.Members, c.roleXML(r))
	}
	return x
}

// entityID derives a stable IAM-style unique ID (prefix + 17 characters)
// from an ARN.
func entityID(prefix, arn string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	h := fnv.New64a()
	h.Write([]byte(arn))
	sum := h.Sum64()
	b := []byte(prefix)
	for i := 0; i < 17; i++ {
		b = append(b, alphabet[sum%32])
		sum = sum/32 ^ uint64(i)*0x9e3779b97f4a7c15
	}
	return string(b)
}

// simulatePrincipalPolicy answers from the principal's PolicySet with
// authz.Evaluate: one EvaluationResult per action, each with one
// ResourceSpecificResult per resource, paged over actions.
func (c *call) simulatePrincipalPolicy() {
	source := c.r.Form.Get("PolicySourceArn")
	if source == "" {
		c.fail(http.StatusBadRequest, "Sender", "ValidationError",
			"1 validation error detected: Value null at 'policySourceArn' failed to satisfy constraint: Member must not be null")
		return
	}
	role, ok := c.principal(source)
	if !ok {
		return
	}
	set, ok := c.snap.PolicySet(role.ARN)
	if !ok {
		c.fail(http.StatusInternalServerError, "Receiver", "ServiceFailure",
			fmt.Sprintf("The local IAM endpoint's snapshot lacks managed policies of role %s.", role.Name))
		return
	}
	actions := members(c.r.Form, "ActionNames")
	if len(actions) == 0 {
		c.fail(http.StatusBadRequest, "Sender", "ValidationError",
			"1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null")
		return
	}
	resources := members(c.r.Form, "ResourceArns")
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	qctx, err := contextEntries(c.r.Form)
	if err != nil {
		c.fail(http.StatusBadRequest, "Sender", "InvalidInput", err.Error())
		return
	}
	from, to, next, ok := c.page(len(actions))
	if !ok {
		return
	}
	org := c.s.organization(c.snap)
	if c.scpInjected(org, actions[from:to]) {
		return
	}
	var out simulatePrincipalPolicyResponse
	for _, action := range actions[from:to] {
		out.Result.EvaluationResults.Members = append(out.Result.EvaluationResults.Members,
			c.s.evaluate(set, org, role.ARN, action, resources, qctx))
	}
	out.Result.IsTruncated, out.Result.Marker = next != "", next
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

// principal resolves PolicySourceArn to a role of the snapshot, answering
// as IAM does when it cannot: InvalidInput for what is not a user, group
// or role ARN (an STS assumed-role ARN included), NoSuchEntity for an
// unknown one.
func (c *call) principal(source string) (authz.Role, bool) {
	a, err := authz.ParseARN(source)
	if err != nil || a.Service != "iam" {
		c.fail(http.StatusBadRequest, "Sender", "InvalidInput", fmt.Sprintf("Invalid ARN: %s", source))
		return authz.Role{}, false
	}
	kind, rest, _ := strings.Cut(a.Resource, "/")
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	switch kind {
	case "role":
		if r, ok := c.snap.RoleByARN(source); ok {
			return r, true
		}
		c.noSuchRole(name)
	case "user", "group":
		c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("The %s with name %s cannot be found.", kind, name))
	default:
		c.fail(http.StatusBadRequest, "Sender", "InvalidInput", fmt.Sprintf("Invalid ARN: %s", source))
	}
	return authz.Role{}, false
}

// members reads a Query-protocol list: NAME.member.1, NAME.member.2, ...
func members(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.member.%d", name, i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// contextEntries reads ContextEntries.member.N.{ContextKeyName,
// ContextKeyType, ContextKeyValues.member.M}.
func contextEntries(form url.Values) (map[string][]string, error) {
	out := map[string][]string{}
	for i := 1; ; i++ {
		prefix := fmt.Sprintf("ContextEntries.member.%d.", i)
		key := form.Get(prefix + "ContextKeyName")
		if key == "" {
			if _, ok := form[prefix+"ContextKeyValues.member.1"]; ok {
				return nil, fmt.Errorf("context entry %d has values but no ContextKeyName", i)
			}
			return out, nil
		}
		values := members(form, prefix+"ContextKeyValues")
		typ := form.Get(prefix + "ContextKeyType")
		if typ == "" {
			return nil, fmt.Errorf("context entry %d (%s) has no ContextKeyType", i, key)
		}
		if !strings.HasSuffix(typ, "List") && len(values) != 1 {
			return nil, fmt.Errorf("context entry %d (%s) of type %s must have exactly one value, has %d", i, key, typ, len(values))
		}
		out[key] = values
	}
}

// evaluate answers one action for every resource. With org (the account
// in an organization) the SCPs count as IAM counts them: a request they
// do not allow is denied (explicitly when an SCP's Deny matched), the
// result carries OrganizationsDecisionDetail, and the keys their matching
// statements test that the request lacks are reported missing.
func (s *Server) evaluate(set authz.PolicySet, org *authz.Organization, principal, action string, resources []string, qctx map[string][]string) evaluationResultXML {
	res := evaluationResultXML{EvalActionName: action, EvalResourceName: "*"}
	if len(resources) == 1 {
		res.EvalResourceName = resources[0]
	}
	top := "allowed"
	boundaryAllows, orgsAllow := true, true
	seen := map[statementXML]bool{}
	for _, resource := range resources {
		q := authz.Question{Principal: principal, Action: action, Resource: resource, Context: qctx}
		d := authz.Evaluate(set, q)
		rr := resourceResultXML{EvalResourceName: resource, EvalResourceDecision: decisionName(d)}
		rr.MatchedStatements.Members = s.matchedStatements(set, q, d)
		rr.MissingContextValues.Members = d.MissingContext
		if org != nil {
			sd := authz.EvaluateSCPs(org, q)
			orgsAllow = orgsAllow && sd.Allowed
			switch {
			case sd.Explicit && rr.EvalResourceDecision != "explicitDeny":
				rr.EvalResourceDecision = "explicitDeny"
				rr.MatchedStatements.Members = nil
			case !sd.Allowed && rr.EvalResourceDecision == "allowed":
				rr.EvalResourceDecision = "implicitDeny"
				rr.MatchedStatements.Members = nil
			}
			for _, k := range sd.Referenced {
				if !contains(rr.MissingContextValues.Members, k) {
					rr.MissingContextValues.Members = append(rr.MissingContextValues.Members, k)
				}
			}
			d.MissingContext = rr.MissingContextValues.Members
		}
		if set.Boundary != nil {
			allowed := authz.Evaluate(authz.PolicySet{Identity: []authz.NamedPolicy{*set.Boundary}}, q).Allowed
			rr.PermissionsBoundaryDecisionDetail = &boundaryDecisionXML{AllowedByPermissionsBoundary: allowed}
			boundaryAllows = boundaryAllows && allowed
		}
		switch {
		case rr.EvalResourceDecision == "explicitDeny":
			top = "explicitDeny"
		case rr.EvalResourceDecision == "implicitDeny" && top == "allowed":
			top = "implicitDeny"
		}
		for _, st := range rr.MatchedStatements.Members {
			if !seen[positionless(st)] {
				seen[positionless(st)] = true
				res.MatchedStatements.Members = append(res.MatchedStatements.Members, st)
			}
		}
		for _, k := range d.MissingContext {
			if !contains(res.MissingContextValues.Members, k) {
				res.MissingContextValues.Members = append(res.MissingContextValues.Members, k)
			}
		}
		res.ResourceSpecificResults.Members = append(res.ResourceSpecificResults.Members, rr)
	}
	res.EvalDecision = top
	if org != nil {
		res.OrganizationsDecisionDetail = &organizationsDecisionXML{AllowedByOrganizations: orgsAllow}
	}
	if set.Boundary != nil {
		res.PermissionsBoundaryDecisionDetail = &boundaryDecisionXML{AllowedByPermissionsBoundary: boundaryAllows}
	}
	return res
}

// positionless is a statement's identity for deduplication (positions are
// pointers).
func positionless(st statementXML) statementXML {
	key := statementXML{SourcePolicyID: st.SourcePolicyID, SourcePolicyType: st.SourcePolicyType}
	if st.StartPosition != nil {
		key.SourcePolicyID += fmt.Sprintf("@%d:%d", st.StartPosition.Line, st.StartPosition.Column)
	}
	return key
}

func decisionName(d authz.Decision) string {
	switch {
	case d.Allowed:
		return "allowed"
	case d.Explicit:
		return "explicitDeny"
	default:
		return "implicitDeny"
	}
}

// matchedStatements lists what IAM lists: for an explicit deny the deny
// statement alone; for an allow every identity statement that allows on
// its own; for an implicit deny nothing.
func (s *Server) matchedStatements(set authz.PolicySet, q authz.Question, d authz.Decision) []statementXML {
	switch {
	case d.Explicit:
		all := append([]authz.NamedPolicy(nil), set.Identity...)
		if set.Boundary != nil {
			all = append(all, *set.Boundary)
		}
		for _, np := range all {
			if np.Name != d.DeniedBy.Policy || np.Policy == nil {
				continue
			}
			for i := range np.Policy.Statements {
				if np.Policy.Statements[i].Label() == d.DeniedBy.Statement {
					return []statementXML{statementOf(np, i)}
				}
			}
		}
		return nil
	case d.Allowed:
		var out []statementXML
		for _, np := range set.Identity {
			if np.Policy == nil {
				continue
			}
			for i, st := range np.Policy.Statements {
				if st.Effect != authz.Allow {
					continue
				}
				one := &authz.Policy{Version: np.Policy.Version, Statements: []authz.Statement{st}}
				if authz.Evaluate(authz.PolicySet{Identity: []authz.NamedPolicy{{Name: np.Name, Policy: one}}}, q).Allowed {
					out = append(out, statementOf(np, i))
				}
			}
		}
		return out
	}
	return nil
}

// statementOf describes statement i of np as IAM's simulator does: the
// policy's name as SourcePolicyId, its kind as SourcePolicyType ("role" for
// an inline role policy, aws-managed or user-managed for a managed one),
// and the statement's position in the document.
func statementOf(np authz.NamedPolicy, i int) statementXML {
	st := statementXML{SourcePolicyID: np.Name, SourcePolicyType: "role"}
	if a, err := authz.ParseARN(np.Name); err == nil && strings.HasPrefix(a.Resource, "policy/") {
		st.SourcePolicyID = a.Resource[strings.LastIndexByte(a.Resource, '/')+1:]
		st.SourcePolicyType = "user-managed"
		if a.Account == "aws" {
			st.SourcePolicyType = "aws-managed"
		}
	}
	if spans := cachedSpans(np.Policy); i < len(spans) {
		st.StartPosition = &positionXML{Line: spans[i].start.line, Column: spans[i].start.col}
		st.EndPosition = &positionXML{Line: spans[i].end.line, Column: spans[i].end.col}
	}
	return st
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func cachedSpans(p *authz.Policy) []span {
	var out []span
	for _, s := range p.Spans() {
		out = append(out, span{pos{s.Start.Line, s.Start.Col}, pos{s.End.Line, s.End.Col}})
	}
	return out
}

// policyText is a document as IAM returns it: percent-encoded (spaces as
// %20).
func policyText(p *authz.Policy) string {
	return strings.ReplaceAll(url.QueryEscape(p.Document()), "+", "%20")
}

// policyVersion is the one version of every managed policy served.
const policyVersion = "v1"

func (c *call) listRolePolicies() {
	name, ok := c.validName("RoleName", "roleName", 64)
	if !ok {
		return
	}
	role, err := c.snap.Role(context.Background(), name)
	if err != nil {
		c.noSuchRole(name)
		return
	}
	inline, _, _, _ := c.snap.RolePolicyNames(role.Name)
	from, to, next, ok := c.page(len(inline))
	if !ok {
		return
	}
	var out listRolePoliciesResponse
	for _, np := range inline[from:to] {
		out.Result.PolicyNames.Members = append(out.Result.PolicyNames.Members, np.Name)
	}
	out.Result.IsTruncated, out.Result.Marker = next != "", next
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

func (c *call) getRolePolicy() {
	name, ok := c.validName("RoleName", "roleName", 64)
	if !ok {
		return
	}
	policyName, ok := c.validName("PolicyName", "policyName", 128)
	if !ok {
		return
	}
	role, err := c.snap.Role(context.Background(), name)
	if err != nil {
		c.noSuchRole(name)
		return
	}
	inline, _, _, _ := c.snap.RolePolicyNames(role.Name)
	for _, np := range inline {
		if np.Name != policyName || np.Policy == nil {
			continue
		}
		var out getRolePolicyResponse
		out.Result.RoleName, out.Result.PolicyName, out.Result.PolicyDocument = role.Name, np.Name, policyText(np.Policy)
		out.ResponseMetadata.RequestID = c.requestID
		c.reply(out)
		return
	}
	c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("The role policy with name %s cannot be found.", policyName))
}

func (c *call) listAttachedRolePolicies() {
	name, ok := c.validName("RoleName", "roleName", 64)
	if !ok {
		return
	}
	role, err := c.snap.Role(context.Background(), name)
	if err != nil {
		c.noSuchRole(name)
		return
	}
	_, attached, _, _ := c.snap.RolePolicyNames(role.Name)
	from, to, next, ok := c.page(len(attached))
	if !ok {
		return
	}
	var out listAttachedRolePoliciesResponse
	for _, arn := range attached[from:to] {
		out.Result.AttachedPolicies.Members = append(out.Result.AttachedPolicies.Members, attachedPolicyXML{PolicyName: arn[strings.LastIndexByte(arn, '/')+1:], PolicyArn: arn})
	}
	out.Result.IsTruncated, out.Result.Marker = next != "", next
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

// managedPolicy finds the PolicyArn parameter's policy, answering as IAM
// does when it cannot.
func (c *call) managedPolicy() (string, *authz.Policy, bool) {
	arn := c.r.Form.Get("PolicyArn")
	if arn == "" {
		c.fail(http.StatusBadRequest, "Sender", "ValidationError",
			"1 validation error detected: Value null at 'policyArn' failed to satisfy constraint: Member must not be null")
		return "", nil, false
	}
	if a, err := authz.ParseARN(arn); err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "policy/") {
		c.fail(http.StatusBadRequest, "Sender", "InvalidInput", fmt.Sprintf("ARN %s is not valid.", arn))
		return "", nil, false
	}
	p, ok := c.snap.ManagedPolicy(arn)
	if !ok {
		c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("Policy %s was not found.", arn))
		return "", nil, false
	}
	return arn, p, true
}

func (c *call) getPolicy() {
	arn, _, ok := c.managedPolicy()
	if !ok {
		return
	}
	a, _ := authz.ParseARN(arn)
	path := "/"
	if i := strings.LastIndexByte(a.Resource, '/'); i > len("policy") {
		path = a.Resource[len("policy") : i+1]
	}
	var out getPolicyResponse
	out.Result.Policy = policyXML{
		PolicyName:       arn[strings.LastIndexByte(arn, '/')+1:],
		PolicyID:         entityID("ANPA", arn),
		Arn:              arn,
		Path:             path,
		DefaultVersionID: policyVersion,
		AttachmentCount:  1,
		IsAttachable:     true,
		CreateDate:       createDate,
		UpdateDate:       createDate,
	}
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

func (c *call) getPolicyVersion() {
	arn, p, ok := c.managedPolicy()
	if !ok {
		return
	}
	if v := c.r.Form.Get("VersionId"); v != policyVersion {
		c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("Policy %s version %s does not exist or is not attachable.", arn, v))
		return
	}
	var out getPolicyVersionResponse
	out.Result.PolicyVersion.Document = policyText(p)
	out.Result.PolicyVersion.VersionID = policyVersion
	out.Result.PolicyVersion.IsDefaultVersion = true
	out.Result.PolicyVersion.CreateDate = createDate
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}
