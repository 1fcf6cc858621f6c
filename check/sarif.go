package check

import (
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	nodeclassguard "github.com/nodeclass-guard/nodeclass-guard"
)

// Tool names the program in a SARIF report.
type Tool struct {
	Name           string
	Version        string
	InformationURI string
}

// codesHelpURI is where the README's table of reason codes is read.
const codesHelpURI = "https://github.com/nodeclass-guard/nodeclass-guard#reason-codes"

// WriteSARIF writes the report as SARIF 2.1.0, for GitHub and GitLab code
// scanning: one rule per reason code (the README's table: its kind and
// when it fires), one result per denial (level error) and warning (level
// warning) at the line and column of its field. A permission denial's
// suggested statement is in the result's properties, under "fix".
func (r Report) WriteSARIF(w io.Writer, tool Tool) error {
	run := sarif.NewRunWithInformationURI(tool.Name, tool.InformationURI)
	if tool.Version != "" {
		run.Tool.Driver.WithVersion(tool.Version)
	}
	run.WithColumnKind("unicodeCodePoints")
	index := map[string]int{}
	addRule := func(code, kind, when string) int {
		if i, ok := index[code]; ok {
			return i
		}
		level := sarif.LevelWarning
		if kind == "deny" {
			level = sarif.LevelError
		}
		help := kind + ": " + when
		rule := sarif.NewRule(code).WithName(code).
			WithDescription(plain(when)).
			WithHelp(sarif.NewMultiformatMessageString().WithText(plain(help)).WithMarkdown(help)).
			WithHelpURI(codesHelpURI).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(level))
		run.Tool.Driver.AddRule(rule)
		index[code] = len(run.Tool.Driver.Rules) - 1
		return index[code]
	}
	for _, c := range nodeclassguard.ReasonCodes() {
		addRule(c.Code, c.Kind, c.When)
	}
	for _, res := range r.Results {
		for _, f := range []struct {
			items []Item
			level string
		}{{res.Denials, sarif.LevelError}, {res.Warnings, sarif.LevelWarning}} {
			for _, it := range f.items {
				// A code the README does not list yet still gets a rule.
				i := addRule(it.Code, "", "nodeclass-guard reason code "+it.Code)
				line := it.Message
				if f.level == sarif.LevelError {
					line = it.Field + ": [" + it.Code + "] " + it.Message
				} else {
					line = "[" + it.Code + "] " + it.Field + ": " + it.Message
				}
				result := sarif.NewRuleResult(it.Code).WithRuleIndex(i).WithLevel(f.level).
					WithMessage(sarif.NewTextMessage(line)).
					AddLocation(sarif.NewLocationWithPhysicalLocation(
						sarif.NewPhysicalLocation().
							WithArtifactLocation(artifact(res.File)).
							WithRegion(region(it))))
				props := sarif.NewPropertyBag().
					Add("source", res.Source).Add("kind", res.Kind).Add("name", res.Name).Add("field", it.Field)
				if it.Fix != nil {
					props.Add("fix", it.Fix)
				}
				result.WithProperties(props)
				run.AddResult(result)
			}
		}
	}
	report := sarif.NewReport()
	report.AddRun(run)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// artifact is the location of a file as a URI reference: a relative path
// stays relative (code scanning resolves it against the checkout), an
// absolute one becomes a file: URI, and standard input has no URI, only a
// description.
func artifact(file string) *sarif.ArtifactLocation {
	if file == "" || file == "<stdin>" {
		return sarif.NewArtifactLocation().WithDescription(sarif.NewTextMessage("standard input"))
	}
	p := filepath.ToSlash(file)
	if filepath.IsAbs(file) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // a Windows drive path
		}
		return sarif.NewSimpleArtifactLocation((&url.URL{Scheme: "file", Path: p}).String())
	}
	p = strings.TrimPrefix(p, "./")
	return sarif.NewSimpleArtifactLocation((&url.URL{Path: p}).String())
}

func region(it Item) *sarif.Region {
	r := sarif.NewRegion()
	if it.Line > 0 {
		r.WithStartLine(it.Line)
	}
	if it.Column > 0 {
		r.WithStartColumn(it.Column)
	}
	return r
}

// plain drops the Markdown of a table cell (backquotes) for the text form.
func plain(s string) string {
	return strings.NewReplacer("`", "", `\|`, "|").Replace(s)
}
