package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// troubleDoc is the file whose Troubleshooting section holds the table of
// what clients print; the test reads the table, so the README says what
// the clients were seen to print.
const troubleDoc = "../README.md"

// troubleRow is one row of the table: a failure and, per column, the
// phrases (the cell's `code spans`) that must appear in what the client
// printed or, in the "wharf answers" column, among wharf's answers.
type troubleRow struct {
	cells map[string]string   // column heading → the cell's text
	spans map[string][]string // column heading → the cell's code spans
}

// troubleColumns are the headings the table must have.
var troubleColumns = []string{"failure", "wharf answers", "docker prints", "crane prints", "ctr prints", "what it means, what to do"}

// readTroubleTable returns the rows of the table in doc's "##
// Troubleshooting" section whose heading row starts with "failure", keyed
// by the failure cell.
func readTroubleTable(t *testing.T, doc string) map[string]troubleRow {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdownSection(b, "## Troubleshooting")
	if !ok {
		t.Fatalf("%s has no \"## Troubleshooting\" section", doc)
	}
	var head []string
	rows := map[string]troubleRow{}
	sc := bufio.NewScanner(bytes.NewReader(section))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if head != nil {
				break // the end of the table
			}
			continue
		}
		cells := tableCells(line)
		switch {
		case head == nil && len(cells) > 0 && cells[0] == "failure":
			head = cells
			for i, want := range troubleColumns {
				if i >= len(head) || head[i] != want {
					t.Fatalf("%s: troubleshooting table's columns are %q, want %q", doc, head, troubleColumns)
				}
			}
		case head == nil || strings.Trim(line, "|-: ") == "":
		default:
			if len(cells) != len(head) {
				t.Fatalf("%s: row %q has %d cells, want %d", doc, line, len(cells), len(head))
			}
			r := troubleRow{cells: map[string]string{}, spans: map[string][]string{}}
			for i, h := range head {
				r.cells[h] = cells[i]
				r.spans[h] = codeSpans(cells[i])
			}
			rows[cells[0]] = r
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table with a %q column in its Troubleshooting section", doc, "failure")
	}
	return rows
}

// markdownSection returns the lines from heading to the next heading of
// the same or a higher level.
func markdownSection(doc []byte, heading string) ([]byte, bool) {
	level := strings.Index(heading, " ")
	var out bytes.Buffer
	in := false
	for _, line := range strings.SplitAfter(string(doc), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if trimmed == heading {
			in = true
			continue
		}
		if in {
			if n := len(trimmed) - len(strings.TrimLeft(trimmed, "#")); n > 0 && n <= level && strings.HasPrefix(trimmed[n:], " ") {
				break
			}
			out.WriteString(line)
		}
	}
	return out.Bytes(), in
}

// tableCells splits a markdown table row; a `|` inside a code span is
// escaped as `\|` in the source.
func tableCells(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

func codeSpans(cell string) []string {
	var spans []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		spans = append(spans, m[1])
	}
	return spans
}

// answerRecorder is a reverse proxy in front of wharf that notes each
// error wharf answered, as "STATUS CODE" (the v2 code of the body), so a
// test can tell what reached the client whatever the client printed.
type answerRecorder struct {
	URL, Host string
	mu        sync.Mutex
	answers   []string
	requests  int
}

func newAnswerRecorder(t *testing.T, target string) *answerRecorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ar := &answerRecorder{}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host },
		Transport:     tr,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			ar.note(resp)
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		tr.CloseIdleConnections()
	})
	ar.URL, ar.Host = srv.URL, srv.Listener.Addr().String()
	return ar
}

// note records resp if it is an error, reading its (small) v2 body and
// putting it back for the client.
func (ar *answerRecorder) note(resp *http.Response) {
	ar.mu.Lock()
	ar.requests++
	ar.mu.Unlock()
	if resp.StatusCode < 400 {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var env errorEnvelope
	answer := resp.Status[:3]
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		answer += " " + env.Errors[0].Code
	}
	ar.mu.Lock()
	ar.answers = append(ar.answers, answer)
	ar.mu.Unlock()
}

type errorEnvelope struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// take returns the errors and the number of requests seen since the last
// take.
func (ar *answerRecorder) take() ([]string, int) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	a, n := ar.answers, ar.requests
	ar.answers, ar.requests = nil, 0
	return a, n
}

// TestTroubleTableParsing: the reader finds the table by its heading row
// inside the Troubleshooting section only, splits cells at unescaped
// pipes and collects each cell's code spans.
func TestTroubleTableParsing(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "README.md")
	head := "| " + strings.Join(troubleColumns, " | ") + " |\n|---|---|---|---|---|---|\n"
	text := "## Other\n\n" + head + "| elsewhere | a | b | c | d | e |\n\n" +
		"## Troubleshooting\n\n| warning says | meaning |\n|---|---|\n| `x` | y |\n\n### What clients print\n\n" + head +
		"| upstream down | `503 UNAVAILABLE` | `a \\| b`, `c` | nothing | — | why |\n\n## Performance\n\n" +
		head + "| later | a | b | c | d | e |\n"
	if err := os.WriteFile(doc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := readTroubleTable(t, doc)
	if len(rows) != 1 {
		t.Fatalf("rows %v, want only the Troubleshooting table's one", rows)
	}
	r := rows["upstream down"]
	if got := r.spans["docker prints"]; len(got) != 2 || got[0] != "a | b" || got[1] != "c" {
		t.Errorf("docker cell spans %q, want [\"a | b\" \"c\"]", got)
	}
	if got := r.spans["wharf answers"]; len(got) != 1 || got[0] != "503 UNAVAILABLE" {
		t.Errorf("wharf cell spans %q", got)
	}
	if r.cells["ctr prints"] != "—" || r.cells["what it means, what to do"] != "why" {
		t.Errorf("cells %q", r.cells)
	}
}
