package authz

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// opKind is the base of a condition operator, without set qualifier and
// IfExists suffix.
type opKind uint8

const (
	opUnknown opKind = iota
	opStringEquals
	opStringEqualsIgnoreCase
	opStringLike
	opArnLike // ArnEquals and ArnLike behave the same in IAM
	opBool
	opNull
	opNumericEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opIPAddress
	opBinaryEquals
)

// operatorInfo is what an operator name (lower case, without qualifier and
// IfExists) means.
type operatorInfo struct {
	kind    opKind
	negated bool
}

var operators = map[string]operatorInfo{
	"stringequals":              {opStringEquals, false},
	"stringnotequals":           {opStringEquals, true},
	"stringequalsignorecase":    {opStringEqualsIgnoreCase, false},
	"stringnotequalsignorecase": {opStringEqualsIgnoreCase, true},
	"stringlike":                {opStringLike, false},
	"stringnotlike":             {opStringLike, true},
	"arnequals":                 {opArnLike, false},
	"arnlike":                   {opArnLike, false},
	"arnnotequals":              {opArnLike, true},
	"arnnotlike":                {opArnLike, true},
	"bool":                      {opBool, false},
	"null":                      {opNull, false},
	"numericequals":             {opNumericEquals, false},
	"numericnotequals":          {opNumericEquals, true},
	"numericlessthan":           {opNumericLessThan, false},
	"numericlessthanequals":     {opNumericLessThanEquals, false},
	"numericgreaterthan":        {opNumericGreaterThan, false},
	"numericgreaterthanequals":  {opNumericGreaterThanEquals, false},
	"dateequals":                {opDateEquals, false},
	"datenotequals":             {opDateEquals, true},
	"datelessthan":              {opDateLessThan, false},
	"datelessthanequals":        {opDateLessThanEquals, false},
	"dategreaterthan":           {opDateGreaterThan, false},
	"dategreaterthanequals":     {opDateGreaterThanEquals, false},
	"ipaddress":                 {opIPAddress, false},
	"notipaddress":              {opIPAddress, true},
	"binaryequals":              {opBinaryEquals, false},
}

// setQualifier is a condition operator's ForAnyValue:/ForAllValues: prefix.
type setQualifier uint8

const (
	setNone setQualifier = iota
	setForAnyValue
	setForAllValues
)

// condClause is one (operator, key) pair of a Condition block. All clauses
// of a statement are AND-ed: IAM ANDs the operators of a block and the keys
// within one operator, and ORs the values of one key.
type condClause struct {
	operator string // as written, e.g. "ForAnyValue:StringLikeIfExists"
	key      string // as written
	values   []string

	info     operatorInfo
	ifExists bool
	set      setQualifier
	// unsupported is set for operators this evaluator does not know:
	// the statement then does not match, and the name is reported.
	unsupported bool

	patterns []pattern    // StringLike
	arns     [][6]pattern // ArnLike/ArnEquals, one per value, component-wise
	nums     []float64    // Numeric*
	times    []time.Time  // Date*
	prefixes []netip.Prefix
	nullWant []bool // Null: true = key must be absent
}

// parseConditions normalises a Condition element and compiles its clauses
// in a deterministic order (operators, then keys, sorted).
func parseConditions(raw map[string]map[string]json.RawMessage) (map[string]map[string][]string, []condClause, error) {
	ops := make([]string, 0, len(raw))
	for op := range raw {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	written := make(map[string]map[string][]string, len(raw))
	var clauses []condClause
	for _, op := range ops {
		keys := make([]string, 0, len(raw[op]))
		for k := range raw[op] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		written[op] = make(map[string][]string, len(keys))
		for _, k := range keys {
			values, err := scalarList(raw[op][k])
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %v", op, k, err)
			}
			written[op][k] = values
			c, err := compileClause(op, k, values)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %v", op, k, err)
			}
			clauses = append(clauses, c)
		}
	}
	return written, clauses, nil
}

// compileClause parses the operator name and pre-computes the values.
// Bad values for a known operator are errors (IAM refuses such policies);
// an unknown operator is not an error but marks the clause unsupported.
func compileClause(op, key string, values []string) (condClause, error) {
	c := condClause{operator: op, key: key, values: values}
	name := op
	if q, rest, ok := strings.Cut(name, ":"); ok {
		switch strings.ToLower(q) {
		case "foranyvalue":
			c.set = setForAnyValue
		case "forallvalues":
			c.set = setForAllValues
		default:
			c.unsupported = true
			return c, nil
		}
		name = rest
	}
	lower := strings.ToLower(name)
	if base, ok := strings.CutSuffix(lower, "ifexists"); ok && base != "" {
		c.ifExists = true
		lower = base
	}
	info, ok := operators[lower]
	if !ok || (info.kind == opNull && (c.ifExists || c.set != setNone)) {
		c.unsupported = true
		return c, nil
	}
	c.info = info
	switch info.kind {
	case opStringLike:
		c.patterns = compilePatterns(values, false)
	case opArnLike:
		c.arns = make([][6]pattern, len(values))
		for i, v := range values {
			parts := strings.SplitN(v, ":", 6)
			if len(parts) != 6 {
				// Not ARN-shaped: a bare "*" matches any value; anything
				// else can match no ARN component by component.
				c.arns[i][0] = compilePattern(v, false)
				c.arns[i][1].raw = notARNShaped
				continue
			}
			for j, part := range parts {
				c.arns[i][j] = compilePattern(part, false)
			}
		}
	case opBool, opNull:
		for _, v := range values {
			b, err := strconv.ParseBool(strings.ToLower(v))
			if err != nil {
				return c, fmt.Errorf("%q is not true or false", v)
			}
			if info.kind == opNull {
				c.nullWant = append(c.nullWant, b)
			}
		}
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		for _, v := range values {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return c, fmt.Errorf("%q is not a number", v)
			}
			c.nums = append(c.nums, n)
		}
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		for _, v := range values {
			t, ok := parseDate(v)
			if !ok {
				return c, fmt.Errorf("%q is not an ISO 8601 date or epoch seconds", v)
			}
			c.times = append(c.times, t)
		}
	case opIPAddress:
		for _, v := range values {
			p, err := parsePrefix(v)
			if err != nil {
				return c, fmt.Errorf("%q is not an IP address or CIDR", v)
			}
			c.prefixes = append(c.prefixes, p)
		}
	}
	return c, nil
}

// lookupContext finds a condition key's values. Condition keys are
// case-insensitive: an exact hit is tried first so that the common case
// costs one map lookup.
func lookupContext(ctx map[string][]string, key string) []string {
	if v, ok := ctx[key]; ok {
		return v
	}
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// eval evaluates the clause against the request context. missing reports
// that the key was absent (or had no values), for MissingContext.
//
// A missing key follows the IAM documentation ("IAM JSON policy elements:
// Condition operators"): "If the key that you specify in a policy condition
// is not present in the request context, the values do not match and the
// condition is false. If the policy condition requires that the key is not
// matched, such as StringNotLike or ArnNotLike, and the right key is not
// present, the condition is true. This logic applies to all condition
// operators except ...IfExists and Null check." For set operators
// ("Set operators for multivalued context keys"): ForAllValues "also
// returns true if there are no context keys in the request"; ForAnyValue
// returns false when the key is missing.
//
// A key the request lacks but the question knows to be absent (complete
// covers it) is evaluated the same way and not reported as missing.
//
// A condition with no set qualifier on a multivalued key (aws:TagKeys...)
// does not hold whatever the values, as IAM is reported to evaluate it
// (AWS documents that multivalued keys need ForAnyValue or ForAllValues);
// needsSet reports it, so that the policy can be fixed.
func (c *condClause) eval(ctx map[string][]string, complete []string) (ok, missing, needsSet bool) {
	vals := lookupContext(ctx, c.key)
	present := len(vals) > 0
	if c.info.kind == opNull {
		for _, want := range c.nullWant {
			if want == !present {
				return true, false, false
			}
		}
		return false, false, false
	}
	if !present {
		missing := !completeCovers(complete, c.key)
		switch {
		case c.ifExists, c.set == setForAllValues:
			return true, missing, false
		case c.set == setForAnyValue:
			return false, missing, false
		default:
			return c.info.negated, missing, false
		}
	}
	if c.set == setNone && IsMultivaluedKey(c.key) {
		return false, false, true
	}
	switch c.set {
	case setForAllValues:
		for _, v := range vals {
			if !c.satisfied(v) {
				return false, false, false
			}
		}
		return true, false, false
	case setForAnyValue:
		for _, v := range vals {
			if c.satisfied(v) {
				return true, false, false
			}
		}
		return false, false, false
	}
	// No set qualifier on a single-valued key that came with several
	// values (a request never sends that; kept for hand-made questions): a
	// positive operator holds when any value matches, a negated one when
	// none does.
	if c.info.negated {
		for _, v := range vals {
			if !c.satisfied(v) {
				return false, false, false
			}
		}
		return true, false, false
	}
	for _, v := range vals {
		if c.satisfied(v) {
			return true, false, false
		}
	}
	return false, false, false
}

// multivaluedKeys are the global condition keys AWS documents as
// multivalued (lists in the request context): "Single-valued vs.
// multivalued context keys" and the global condition context keys page.
var multivaluedKeys = []string{
	"aws:TagKeys",
	"aws:CalledVia",
	"aws:PrincipalServiceNamesList",
	"aws:PrincipalOrgPaths",
	"aws:SourceOrgPaths",
}

// IsMultivaluedKey reports whether key is a multivalued condition key: one
// whose request value is a list, which a policy must test with
// ForAnyValue: or ForAllValues:.
func IsMultivaluedKey(key string) bool {
	for _, k := range multivaluedKeys {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// satisfied applies the operator to one request value: for a positive
// operator, some policy value matches; for a negated one (StringNotEquals,
// ArnNotLike, NotIpAddress...), none does.
func (c *condClause) satisfied(v string) bool {
	return c.matchesAny(v) != c.info.negated
}

// matchesAny reports whether the request value v matches any policy value
// under the operator's base comparison.
func (c *condClause) matchesAny(v string) bool {
	switch c.info.kind {
	case opStringEquals, opBinaryEquals:
		for _, w := range c.values {
			if v == w {
				return true
			}
		}
	case opStringEqualsIgnoreCase, opBool:
		for _, w := range c.values {
			if strings.EqualFold(v, w) {
				return true
			}
		}
	case opStringLike:
		return matchAny(c.patterns, v)
	case opArnLike:
		for i := range c.arns {
			if matchARN(&c.arns[i], v) {
				return true
			}
		}
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		for _, w := range c.nums {
			if compareOrdered(c.info.kind, cmpFloat(n, w)) {
				return true
			}
		}
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, w := range c.times {
			if compareOrdered(c.info.kind, t.Compare(w)) {
				return true
			}
		}
	case opIPAddress:
		a, err := netip.ParseAddr(v)
		if err != nil {
			p, perr := netip.ParsePrefix(v)
			if perr != nil {
				return false
			}
			a = p.Addr()
		}
		for _, p := range c.prefixes {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
	}
	return false
}

// notARNShaped marks an ArnLike policy value without six components.
const notARNShaped = "\x00not-an-arn"

// matchARN matches an ARN component by component, as ArnLike does: each of
// the six colon-separated parts may hold '*' and '?', which do not span
// colons except within the final resource part.
func matchARN(p *[6]pattern, v string) bool {
	if p[1].raw == notARNShaped {
		return p[0].any
	}
	rest := v
	for i := 0; i < 5; i++ {
		part, after, ok := strings.Cut(rest, ":")
		if !ok || !p[i].match(part) {
			return false
		}
		rest = after
	}
	return p[5].match(rest)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareOrdered applies a Numeric*/Date* operator to cmp(request, policy).
func compareOrdered(kind opKind, cmp int) bool {
	switch kind {
	case opNumericEquals, opDateEquals:
		return cmp == 0
	case opNumericLessThan, opDateLessThan:
		return cmp < 0
	case opNumericLessThanEquals, opDateLessThanEquals:
		return cmp <= 0
	case opNumericGreaterThan, opDateGreaterThan:
		return cmp > 0
	case opNumericGreaterThanEquals, opDateGreaterThanEquals:
		return cmp >= 0
	}
	return false
}

// parseDate accepts the date forms IAM documents: ISO 8601 (with or
// without time) and epoch seconds.
func parseDate(v string) (time.Time, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parsePrefix accepts a CIDR or a bare address (a /32 or /128).
func parsePrefix(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
