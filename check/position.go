package check

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Position is where a finding's field is written in its file: 1-based line
// and column, the column counted in Unicode code points (as the YAML
// parser counts them; a tab is one). Zero means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats the position as "file:line:col", the shape editors and CI
// log matchers recognise.
func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Column)
}

// located is a document's syntax tree, for finding where a field is
// written. JSON is YAML, so one parser serves both; the decoding itself
// stays with sigs.k8s.io/yaml, as the API server reads manifests.
type located struct {
	file string
	// node is the object's mapping (a List item, an array element, or the
	// document itself); nil when the document could not be parsed here.
	node *yaml.Node
	// offset is added to the node's lines: the line its chunk starts on,
	// minus one.
	offset int
	// line is the document's first line, the answer when nothing better
	// is known.
	line int
}

// parseNode parses one document chunk for positions. A chunk the position
// parser cannot read (the decoder did) gives no node: findings then point
// at the document's first line.
func parseNode(data []byte) (n *yaml.Node) {
	// The decoder has read this chunk already; a parser bug on a hostile
	// input must cost the positions, not the run.
	defer func() {
		if recover() != nil {
			n = nil
		}
	}()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return resolve(doc.Content[0])
}

// Position returns where the field at path is written: the key of its
// deepest element present in the document (a missing spec.role points at
// spec), or the object itself when not even the first element is there.
func (l located) Position(path *field.Path) Position {
	p := Position{File: l.file, Line: l.line}
	if l.node == nil {
		return p
	}
	at := l.node
	p.Line, p.Column = l.offset+at.Line, at.Column
	node := at
	for _, name := range pathElements(path) {
		key, val := lookup(node, name)
		if key == nil {
			break
		}
		p.Line, p.Column = l.offset+key.Line, key.Column
		node = val
	}
	return p
}

// item returns the located element i of the object's sequence at key
// name (name "" for the object itself: a JSON array of manifests), for
// descending into Lists and arrays.
func (l located) item(name string, i int) located {
	out := l
	out.node = nil
	n := l.node
	if name != "" {
		_, n = lookup(n, name)
	}
	if n != nil && n.Kind == yaml.SequenceNode && i >= 0 && i < len(n.Content) {
		out.node = resolve(n.Content[i])
	}
	return out
}

// lookup finds key name in a mapping, following aliases and merge keys
// ("<<: *base"). Duplicate keys resolve to the last, as the decoder does.
func lookup(n *yaml.Node, name string) (key, value *yaml.Node) {
	n = resolve(n)
	if n != nil && n.Kind == yaml.SequenceNode {
		if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i], resolve(n.Content[i])
		}
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == name {
			key, value = k, resolve(n.Content[i+1])
		}
	}
	if key != nil {
		return key, value
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "<<" {
			merged := resolve(n.Content[i+1])
			sources := []*yaml.Node{merged}
			if merged != nil && merged.Kind == yaml.SequenceNode {
				sources = merged.Content
			}
			for _, s := range sources {
				if k, v := lookup(s, name); k != nil {
					return k, v
				}
			}
		}
	}
	return nil, nil
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// pathElements splits a field path ("spec.template.spec.nodeClassRef",
// "spec.tags[Name]", "spec.items[2]") into the keys and indexes to look up.
func pathElements(path *field.Path) []string {
	if path == nil {
		return nil
	}
	s := path.String()
	var out []string
	for s != "" {
		switch {
		case s[0] == '.':
			s = s[1:]
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return append(out, s[1:])
			}
			out = append(out, s[1:end])
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			out = append(out, s[:end])
			s = s[end:]
		}
	}
	return out
}
