package metrics

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestNamesAreRegistered: every name constant in names.go is a collector
// New registers, so a reader by name (the status page) cannot be left
// reading a metric that no longer exists. A probe under a registered name
// is refused, as its help differs; under a free name it is accepted.
func TestNamesAreRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	names := nameConstants(t)
	if len(names) < 14 {
		t.Fatalf("found %d name constants in names.go: %v", len(names), names)
	}
	for ident, name := range names {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
		if err := reg.Register(probe); err == nil {
			t.Errorf("%s = %q is not a registered metric", ident, name)
		}
	}
	if err := reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "wharf_no_such_metric", Help: "probe"})); err != nil {
		t.Fatalf("the probe fails on a free name too: %v", err)
	}
}

// nameConstants reads names.go's string constants, identifier to value.
func nameConstants(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "names.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, id := range vs.Names {
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, err := strconv.Unquote(lit.Value)
				if err != nil || !strings.HasPrefix(v, "wharf_") {
					t.Errorf("%s = %s: not a wharf metric name", id.Name, lit.Value)
				}
				out[id.Name] = v
			}
		}
		return true
	})
	return out
}
