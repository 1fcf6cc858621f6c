package nodeconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"reflect"
	"regexp"
	"strings"

	nodeadm "github.com/awslabs/amazon-eks-ami/nodeadm/api/v1alpha1"
	"github.com/pelletier/go-toml/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// NodeConfigAPI names the nodeadm API a NodeConfig is decoded against:
// github.com/awslabs/amazon-eks-ami/nodeadm's api/v1alpha1 at the version
// karpenter-provider-aws v1.15.1 builds its own NodeConfig with (its
// go.mod), pinned at that version in this module's go.mod. nodeadm
// decodes leniently (unknown fields are ignored, wrong types and a wrong
// apiVersion or kind fail the boot), and AMIs carry newer nodeadm
// releases with more fields: an unknown field therefore warns.
const NodeConfigAPI = "node.eks.aws/v1alpha1 NodeConfig"

// The MIME content types Karpenter and cloud-init read.
const (
	contentNodeConfig = "application/node.eks.aws"
	contentShell      = "text/x-shellscript"
)

// part is one piece of userData: its content type, its text, and the line
// of userData its text starts on (1-based).
type part struct {
	contentType string
	text        string
	line        int
}

// UserData judges spec.userData (at path) as the AMI family reads it, and
// as Karpenter 1.15.1 merges its own part in: for AL2023, MIME multi-part
// or a single NodeConfig or shell script; for AL2, a shell script or MIME;
// for Bottlerocket, TOML; for Windows, PowerShell without <powershell>
// tags (Karpenter writes its own). Custom and unknown families are not
// judged: the user owns the whole userData. Each finding shows the
// offending line.
func UserData(path *field.Path, userData, family string) []Finding {
	if strings.TrimSpace(userData) == "" {
		return nil
	}
	switch {
	case family == FamilyAL2023:
		return al2023(path, userData)
	case family == FamilyAL2:
		return al2(path, userData)
	case family == FamilyBottlerocket:
		return bottlerocket(path, userData)
	case isWindows(family):
		return windows(path, userData, family)
	}
	return nil
}

func isMIME(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "MIME-Version:") || strings.HasPrefix(t, "Content-Type:")
}

// parseMIME reads a multi-part userData as Karpenter's mime package and
// cloud-init do; the error names what is wrong.
func parseMIME(userData string) ([]part, error) {
	msg, err := mail.ReadMessage(strings.NewReader(strings.TrimLeft(userData, " \t\r\n")))
	if err != nil {
		return nil, fmt.Errorf("the MIME headers do not parse (%v)", err)
	}
	ct := msg.Header.Get("Content-Type")
	if ct == "" {
		return nil, errors.New("the MIME document has no Content-Type header")
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("Content-Type %q does not parse (%v)", ct, err)
	}
	if !strings.HasPrefix(media, "multipart/") {
		return nil, fmt.Errorf("Content-Type %q is not multipart (write multipart/mixed with a boundary)", media)
	}
	if params["boundary"] == "" {
		return nil, fmt.Errorf("Content-Type %q has no boundary", ct)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var parts []part
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(parts) == 0 {
				return nil, fmt.Errorf("no part delimited by --%s (%v)", params["boundary"], err)
			}
			return nil, fmt.Errorf("part %d does not parse (%v); is the closing --%s-- line there?", len(parts)+1, err, params["boundary"])
		}
		body, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("part %d does not parse (%v); is the closing --%s-- line there?", len(parts)+1, err, params["boundary"])
		}
		media, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		text := string(body)
		parts = append(parts, part{contentType: media, text: text, line: lineOf(userData, firstLine(text))})
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("the MIME document has no part")
	}
	return parts, nil
}

// al2023 reads userData as Karpenter 1.15.1's nodeadm bootstrap does: MIME
// when it starts with MIME headers, else one NodeConfig when it is a YAML
// mapping, else one shell script.
func al2023(path *field.Path, userData string) []Finding {
	var parts []part
	if isMIME(userData) {
		ps, err := parseMIME(userData)
		if err != nil {
			return []Finding{finding(UserDataInvalid, path, fmt.Sprintf(
				"the AL2023 userData starts with MIME headers but %s, so Karpenter cannot merge its NodeConfig into it and launches no node. Write multipart/mixed with a boundary, parts of Content-Type application/node.eks.aws or text/x-shellscript, and the closing --BOUNDARY-- line", err))}
		}
		parts = ps
	} else {
		var m map[string]any
		if yaml.Unmarshal([]byte(userData), &m) == nil && m != nil {
			parts = []part{{contentType: contentNodeConfig, text: userData, line: 1}}
		} else {
			parts = []part{{contentType: contentShell, text: userData, line: 1}}
		}
	}
	var out []Finding
	for _, p := range parts {
		switch {
		case p.contentType == contentNodeConfig:
			out = append(out, nodeConfig(path, p)...)
		case p.contentType == contentShell || strings.HasPrefix(strings.TrimSpace(p.text), "#!"):
			if n, line := findLine(p.text, bootstrapSh); n > 0 {
				out = append(out, finding(UserDataWrongFamily, path, fmt.Sprintf(
					"line %d %s calls /etc/eks/bootstrap.sh, the AL2 bootstrap script, which AL2023 does not have (nodeadm replaced it): the script fails there and what it passes the kubelet is never applied. Move its settings into a NodeConfig part (Content-Type application/node.eks.aws, apiVersion node.eks.aws/v1alpha1), or use amiFamily AL2",
					p.line+n-1, quoteLine(line))))
			}
		}
	}
	return out
}

// bootstrapSh finds a call of the AL2 bootstrap script (not a comment);
// headLine a document's apiVersion or kind; powershellTag a PowerShell
// tag; startBootstrap a call of the Windows bootstrap script.
var (
	bootstrapSh    = regexp.MustCompile(`^[^#]*(/etc/eks/)?bootstrap\.sh\b`)
	headLine       = regexp.MustCompile(`^\s*(apiVersion|kind)\s*:`)
	powershellTag  = regexp.MustCompile(`(?i)</?powershell>`)
	startBootstrap = regexp.MustCompile(`(?i)^[^#]*Start-EKSBootstrap`)
)

// nodeConfig judges the NodeConfig documents of a part as nodeadm decodes
// them.
func nodeConfig(path *field.Path, p part) []Finding {
	var out []Finding
	offset := 0
	for _, doc := range splitYAML(p.text) {
		line := p.line + offset
		offset += strings.Count(doc, "\n") + 1
		if strings.TrimSpace(doc) == "" {
			continue
		}
		out = append(out, nodeConfigDoc(path, doc, line)...)
	}
	return out
}

func splitYAML(s string) []string {
	var docs []string
	var cur []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimRight(l, " \r") == "---" {
			docs = append(docs, strings.Join(cur, "\n"))
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return append(docs, strings.Join(cur, "\n"))
}

var nodeConfigType = reflect.TypeFor[nodeadm.NodeConfig]()

// karpenterSetsNodeConfig are the NodeConfig fields Karpenter writes in its
// own part.
var karpenterSetsNodeConfig = []string{"name", "apiServerEndpoint", "certificateAuthority", "cidr"}

func nodeConfigDoc(path *field.Path, doc string, line int) []Finding {
	invalid := func(at int, text, what string) Finding {
		return finding(UserDataInvalid, path, fmt.Sprintf(
			"NodeConfig at line %d %s: %s; nodeadm fails on it and the node never joins. Fix the document (%s, as in the EKS AL2023 documentation)",
			at, quoteLine(text), what, NodeConfigAPI))
	}
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		n, text := yamlErrorLine(err, doc)
		return []Finding{invalid(line+n-1, text, "the YAML does not parse ("+oneLine(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))+")")}
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return []Finding{invalid(line, firstLine(doc), "it is not a YAML mapping")}
	}
	if head.APIVersion != nodeadm.GroupVersion.String() || head.Kind != "NodeConfig" {
		n, text := findLine(doc, headLine)
		if n == 0 {
			n, text = 1, firstLine(doc)
		}
		return []Finding{invalid(line+n-1, text, fmt.Sprintf("apiVersion %q kind %q is not %s", head.APIVersion, head.Kind, NodeConfigAPI))}
	}
	var out []Finding
	var into nodeadm.NodeConfig
	if err := json.Unmarshal(js, &into); err != nil {
		what := err.Error()
		key := ""
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			segs := strings.Split(te.Field, ".")
			key = segs[len(segs)-1]
			what = fmt.Sprintf("%s is %s, but nodeadm wants %s", te.Field, article(te.Value), describe(te.Type))
		} else if strings.Contains(what, "base64") {
			key = "certificateAuthority"
			what = "certificateAuthority is not base64 (" + what + ")"
		}
		n, text := keyLine(doc, key)
		out = append(out, invalid(line+n-1, text, what))
	}
	ignored := unknownFieldsAs(path, js, nodeConfigType, UserDataFieldIgnored, func(k string, names []string) string {
		return k + "\x00" + didYouMean(k, names)
	})
	for _, f := range ignored {
		k, hint, _ := strings.Cut(f.Message, "\x00")
		n, text := keyLine(doc, k)
		out = append(out, Finding{Check: UserDataFieldIgnored, Path: path, Warn: true, Message: fmt.Sprintf(
			"NodeConfig line %d %s: %s has no field %q (nodeadm at Karpenter 1.15.1's pin), and nodeadm ignores fields it does not know.%s Newer nodeadm releases may know it; check the spelling",
			line+n-1, quoteLine(text), NodeConfigAPI, k, hint)})
	}
	var cluster struct {
		Spec struct {
			Cluster map[string]json.RawMessage `json:"cluster"`
		} `json:"spec"`
	}
	if json.Unmarshal(js, &cluster) == nil {
		for _, k := range karpenterSetsNodeConfig {
			if _, ok := cluster.Spec.Cluster[k]; ok {
				n, text := keyLine(doc, k)
				out = append(out, Finding{Check: UserDataSetsKarpenterField, Path: path, Warn: true, Message: fmt.Sprintf(
					"NodeConfig line %d %s sets spec.cluster.%s, which Karpenter sets in its own NodeConfig from the cluster; nodeadm merges the two, so the value may not be the one the node uses. Remove it",
					line+n-1, quoteLine(text), k)})
			}
		}
	}
	return out
}

// al2 reads userData as Karpenter 1.15.1's AL2 bootstrap does: MIME, or a
// shell script it wraps into a text/x-shellscript part, which cloud-init
// runs only with a #! line.
func al2(path *field.Path, userData string) []Finding {
	parts := []part{{contentType: contentShell, text: userData, line: 1}}
	if isMIME(userData) {
		ps, err := parseMIME(userData)
		if err != nil {
			return []Finding{finding(UserDataInvalid, path, fmt.Sprintf(
				"the AL2 userData starts with MIME headers but %s, so Karpenter cannot merge its bootstrap part into it and launches no node. Write multipart/mixed with a boundary, text/x-shellscript parts and the closing --BOUNDARY-- line", err))}
		}
		parts = ps
	}
	var out []Finding
	for _, p := range parts {
		if wrong := otherFamily(p); wrong != "" && wrong != FamilyAL2 {
			out = append(out, finding(UserDataWrongFamily, path, fmt.Sprintf(
				"line %d %s is %s userData; AL2 runs shell scripts and cloud-init parts, so the node ignores or fails on it. Write it as a #!/bin/bash script, or use amiFamily %s",
				p.line, quoteLine(firstLine(p.text)), wrong, wrong)))
			continue
		}
		if p.contentType != contentShell {
			continue
		}
		if !strings.HasPrefix(strings.TrimLeft(p.text, " \t\r\n"), "#!") {
			out = append(out, finding(UserDataInvalid, path, fmt.Sprintf(
				"line %d %s: an AL2 shell script must start with a #! line, or cloud-init cannot run it (Exec format error) and none of it happens. Start it with #!/bin/bash",
				p.line, quoteLine(firstLine(p.text)))))
			continue
		}
		if n, line := findLine(p.text, bootstrapSh); n > 0 {
			out = append(out, Finding{Check: UserDataSetsKarpenterField, Path: path, Warn: true, Message: fmt.Sprintf(
				"line %d %s calls bootstrap.sh, which Karpenter calls itself after your script with the cluster's name, endpoint and CA: the node bootstraps twice. Pass kubelet settings through spec.kubelet instead",
				p.line+n-1, quoteLine(line))})
		}
	}
	return out
}

// otherFamily says which family a part is written for, when it shows:
// a NodeConfig (AL2023), Bottlerocket TOML settings, PowerShell (Windows).
func otherFamily(p part) string {
	t := strings.TrimSpace(p.text)
	switch {
	case p.contentType == contentNodeConfig || strings.Contains(t, "node.eks.aws/"):
		return FamilyAL2023
	case strings.HasPrefix(t, "[settings"):
		return FamilyBottlerocket
	case strings.HasPrefix(strings.ToLower(t), "<powershell>"):
		return "Windows"
	}
	return ""
}

// karpenterSetsBottlerocket are the settings.kubernetes keys Karpenter
// overwrites.
var karpenterSetsBottlerocket = []string{"cluster-name", "api-server", "cluster-certificate"}

// bottlerocket reads userData as TOML, as Karpenter 1.15.1 does
// (go-toml/v2) before merging its settings in.
func bottlerocket(path *field.Path, userData string) []Finding {
	t := strings.TrimSpace(userData)
	if isMIME(userData) || strings.HasPrefix(t, "#!") || strings.HasPrefix(t, "apiVersion:") {
		wrong := "a shell script"
		if isMIME(userData) {
			wrong = "MIME multi-part"
		} else if strings.HasPrefix(t, "apiVersion:") {
			wrong = "an AL2023 NodeConfig"
		}
		return []Finding{finding(UserDataWrongFamily, path, fmt.Sprintf(
			"line 1 %s: the userData is %s, but Bottlerocket reads TOML settings, so Karpenter cannot parse it and launches no node. Write TOML ([settings.kubernetes] ...); a script runs as a bootstrap container or [settings.bootstrap-commands]",
			quoteLine(firstLine(userData)), wrong))}
	}
	var m map[string]any
	if err := toml.Unmarshal([]byte(userData), &m); err != nil {
		n, text := 1, firstLine(userData)
		what := oneLine(err.Error())
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			n = row
			text = lineAt(userData, row)
		}
		return []Finding{finding(UserDataInvalid, path, fmt.Sprintf(
			"line %d %s: the Bottlerocket userData is not TOML (%s), so Karpenter cannot merge its settings into it and launches no node. Fix the TOML",
			n, quoteLine(text), what))}
	}
	var out []Finding
	settings, _ := m["settings"].(map[string]any)
	k8s, _ := settings["kubernetes"].(map[string]any)
	for _, k := range karpenterSetsBottlerocket {
		if _, ok := k8s[k]; ok {
			n, text := keyLine(userData, k)
			out = append(out, Finding{Check: UserDataSetsKarpenterField, Path: path, Warn: true, Message: fmt.Sprintf(
				"line %d %s sets settings.kubernetes.%s, which Karpenter overwrites with the cluster's own value. Remove it",
				n, quoteLine(text), k)})
		}
	}
	return out
}

// windows reads userData as Karpenter 1.15.1's Windows bootstrap does: it
// writes it inside its own <powershell> block, before its call of
// Start-EKSBootstrap.ps1.
func windows(path *field.Path, userData, family string) []Finding {
	if n, line := findLine(userData, powershellTag); n > 0 {
		return []Finding{finding(UserDataInvalid, path, fmt.Sprintf(
			"line %d %s: Karpenter writes the %s userData inside its own <powershell> block, so this tag ends that block early and Karpenter's Start-EKSBootstrap.ps1 call never runs: the node never joins. Remove the <powershell> and </powershell> tags",
			n, quoteLine(line), family))}
	}
	p := part{contentType: contentShell, text: userData, line: 1}
	if strings.HasPrefix(strings.TrimSpace(userData), "#!") {
		return []Finding{finding(UserDataWrongFamily, path, fmt.Sprintf(
			"line 1 %s: the %s userData is a shell script, but Windows runs PowerShell. Write PowerShell (without <powershell> tags)", quoteLine(firstLine(userData)), family))}
	}
	if wrong := otherFamily(p); wrong != "" && wrong != "Windows" {
		return []Finding{finding(UserDataWrongFamily, path, fmt.Sprintf(
			"line 1 %s: the %s userData is %s userData, but Windows runs PowerShell. Write PowerShell (without <powershell> tags)", quoteLine(firstLine(userData)), family, wrong))}
	}
	if n, line := findLine(userData, startBootstrap); n > 0 {
		return []Finding{{Check: UserDataSetsKarpenterField, Path: path, Warn: true, Message: fmt.Sprintf(
			"line %d %s calls Start-EKSBootstrap.ps1, which Karpenter calls itself after your script with the cluster's name, endpoint and CA: the node bootstraps twice. Remove the call", n, quoteLine(line))}}
	}
	return nil
}

// findLine returns the first line of s matching re and its number
// (1-based), 0 when none.
func findLine(s string, re *regexp.Regexp) (int, string) {
	for i, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			return i + 1, l
		}
	}
	return 0, ""
}

// keyLine returns the first line of doc writing the key k ("k:" or "k ="),
// else line 1.
func keyLine(doc, k string) (int, string) {
	if k != "" {
		re := regexp.MustCompile(`^\s*(- )?"?` + regexp.QuoteMeta(k) + `"?\s*[:=]`)
		if n, l := findLine(doc, re); n > 0 {
			return n, l
		}
	}
	return 1, firstLine(doc)
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlErrorLine is the line a YAML error names.
func yamlErrorLine(err error, doc string) (int, string) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		var n int
		fmt.Sscan(m[1], &n)
		if n > 0 {
			return n, lineAt(doc, n)
		}
	}
	return 1, firstLine(doc)
}

func lineAt(s string, n int) string {
	ls := strings.Split(s, "\n")
	if n < 1 || n > len(ls) {
		return ""
	}
	return ls[n-1]
}

func firstLine(s string) string {
	s = strings.TrimLeft(s, "\r\n")
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// lineOf is the line of s where needle starts (1 when not found).
func lineOf(s, needle string) int {
	i := strings.Index(s, needle)
	if i < 0 || needle == "" {
		return 1
	}
	return strings.Count(s[:i], "\n") + 1
}

// quoteLine shows a line of userData in a message, shortened.
func quoteLine(l string) string {
	l = strings.TrimSpace(strings.TrimRight(l, "\r"))
	if len(l) > 70 {
		l = l[:67] + "..."
	}
	var b bytes.Buffer
	b.WriteString("(")
	b.WriteString(fmt.Sprintf("%q", l))
	b.WriteString(")")
	return b.String()
}
