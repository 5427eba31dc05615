package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeYAML applies the settings in a YAML document to l.cfg.
//
// It walks the node tree against the settings table instead of letting
// yaml.v3 fill the struct by reflection. That short walk buys:
// every problem in the file at once (yaml.v3 stops at the first error a
// custom unmarshaler returns), each with its line and full field path, a
// "did you mean" for near-miss keys, duplicate keys caught, and values
// parsed by the same code as environment variables and flags.
func (l *loader) decodeYAML(name string, data []byte, table []binding) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // EOF: empty file or only comments
			l.fail(fmt.Errorf("%s: %w", name, err))
		}
		return
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		l.fail(fmt.Errorf("%s:%d: only one YAML document is allowed", name, next.Line))
		return
	}
	w := yamlWalk{l: l, name: name, leaves: map[string]binding{}, sections: map[string]bool{}}
	for _, b := range table {
		if b.Path == "" {
			continue
		}
		w.leaves[b.Path] = b
		for i := range len(b.Path) {
			if b.Path[i] == '.' {
				w.sections[b.Path[:i]] = true
			}
		}
	}
	w.mapping(doc.Content[0], "")
}

// yamlWalk is the state of one decodeYAML: the file's name for messages,
// and the table split into leaf settings and the sections that hold them.
type yamlWalk struct {
	l        *loader
	name     string
	leaves   map[string]binding
	sections map[string]bool
}

// mapping applies the settings in n, the mapping at path prefix.
func (w yamlWalk) mapping(n *yaml.Node, prefix string) {
	n = deref(n)
	if isNull(n) { // "upstream:" with nothing under it
		return
	}
	if n.Kind != yaml.MappingNode {
		where := prefix
		if where == "" {
			where = "top level"
		}
		w.failf(n, "%s: expected a mapping of settings (key: value)", where)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			w.failf(k, "%s: set twice (first at line %d)", path, first)
			continue
		}
		seen[k.Value] = k.Line
		if b, ok := w.leaves[path]; ok {
			w.leaf(b, k, v)
		} else if w.sections[path] {
			w.mapping(v, path)
		} else if k.Tag == "!!merge" {
			w.failf(k, "merge keys (<<) are not supported")
		} else {
			w.failf(k, "unknown key %q%s", path, w.hint(path))
		}
	}
}

// leaf applies one setting. A null value (`listen:`) leaves the value
// from the layer below.
func (w yamlWalk) leaf(b binding, k, v *yaml.Node) {
	v = deref(v)
	if isNull(v) {
		return
	}
	if list, ok := b.field(w.l.cfg).(*[]NamedUpstream); ok && v.Kind == yaml.SequenceNode {
		w.upstreamList(b.Path, v, list) // the one list of mappings; see yamllist.go
		return
	}
	if list, ok := b.field(w.l.cfg).(*[]string); ok && v.Kind == yaml.SequenceNode {
		*list = nil
		for _, e := range v.Content {
			if e = deref(e); e.Kind != yaml.ScalarNode {
				w.failf(e, "%s: expected a list of single values", b.Path)
				return
			}
			*list = append(*list, e.Value)
		}
		w.l.from[b.Path] = fmt.Sprintf("%s:%d", w.name, k.Line)
		return
	}
	if v.Kind != yaml.ScalarNode {
		w.failf(k, "%s: expected a single value, not a list or mapping", b.Path)
		return
	}
	if err := setValue(b.field(w.l.cfg), v.Value); err != nil {
		w.failf(v, "%s: %w", b.Path, err)
		return
	}
	w.l.from[b.Path] = fmt.Sprintf("%s:%d", w.name, k.Line)
}

// hint suggests the key probably meant: the known path closest to path
// after lower-casing and dropping '_' and '-' ("max_size" → "maxSize"),
// within two edits ("lisen" → "listen").
func (w yamlWalk) hint(path string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	best, bestDist := "", 3
	consider := func(p string) {
		d := editDistance(norm(p), norm(path))
		if d < bestDist || d == bestDist && p < best {
			best, bestDist = p, d
		}
	}
	for p := range w.leaves {
		consider(p)
	}
	for p := range w.sections {
		consider(p)
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (w yamlWalk) failf(n *yaml.Node, format string, args ...any) {
	w.l.fail(fmt.Errorf("%s:%d: %w", w.name, n.Line, fmt.Errorf(format, args...)))
}

// deref follows an alias (*anchor) to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
