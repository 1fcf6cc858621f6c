package iamserver

import "github.com/nodeclass-guard/nodeclass-guard/authz"

// pos is a 1-based line and column in a policy document.
type pos struct{ line, col int }

// span is where one statement starts and ends in its document.
type span struct{ start, end pos }

// statementSpans is authz.StatementSpans in this package's types.
func statementSpans(doc string) []span {
	var out []span
	for _, s := range authz.StatementSpans(doc) {
		out = append(out, span{pos{s.Start.Line, s.Start.Col}, pos{s.End.Line, s.End.Col}})
	}
	return out
}
