// Package nodeclassguard holds what the whole project reads from its own
// documentation: the README's table of reason codes, embedded so that the
// SARIF report's rule help is the text users read in the README, never a
// copy that drifts from it.
package nodeclassguard

import (
	_ "embed"
	"strings"
)

//go:embed README.md
var readme string

// ReasonCode is one row of the README's "Reason codes" table.
type ReasonCode struct {
	Code string
	// Kind is "deny", "warn" or "warn/deny", as the table says.
	Kind string
	// When says when the code fires, as the table says (Markdown).
	When string
}

// ReasonCodes returns the README's reason-code table, in its order.
func ReasonCodes() []ReasonCode {
	return parseCodeTable(readme)
}

// parseCodeTable reads the table under the "## Reason codes" heading:
// rows "| `Code` | kind | when |", up to the next heading.
func parseCodeTable(md string) []ReasonCode {
	var out []ReasonCode
	in := false
	for _, line := range strings.Split(md, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line[3:]) == "Reason codes"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) < 3 {
			continue
		}
		code := strings.Trim(strings.TrimSpace(cells[0]), "`")
		out = append(out, ReasonCode{
			Code: code,
			Kind: strings.TrimSpace(cells[1]),
			When: strings.TrimSpace(strings.Join(cells[2:], " | ")),
		})
	}
	return out
}
