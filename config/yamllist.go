package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// upstreamList decodes the one list setting, `upstreams:`, a sequence of
// mappings, as strictly as the rest of the file: every key known, none
// twice, each problem naming its entry ("upstreams[1].urll"). The file's
// list replaces the (empty) default; the environment and flags then merge
// into it by name.
func (w yamlWalk) upstreamList(path string, seq *yaml.Node, list *[]NamedUpstream) {
	out := make([]NamedUpstream, 0, len(seq.Content))
	for i, item := range seq.Content {
		item = deref(item)
		at := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.MappingNode {
			w.failf(item, "%s: expected a mapping (name: ..., url: ...)", at)
			continue
		}
		var u NamedUpstream
		fields := u.fields()
		seen := map[string]int{}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], deref(item.Content[j+1])
			key := at + "." + k.Value
			p, known := fields[k.Value]
			switch first, dup := seen[k.Value]; {
			case dup:
				w.failf(k, "%s: set twice (first at line %d)", key, first)
				continue
			case !known:
				w.failf(k, "unknown key %q%s", key, closestKey(k.Value, fields, at+"."))
				continue
			}
			seen[k.Value] = k.Line
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.ScalarNode {
				w.failf(k, "%s: expected a single value, not a list or mapping", key)
				continue
			}
			if err := setEntryField(p, v.Value); err != nil {
				w.failf(v, "%s: %w", key, err)
				continue
			}
			w.l.from[key] = fmt.Sprintf("%s:%d", w.name, k.Line)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		out = nil // "upstreams: []" is the default, none
	}
	*list = out
	w.l.from[path] = fmt.Sprintf("%s:%d", w.name, seq.Line)
}

// closestKey suggests the entry key probably meant, as hint does for
// settings: within two edits after ignoring case, '_' and '-'.
func closestKey(key string, fields map[string]any, prefix string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	best, bestDist := "", 3
	for _, k := range keys {
		if d := editDistance(norm(k), norm(key)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", prefix+best)
}
