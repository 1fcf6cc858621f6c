package authz

import (
	"encoding/json"
	"strings"
	"sync"
)

// Position is a 1-based line and column in a policy document.
type Position struct{ Line, Col int }

// Span is where one statement starts and ends in its document.
type Span struct{ Start, End Position }

// StatementSpans finds where each statement of a policy document starts
// and ends, in document order: what IAM's simulator reports as a matched
// statement's StartPosition and EndPosition. It returns nil for a
// document it cannot read.
func StatementSpans(doc string) []Span {
	dec := json.NewDecoder(strings.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := t.(string)
		if key != "Statement" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil
			}
			continue
		}
		var out []Span
		start := skipBlank(doc, int(dec.InputOffset()))
		if start < len(doc) && doc[start] == '[' {
			if _, err := dec.Token(); err != nil {
				return nil
			}
			for dec.More() {
				from := skipBlank(doc, int(dec.InputOffset()))
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return nil
				}
				out = append(out, Span{docPosition(doc, from), docPosition(doc, int(dec.InputOffset())-1)})
			}
			return out
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
		return []Span{{docPosition(doc, start), docPosition(doc, int(dec.InputOffset())-1)}}
	}
	return nil
}

// skipBlank skips whitespace, commas and colons: what lies between the end
// of the decoder's last token and the start of the next value.
func skipBlank(doc string, i int) int {
	for i < len(doc) && strings.IndexByte(" \t\r\n,:", doc[i]) >= 0 {
		i++
	}
	return i
}

// docPosition converts a byte offset to a 1-based line and column.
func docPosition(doc string, offset int) Position {
	if offset > len(doc) {
		offset = len(doc)
	}
	before := doc[:offset]
	line := strings.Count(before, "\n") + 1
	col := offset - strings.LastIndexByte(before, '\n')
	return Position{line, col}
}

// spanCache remembers each policy's statement positions: policies are
// immutable once parsed.
var spanCache sync.Map // *Policy -> []Span

// Spans returns StatementSpans of p's document, computed once per policy.
func (p *Policy) Spans() []Span {
	if v, ok := spanCache.Load(p); ok {
		return v.([]Span)
	}
	spans := StatementSpans(p.Document())
	spanCache.Store(p, spans)
	return spans
}
