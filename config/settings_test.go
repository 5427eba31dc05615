package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// yamlLeaves lists the YAML paths of every non-struct field of t.
func yamlLeaves(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		tag := f.Tag.Get("yaml")
		if tag == ",inline" { // an embedded Registry: its keys sit beside the others
			out = append(out, yamlLeaves(f.Type, prefix)...)
			continue
		}
		path := prefix + tag
		if f.Type.Kind() == reflect.Struct {
			out = append(out, yamlLeaves(f.Type, path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// TestSettingsCoverEveryField guards the table against the struct: a field
// added to Config without a row would be silently unsettable.
func TestSettingsCoverEveryField(t *testing.T) {
	t.Parallel()
	var paths []string
	for _, s := range Settings() {
		if s.Path != "" {
			paths = append(paths, s.Path)
		}
	}
	want := yamlLeaves(reflect.TypeFor[Config](), "")
	slices.Sort(paths)
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("settings table paths\n %q\nConfig's YAML fields\n %q", paths, want)
	}
}

func TestSettingsAreConsistent(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	def := Default()
	for _, b := range bindings() {
		for _, name := range []string{"path:" + b.Path, "flag:" + b.Flag, "env:" + b.Env} {
			if seen[name] && name != "path:" {
				t.Errorf("%s appears twice", name)
			}
			seen[name] = true
		}
		if b.Flag == "" || b.Env == "" || b.Arg == "" || b.Help == "" {
			t.Errorf("%+v: every setting needs a flag, a variable, an arg name and help", b.Setting)
		}
		// The variable is always the flag's name, so users can guess one
		// from the other.
		if want := "WHARF_" + strings.ToUpper(strings.ReplaceAll(b.Flag, "-", "_")); b.Env != want {
			t.Errorf("--%s: variable %s, want %s", b.Flag, b.Env, want)
		}
		if (b.Path == "") != (b.field == nil) {
			t.Errorf("--%s: a row has a path exactly when it has a field", b.Flag)
		}
		if b.field == nil {
			continue
		}
		// The parser reads back what the formatter writes for the default.
		c := def
		if text := formatValue(b.field(&def)); text != "" {
			if err := setValue(b.field(&c), text); err != nil {
				t.Errorf("%s: default %q does not parse: %v", b.Path, text, err)
			}
		}
		if !reflect.DeepEqual(c, def) {
			t.Errorf("%s: default does not survive format and parse", b.Path)
		}
	}
}

func TestLogLevelsAreLogrus(t *testing.T) {
	t.Parallel()
	for _, l := range logLevels() {
		if _, err := logrus.ParseLevel(l); err != nil {
			t.Errorf("log level %q: %v", l, err)
		}
	}
}

// TestExampleFile keeps example.yaml honest: it loads, it states exactly the
// defaults, and it mentions every field.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	got, err := Load([]string{"--config", "example.yaml"}, nil)
	if err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	if want := loaded(nil); !reflect.DeepEqual(got, want) {
		t.Errorf("example.yaml does not state the defaults:\n got %+v\nwant %+v", got, want)
	}
	text, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		if s.Path == "" {
			continue
		}
		key := s.Path[strings.LastIndex(s.Path, ".")+1:]
		if !strings.Contains(string(text), " "+key+":") && !strings.HasPrefix(string(text), key+":") &&
			!strings.Contains(string(text), "\n"+key+":") {
			t.Errorf("example.yaml does not mention %s", s.Path)
		}
	}
}
