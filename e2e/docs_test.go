package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The docs are true: TestDocs finds every fenced code block of README.md
// and of the Markdown under deploy/ and docs/, and checks each one the way
// the HTML comment on the line before it says. A block without one fails
// the test with its file:line, so no example can be added unchecked.
//
//	<!-- run[: OPTIONS] -->        an sh block, run by bash against a real
//	                               wharf (docsrun_test.go: the set-up and
//	                               the substitution table)
//	<!-- load: KIND [ARG] -->      a file's content, fed to what reads it:
//	                               wharf-config [serve] (wharf's loader;
//	                               serve: then served and pulled through),
//	                               daemon.json (dockerd's keys, then the
//	                               mirror asked as dockerd asks it),
//	                               hosts.toml DIR (decoded strictly, then
//	                               containerd's resolver, through wharf)
//	<!-- checked-by: TestA [TestB] [key "…"] -->
//	<!-- output-of: TestA [key "…"] -->
//	                               a test runs this example (or prints this
//	                               output): each test must exist, and read
//	                               this Markdown file or contain every key
//	                               (each of which must be in the block)
//	<!-- make -->                  every `make X` is a documented target
//	<!-- go-test -->               every `go test -run RE PKG` names tests
//	                               that exist in PKG
//	<!-- drawing -->               a diagram: each `dir/` it names exists
//
// `make docs-check` runs TestDocs and then every test a checked-by or
// output-of marker names.

// docBlock is one fenced code block of a Markdown file.
type docBlock struct {
	file   string // relative to the repository root
	line   int    // of the opening fence, 1-based
	lang   string
	body   string
	marker string // the comment's text, "" if none
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var (
	fenceRE  = regexp.MustCompile("^(\\s*)(```+)\\s*([\\w.+-]*)\\s*$")
	markerRE = regexp.MustCompile(`^\s*<!--\s*(.*?)\s*-->\s*$`)
)

// repoRoot is the repository's root, seen from e2e/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// docFiles lists README.md and every .md under deploy/ and docs/.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	for _, dir := range []string{"deploy", "docs"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".md" {
				return err
			}
			rel, err := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// parseBlocks returns the fenced code blocks of a Markdown file, each with
// the comment on the nearest non-blank line before its fence.
func parseBlocks(file string, data []byte) ([]docBlock, error) {
	var blocks []docBlock
	var cur *docBlock
	var indent, fence, prev string
	var body strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur != nil {
			if strings.TrimSpace(line) == fence {
				cur.body = body.String()
				blocks = append(blocks, *cur)
				cur, prev = nil, ""
				continue
			}
			body.WriteString(strings.TrimPrefix(line, indent) + "\n")
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			cur = &docBlock{file: file, line: n, lang: m[3]}
			indent, fence = m[1], m[2]
			if mm := markerRE.FindStringSubmatch(prev); mm != nil {
				cur.marker = mm[1]
			}
			body.Reset()
			continue
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if cur != nil {
		return blocks, fmt.Errorf("%s: unclosed code block", cur)
	}
	return blocks, sc.Err()
}

// allDocBlocks parses every documentation file.
func allDocBlocks(t *testing.T, root string) []docBlock {
	t.Helper()
	var all []docBlock
	for _, f := range docFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := parseBlocks(f, data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, bs...)
	}
	return all
}

// readDocBlock returns the body of the code block in file (relative to the
// repository root) whose fence follows the line containing lead; tests
// that run an example read it this way so that it cannot drift.
func readDocBlock(t *testing.T, file, lead string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(lead))
	if i < 0 {
		t.Fatalf("%s has no %q", file, lead)
	}
	bs, err := parseBlocks(file, data[i:])
	if err != nil || len(bs) == 0 {
		t.Fatalf("%s: no code block after %q: %v", file, lead, err)
	}
	return bs[0].body
}

// splitMarker splits a marker into its kind and its arguments, which are
// words or double-quoted strings.
func splitMarker(m string) (kind string, args []string, err error) {
	kind, rest, _ := strings.Cut(m, ":")
	if f := strings.Fields(kind); len(f) > 1 { // "drawing", "run" without ":"
		kind, rest = f[0], strings.TrimPrefix(m, f[0])
	}
	kind = strings.TrimSpace(kind)
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] == '"' {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return "", nil, fmt.Errorf("marker %q: %v", m, err)
			}
			s, _ := strconv.Unquote(q)
			args = append(args, s)
			rest = rest[len(q):]
			continue
		}
		end := strings.IndexFunc(rest, unicode.IsSpace)
		if end < 0 {
			end = len(rest)
		}
		args = append(args, strings.TrimSuffix(rest[:end], ","))
		rest = rest[end:]
	}
	return kind, args, nil
}

func TestDocs(t *testing.T) {
	root := repoRoot(t)
	blocks := allDocBlocks(t, root)
	if len(blocks) < 15 {
		t.Fatalf("found %d code blocks in the docs, want at least 15: is the parser broken?", len(blocks))
	}
	var unmarked []string
	for _, b := range blocks {
		if b.marker == "" {
			unmarked = append(unmarked, b.String())
		}
	}
	if len(unmarked) > 0 {
		t.Errorf("code blocks without a check (put <!-- run -->, <!-- load: … -->, <!-- checked-by: TestX --> … on the line before; see e2e/docs_test.go):\n\t%s",
			strings.Join(unmarked, "\n\t"))
	}
	env := &docsEnv{}
	if !testing.Short() {
		env.setup(t)
	}
	for _, b := range blocks {
		if b.marker == "" {
			continue
		}
		kind, args, err := splitMarker(b.marker)
		if err != nil {
			t.Errorf("%s: %v", b, err)
			continue
		}
		t.Run(strings.ReplaceAll(b.String(), "/", "_"), func(t *testing.T) {
			switch kind {
			case "checked-by", "output-of":
				checkNamedTests(t, root, b, args)
			case "make":
				checkMakeTargets(t, root, b)
			case "go-test":
				checkGoTestLines(t, root, b)
			case "drawing":
				checkDrawing(t, root, b)
			case "run":
				env.run(t, b, args)
			case "load":
				env.load(t, b, args)
			default:
				t.Errorf("%s: unknown marker %q", b, b.marker)
			}
		})
	}
}

// testSources maps each test function of the repository to its file and
// its source text (from `func` to the closing brace at column 0).
func testSources(t *testing.T, root string) map[string]testSource {
	t.Helper()
	funcs := map[string]testSource{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			name, ok := strings.CutPrefix(l, "func Test")
			if !ok {
				continue
			}
			name, _, _ = strings.Cut(name, "(")
			end := i + 1
			for end < len(lines) && lines[end] != "}" {
				end++
			}
			funcs["Test"+name] = testSource{file: p, body: strings.Join(lines[i:min(end+1, len(lines))], "\n")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs
}

type testSource struct{ file, body string }

var stringLitRE = regexp.MustCompile(`"([^"\\\n]+)"`)

// readsDoc tells whether src has a string literal naming doc (relative to
// the repository root), as a path from the repository root or from the
// test file's directory.
func readsDoc(root string, src testSource, doc string) bool {
	for _, m := range stringLitRE.FindAllStringSubmatch(src.body, -1) {
		lit := m[1]
		for _, p := range []string{filepath.Join(root, lit), filepath.Join(filepath.Dir(src.file), lit)} {
			if filepath.Clean(p) == filepath.Join(root, doc) {
				return true
			}
		}
	}
	return false
}

// checkNamedTests: every test named exists, and each either reads the
// block's file or contains every key, each of which is in the block.
func checkNamedTests(t *testing.T, root string, b docBlock, args []string) {
	var tests, keys []string
	for i := 0; i < len(args); i++ {
		if args[i] == "key" && i+1 < len(args) {
			keys = append(keys, args[i+1])
			i++
			continue
		}
		tests = append(tests, args[i])
	}
	if len(tests) == 0 {
		t.Fatalf("%s: the marker names no test", b)
	}
	for _, k := range keys {
		if !strings.Contains(b.body, k) {
			t.Errorf("%s: key %q is not in the block", b, k)
		}
	}
	src := testSources(t, root)
	for _, name := range tests {
		s, ok := src[name]
		if !ok {
			t.Errorf("%s: no func %s( in any _test.go", b, name)
			continue
		}
		if readsDoc(root, s, b.file) {
			continue
		}
		if len(keys) == 0 {
			t.Errorf("%s: %s does not read %s and the marker gives no key content to find in it", b, name, b.file)
		}
		for _, k := range keys {
			if !strings.Contains(s.body, k) {
				t.Errorf("%s: %s (%s) does not contain %q", b, name, s.file, k)
			}
		}
	}
}

// checkMakeTargets: each line's `make X` names a target of the Makefile
// that has a "## X:" comment (the ones `make` users are meant to call).
func checkMakeTargets(t *testing.T, root string, b docBlock) {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(b.body, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "make" {
			if len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				t.Errorf("%s: %q is not a make command", b, l)
			}
			continue
		}
		n++
		target := f[1]
		if !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(target)+`:`).Match(mk) ||
			!regexp.MustCompile(`(?m)^## `+regexp.QuoteMeta(target)+`:`).Match(mk) {
			t.Errorf("%s: make %s: no documented target %q in the Makefile", b, target, target)
		}
	}
	if n == 0 {
		t.Errorf("%s: no make command", b)
	}
}

var testFuncRE = regexp.MustCompile(`(?m)^func (Test\w+)\(`)

// checkGoTestLines: every `go test … -run RE … ./PKG/` names a package
// that exists and tests in it that RE selects.
func checkGoTestLines(t *testing.T, root string, b docBlock) {
	n := 0
	for _, l := range strings.Split(b.body, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "go" || f[1] != "test" {
			continue
		}
		n++
		var re *regexp.Regexp
		var pkgs []string
		for i := 2; i < len(f); i++ {
			switch {
			case f[i] == "-run" && i+1 < len(f):
				i++
				var err error
				if re, err = regexp.Compile(strings.Trim(f[i], `'"`)); err != nil {
					t.Fatalf("%s: -run %s: %v", b, f[i], err)
				}
			case strings.HasPrefix(f[i], "./"):
				pkgs = append(pkgs, strings.TrimSuffix(f[i], "/"))
			}
		}
		if re == nil || len(pkgs) == 0 {
			t.Errorf("%s: %q: no -run pattern or no package", b, l)
			continue
		}
		var matched []string
		for _, p := range pkgs {
			files, _ := filepath.Glob(filepath.Join(root, p, "*_test.go"))
			if len(files) == 0 {
				t.Errorf("%s: %s has no tests", b, p)
			}
			for _, file := range files {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range testFuncRE.FindAllStringSubmatch(string(data), -1) {
					if re.MatchString(m[1]) {
						matched = append(matched, m[1])
					}
				}
			}
		}
		if len(matched) == 0 {
			t.Errorf("%s: -run %s selects no test in %s", b, re, pkgs)
		}
		slices.Sort(matched)
		t.Logf("%s: -run %s selects %s", b, re, matched)
	}
	if n == 0 {
		t.Errorf("%s: no go test command", b)
	}
}

var drawnDirRE = regexp.MustCompile(`(?:^|\s)([a-z][a-z0-9]*/)(?:\s|$)`)

// checkDrawing: every directory a diagram names by itself ("proxy/") is
// one of the repository's.
func checkDrawing(t *testing.T, root string, b docBlock) {
	n := 0
	for _, m := range drawnDirRE.FindAllStringSubmatch(b.body, -1) {
		n++
		if st, err := os.Stat(filepath.Join(root, m[1])); err != nil || !st.IsDir() {
			t.Errorf("%s: the drawing names %s, which is not a directory of the repository", b, m[1])
		}
	}
	if n == 0 {
		t.Errorf("%s: the drawing names no directory to check", b)
	}
}

// TestDocBlockParser: fences, indented fences in lists, markers across a
// blank line, and a comment that is not right before a fence.
func TestDocBlockParser(t *testing.T) {
	md := "# t\n\n<!-- run -->\n```sh\necho a\n```\n\ntext\n<!-- not a marker -->\ntext\n```\nplain\n```\n\n1. item\n\n   <!-- load: hosts.toml _default -->\n\n   ```toml\n   [host]\n   ```\n"
	bs, err := parseBlocks("x.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	want := []docBlock{
		{file: "x.md", line: 4, lang: "sh", body: "echo a\n", marker: "run"},
		{file: "x.md", line: 11, lang: "", body: "plain\n"},
		{file: "x.md", line: 19, lang: "toml", body: "[host]\n", marker: "load: hosts.toml _default"},
	}
	if !slices.Equal(bs, want) {
		t.Errorf("parsed %+v\nwant %+v", bs, want)
	}
	kind, args, err := splitMarker(`checked-by: TestA TestB key "a b" key "c"`)
	if err != nil || kind != "checked-by" || !slices.Equal(args, []string{"TestA", "TestB", "key", "a b", "key", "c"}) {
		t.Errorf("splitMarker: %q %q %v", kind, args, err)
	}
	if kind, args, _ := splitMarker("drawing"); kind != "drawing" || len(args) != 0 {
		t.Errorf("splitMarker(drawing): %q %q", kind, args)
	}
}

var (
	docTestNameRE = regexp.MustCompile(`\bTest[A-Z]\w*`)
	docPathRE     = regexp.MustCompile("`([a-z][\\w.-]*(?:/[\\w.-]+)*\\.(?:go|sh|yaml|toml|json|conf|md|service|svg))`")
	docMetricRE   = regexp.MustCompile(`\bwharf_[a-z_]+[a-z]`)
)

// TestDocsNameRealThings: the prose names only tests, files and metrics
// that exist. A test name may be a -run prefix (TestDeploy); a path is
// from the repository root or from the Markdown file's directory.
func TestDocsNameRealThings(t *testing.T) {
	root := repoRoot(t)
	tests := testSources(t, root)
	metrics, _ := wharfMetricNames(t)
	var files []string // every file of the repository, slash-separated from its root
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" { // a directory, or a worktree's file
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range docFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, name := range docTestNameRE.FindAllString(text, -1) {
			if _, ok := tests[name]; ok {
				continue
			}
			prefix := false
			for have := range tests {
				prefix = prefix || strings.HasPrefix(have, name)
			}
			if !prefix {
				t.Errorf("%s names %s: no such test", f, name)
			}
		}
		for _, m := range docPathRE.FindAllStringSubmatch(text, -1) {
			if !strings.Contains(m[1], "/") {
				continue // index.json, config.json: a file of some format, not of ours
			}
			found := false
			for _, p := range files {
				found = found || p == m[1] || strings.HasPrefix(p, path.Dir(f)+"/") && strings.HasSuffix(p, "/"+m[1])
			}
			if !found {
				t.Errorf("%s names %s: no such file here or under %s", f, m[1], path.Dir(f))
			}
		}
		for _, name := range docMetricRE.FindAllString(text, -1) {
			if !metrics[name] {
				t.Errorf("%s names the metric %s, which metrics/ does not define", f, name)
			}
		}
	}
}
