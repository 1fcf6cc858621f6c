package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Policy is a parsed IAM policy document: an identity policy, a permissions
// boundary or a role's trust policy. It is immutable once parsed and safe
// for concurrent use; its statements are compiled (actions lower-cased,
// wildcards split) so that Evaluate allocates little.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
	// doc is the document's JSON text, URL-decoded.
	doc []byte
}

// Effect is a statement's Effect element.
type Effect string

// Effect values; anything else is a parse error.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Statement is one statement of a policy. The exported fields hold the
// elements as written (single strings normalised to one-element lists,
// condition values normalised to strings); evaluation uses the compiled
// forms alongside.
type Statement struct {
	Sid    string
	Effect Effect
	// Principal and NotPrincipal are nil when the element is absent (as in
	// identity policies).
	Principal    *Principals
	NotPrincipal *Principals
	// Exactly one of Action and NotAction is set.
	Action    []string
	NotAction []string
	// At most one of Resource and NotResource is set; trust policies have
	// neither.
	Resource    []string
	NotResource []string
	// Condition maps operator -> condition key -> values, as written.
	Condition map[string]map[string][]string

	// index is the statement's position in the document.
	index      int
	actions    []pattern
	notAction  bool
	resources  []pattern
	notRes     bool
	noResource bool
	conditions []condClause
}

// Label names the statement for messages: its Sid, or "#<index>" when it
// has none.
func (s *Statement) Label() string {
	if s.Sid != "" {
		return s.Sid
	}
	return fmt.Sprintf("#%d", s.index)
}

// Principals is a Principal or NotPrincipal element.
type Principals struct {
	// Any is set for "*" (and for {"AWS": "*"}).
	Any           bool
	AWS           []string
	Service       []string
	Federated     []string
	CanonicalUser []string
}

// ParsePolicy parses a policy document. doc may be the JSON object itself
// (as the AWS CLI prints it), a URL-encoded JSON document (as the raw IAM
// API returns it), or a JSON string holding either. Errors name the
// statement (index and Sid) and the element at fault.
func ParsePolicy(doc []byte) (*Policy, error) {
	text, err := policyText(doc)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Version   string
		Id        string
		Statement json.RawMessage
	}
	if err := json.Unmarshal(text, &raw); err != nil {
		return nil, fmt.Errorf("policy document: %w", err)
	}
	p := &Policy{Version: raw.Version, ID: raw.Id, doc: text}
	stmt := bytes.TrimSpace(raw.Statement)
	switch {
	case len(stmt) == 0 || string(stmt) == "null":
		return nil, errors.New("policy document has no Statement")
	case stmt[0] == '{':
		s, err := parseStatement(stmt, 0)
		if err != nil {
			return nil, fmt.Errorf("Statement%s", err)
		}
		p.Statements = []Statement{s}
	case stmt[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(stmt, &list); err != nil {
			return nil, fmt.Errorf("Statement: %w", err)
		}
		p.Statements = make([]Statement, 0, len(list))
		for i, one := range list {
			s, err := parseStatement(one, i)
			if err != nil {
				return nil, fmt.Errorf("Statement[%d]%s", i, err)
			}
			p.Statements = append(p.Statements, s)
		}
	default:
		return nil, fmt.Errorf("Statement is %s; want an object or a list of objects", jsonKind(stmt))
	}
	return p, nil
}

// policyText turns the accepted spellings of a document into JSON object
// text.
func policyText(doc []byte) ([]byte, error) {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 {
		return nil, errors.New("policy document is empty")
	}
	if doc[0] == '"' {
		var s string
		if err := json.Unmarshal(doc, &s); err != nil {
			return nil, fmt.Errorf("policy document string: %w", err)
		}
		doc = bytes.TrimSpace([]byte(s))
		if len(doc) == 0 {
			return nil, errors.New("policy document is an empty string")
		}
	}
	if doc[0] == '{' {
		return doc, nil
	}
	if doc[0] == '%' {
		// IAM URL-encodes documents per RFC 3986, so '+' is a literal plus
		// (PathUnescape), not a space (QueryUnescape).
		s, err := url.PathUnescape(string(doc))
		if err != nil {
			return nil, fmt.Errorf("URL-encoded policy document: %w", err)
		}
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "{") {
			return []byte(s), nil
		}
	}
	return nil, fmt.Errorf("policy document is neither a JSON object nor URL-encoded JSON (starts with %q)", abbreviate(string(doc), 20))
}

// Document returns the policy's JSON text (URL-decoded, as written).
func (p *Policy) Document() string { return string(p.doc) }

// MarshalJSON writes the document as a JSON object.
func (p *Policy) MarshalJSON() ([]byte, error) {
	if p == nil || len(p.doc) == 0 {
		return []byte("null"), nil
	}
	return p.doc, nil
}

// UnmarshalJSON accepts a document as a JSON object or as a JSON string
// holding URL-encoded JSON, so that structures decoding IAM output can
// declare a *Policy field whichever way the tool printed it.
func (p *Policy) UnmarshalJSON(b []byte) error {
	parsed, err := ParsePolicy(b)
	if err != nil {
		return err
	}
	*p = *parsed
	return nil
}

// rawStatement is a statement before normalisation.
type rawStatement struct {
	Sid          string
	Effect       string
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
	Action       json.RawMessage
	NotAction    json.RawMessage
	Resource     json.RawMessage
	NotResource  json.RawMessage
	Condition    map[string]map[string]json.RawMessage
}

// parseStatement parses and compiles statement i. Its errors start with
// " (Sid ...): " or ": " so that the caller can prefix the position.
func parseStatement(b []byte, i int) (Statement, error) {
	var raw rawStatement
	if err := json.Unmarshal(b, &raw); err != nil {
		return Statement{}, fmt.Errorf(": %w", err)
	}
	where := ": "
	if raw.Sid != "" {
		where = fmt.Sprintf(" (Sid %q): ", raw.Sid)
	}
	fail := func(format string, args ...any) (Statement, error) {
		return Statement{}, fmt.Errorf(where+format, args...)
	}
	s := Statement{Sid: raw.Sid, index: i}
	switch Effect(raw.Effect) {
	case Allow, Deny:
		s.Effect = Effect(raw.Effect)
	default:
		return fail("Effect %q is neither Allow nor Deny", raw.Effect)
	}
	var err error
	if s.Principal, err = parsePrincipals(raw.Principal); err != nil {
		return fail("Principal: %v", err)
	}
	if s.NotPrincipal, err = parsePrincipals(raw.NotPrincipal); err != nil {
		return fail("NotPrincipal: %v", err)
	}
	if s.Action, err = stringList(raw.Action); err != nil {
		return fail("Action: %v", err)
	}
	if s.NotAction, err = stringList(raw.NotAction); err != nil {
		return fail("NotAction: %v", err)
	}
	switch {
	case raw.Action != nil && raw.NotAction != nil:
		return fail("has both Action and NotAction")
	case raw.Action != nil:
		s.actions = compilePatterns(s.Action, true)
	case raw.NotAction != nil:
		s.actions = compilePatterns(s.NotAction, true)
		s.notAction = true
	default:
		return fail("has neither Action nor NotAction")
	}
	if len(s.actions) == 0 {
		return fail("has an empty Action or NotAction")
	}
	if s.Resource, err = stringList(raw.Resource); err != nil {
		return fail("Resource: %v", err)
	}
	if s.NotResource, err = stringList(raw.NotResource); err != nil {
		return fail("NotResource: %v", err)
	}
	switch {
	case raw.Resource != nil && raw.NotResource != nil:
		return fail("has both Resource and NotResource")
	case raw.Resource != nil:
		s.resources = compilePatterns(s.Resource, false)
	case raw.NotResource != nil:
		s.resources = compilePatterns(s.NotResource, false)
		s.notRes = true
	default:
		s.noResource = true
	}
	if len(raw.Condition) > 0 {
		s.Condition, s.conditions, err = parseConditions(raw.Condition)
		if err != nil {
			return fail("Condition: %v", err)
		}
	}
	return s, nil
}

func compilePatterns(raw []string, fold bool) []pattern {
	ps := make([]pattern, len(raw))
	for i, r := range raw {
		ps[i] = compilePattern(r, fold)
	}
	return ps
}

// parsePrincipals parses "*" or {"AWS"|"Service"|"Federated"|"CanonicalUser": string or list}.
func parsePrincipals(b json.RawMessage) (*Principals, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		if s != "*" {
			return nil, fmt.Errorf("%q: a string principal must be \"*\"; use {\"AWS\": ...} or {\"Service\": ...}", s)
		}
		return &Principals{Any: true}, nil
	}
	if b[0] != '{' {
		return nil, fmt.Errorf("is %s; want \"*\" or an object", jsonKind(b))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	p := &Principals{}
	for k, v := range m {
		list, err := stringList(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		switch k {
		case "AWS":
			p.AWS = list
			for _, a := range list {
				if a == "*" {
					p.Any = true
				}
			}
		case "Service":
			p.Service = list
		case "Federated":
			p.Federated = list
		case "CanonicalUser":
			p.CanonicalUser = list
		default:
			return nil, fmt.Errorf("unknown principal type %q (want AWS, Service, Federated or CanonicalUser)", k)
		}
	}
	return p, nil
}

// stringList decodes a string or a list of strings; absent gives nil.
func stringList(b json.RawMessage) ([]string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	case '[':
		var list []string
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("want a string or a list of strings: %v", err)
		}
		return list, nil
	default:
		return nil, fmt.Errorf("is %s; want a string or a list of strings", jsonKind(b))
	}
}

// scalarList decodes a condition value: a string, bool or number, or a
// list of them, normalised to strings.
func scalarList(b json.RawMessage) ([]string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("no value")
	}
	if b[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, err
		}
		out := make([]string, 0, len(list))
		for _, one := range list {
			s, err := scalar(one)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(b)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func scalar(b json.RawMessage) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", errors.New("no value")
	}
	switch c := b[0]; {
	case c == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case string(b) == "true" || string(b) == "false":
		return string(b), nil
	case c == '-' || ('0' <= c && c <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	default:
		return "", fmt.Errorf("value is %s; want a string, boolean or number", jsonKind(b))
	}
}

// jsonKind names the JSON type of b for error messages.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
