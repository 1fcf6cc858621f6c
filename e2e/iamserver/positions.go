package iamserver

import (
	"encoding/json"
	"strings"
)

// pos is a 1-based line and column in a policy document.
type pos struct{ line, col int }

// span is where one statement starts and ends in its document.
type span struct{ start, end pos }

// statementSpans finds where each statement of a policy document starts
// and ends, in document order, for MatchedStatements' StartPosition and
// EndPosition. It returns nil for a document it cannot read (the snapshot
// already parsed it, so that does not happen in practice).
func statementSpans(doc string) []span {
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
		var out []span
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
				out = append(out, span{position(doc, from), position(doc, int(dec.InputOffset())-1)})
			}
			return out
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
		return []span{{position(doc, start), position(doc, int(dec.InputOffset())-1)}}
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

// position converts a byte offset to a 1-based line and column.
func position(doc string, offset int) pos {
	if offset > len(doc) {
		offset = len(doc)
	}
	before := doc[:offset]
	line := strings.Count(before, "\n") + 1
	col := offset - strings.LastIndexByte(before, '\n')
	return pos{line, col}
}
