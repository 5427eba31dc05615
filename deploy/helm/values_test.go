package helm_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// update rewrites wharf/README.md's values table from values.yaml:
// go test ./deploy/helm -run TestHelmValuesDocumented -update
var update = flag.Bool("update", false, "rewrite the values table of wharf/README.md")

// The lines around the values table in wharf/README.md.
const (
	tableBegin = "<!-- values table: made from values.yaml by TestHelmValuesDocumented (go test ./deploy/helm -run TestHelmValuesDocumented -update) -->"
	tableEnd   = "<!-- end of values table -->"
)

// value is one key of values.yaml: its dotted path, its default (empty
// for a key holding other keys) and its comment.
type value struct {
	path, def, doc string
}

// documentedValues walks values.yaml and returns every key, parents
// before their children, in the file's order. A key without a comment
// fails t.
func documentedValues(t *testing.T, data []byte) []value {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("values.yaml is not a mapping")
	}
	var out []value
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			path := prefix + k.Value
			text := comment(k.HeadComment)
			if text == "" {
				text = comment(k.LineComment)
			}
			if text == "" {
				t.Errorf("values.yaml:%d: %s has no comment", k.Line, path)
			}
			parent := v.Kind == yaml.MappingNode && len(v.Content) > 0
			def := ""
			if !parent {
				def = defaultOf(t, v)
			}
			out = append(out, value{path: path, def: def, doc: text})
			if parent {
				walk(path+".", v)
			}
		}
	}
	walk("", doc.Content[0])
	return out
}

// comment joins a YAML comment's lines into one sentence run, without the
// "#" marks.
func comment(c string) string {
	var words []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " ")
}

// defaultOf shows a value as README's table does: JSON, which is also
// what --set-json takes.
func defaultOf(t *testing.T, v *yaml.Node) string {
	t.Helper()
	var x any
	if err := v.Decode(&x); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// valuesTable is the Markdown table of every value.
func valuesTable(values []value) string {
	var b strings.Builder
	b.WriteString("| value | default | what it is |\n|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, v := range values {
		def := ""
		if v.def != "" {
			def = "`" + cell(v.def) + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.path, def, cell(v.doc))
	}
	return b.String()
}

// TestHelmValuesDocumented: every key of values.yaml has a comment, and
// wharf/README.md's table lists every key with its default and that
// comment, so the two cannot drift apart. With -update it rewrites the
// table.
func TestHelmValuesDocumented(t *testing.T) {
	data, err := os.ReadFile("wharf/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	values := documentedValues(t, data)
	if len(values) < 40 {
		t.Fatalf("found %d values in values.yaml: is the walk broken?", len(values))
	}
	const file = "wharf/README.md"
	readme, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := bytes.Cut(readme, []byte(tableBegin+"\n"))
	table, after, ok2 := bytes.Cut(rest, []byte(tableEnd))
	if !ok1 || !ok2 {
		t.Fatalf("%s has no values table between\n%s\nand\n%s", file, tableBegin, tableEnd)
	}
	want := valuesTable(values)
	if string(table) == want {
		return
	}
	if *update {
		out := bytes.Join([][]byte{before, []byte(tableBegin + "\n"), []byte(want), []byte(tableEnd), after}, nil)
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the values table of %s", file)
		return
	}
	t.Errorf("%s's values table is not values.yaml's (run go test ./deploy/helm -run TestHelmValuesDocumented -update); want:\n%s", file, want)
}
