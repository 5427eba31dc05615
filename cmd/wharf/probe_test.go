package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestServeWarnsAboutEachMisconfiguredUpstream starts serve with one
// upstream of each kind of mistake (real servers: https:// against a
// plain-HTTP registry, a closed port, http:// against a TLS-only
// registry) and two healthy ones (open, and a 401 behind Basic auth): it
// serves at once, and logs exactly one warning for each mistake, naming
// its setting and what to change, and none for the healthy ones.
func TestServeWarnsAboutEachMisconfiguredUpstream(t *testing.T) {
	plain := upstreamtest.NewRegistry(t)
	authed := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("u", "p"))
	tlsOnly := httptest.NewTLSServer(registry.New())
	t.Cleanup(tlsOnly.Close)
	tlsHost := tlsOnly.Listener.Addr().String()

	want := map[string]string{ // setting → what its warning must say
		"upstream.url":     "use http://" + plain.Host,
		"upstreams[0].url": "connection refused",
		"upstreams[1].url": "use https://" + tlsHost,
		"upstreams[2].url": "",
		"upstreams[3].url": "",
	}
	logs := newLogSink()
	_, stop := serveLogged(t, logs, "--upstream", "https://"+plain.Host, "--upstreams",
		"refused.site="+"http://"+freePort(t)+",tls.site=http://"+tlsHost+",open.site="+plain.URL+",authed.site="+authed.URL)
	// Every probe reports, a warning or (at debug level) a healthy answer.
	logs.waitFor(t, func(es []logEntry) bool {
		for setting := range want {
			if len(probeOutcomes(es, setting)) == 0 {
				return false
			}
		}
		return true
	})
	stop()
	for setting, says := range want {
		var warnings []logEntry
		for _, e := range withSetting(logs.all(), setting) {
			if e.Level == "warning" {
				warnings = append(warnings, e)
			}
		}
		switch {
		case says == "" && len(warnings) != 0:
			t.Errorf("%s is healthy but warned about: %+v", setting, warnings)
		case says != "" && len(warnings) != 1:
			t.Errorf("%s: %d warnings, want one: %+v", setting, len(warnings), warnings)
		case says != "" && (!strings.Contains(warnings[0].Msg, setting) || !strings.Contains(warnings[0].Msg, says)):
			t.Errorf("%s: warning %q does not name the setting and %q", setting, warnings[0].Msg, says)
		}
	}
}

// TestServeDoesNotWaitForTheProbe: with an upstream that accepts and
// never answers, serve answers while its probe hangs, and stopping serve
// stops the probe (goleak in TestMain checks nothing is left) without
// waiting out the probe's timeout or warning about an upstream it did not
// finish asking.
func TestServeDoesNotWaitForTheProbe(t *testing.T) {
	arrived := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done() // until the probe gives up
	}))
	t.Cleanup(hang.Close)
	logs := newLogSink()
	addr, stop := serveLogged(t, logs, "--upstream", hang.URL)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the start-up probe never reached the upstream")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz while the probe hangs: %v %v", resp, err)
	}
	resp.Body.Close()
	start := time.Now()
	stop()
	if d := time.Since(start); d >= 5*time.Second { // the probe's own timeout
		t.Errorf("serve took %s to stop: it waited for the probe", d)
	}
	if w := probeOutcomes(logs.all(), "upstream.url"); len(w) != 0 {
		t.Errorf("a probe cut short by shutdown was reported: %+v", w)
	}
}

// TestOfflineServeDoesNotProbe: an offline wharf never asks an upstream,
// not even at start, and says nothing about one being down: in an air
// gap it is meant to be.
func TestOfflineServeDoesNotProbe(t *testing.T) {
	var asked atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1) }))
	t.Cleanup(up.Close)
	logs := newLogSink()
	_, stop := serveLogged(t, logs, "--upstream", up.URL, "--offline")
	stop() // probes are logged as they start, before serve serves: all is in the log once it returns
	if n := asked.Load(); n != 0 {
		t.Errorf("the upstream of an offline wharf was asked %d times", n)
	}
	if es := withSetting(logs.all(), "upstream.url"); len(es) != 0 {
		t.Errorf("an offline wharf probed its upstream: %+v", es)
	}
}

// TestUpstreamURLEndingInV2IsTrimmed: a default and a named upstream
// given with /v2/ and /v2 at the end are used without it, each with a
// warning naming its setting: pulls through both work (kept, the suffix
// made wharf ask for /v2/v2/…, "manifest unknown").
func TestUpstreamURLEndingInV2IsTrimmed(t *testing.T) {
	def := upstreamtest.NewRegistry(t)
	named := upstreamtest.NewRegistry(t)
	wantDef := upstreamtest.Push(t, def, "library/hello:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)).Digest
	wantNamed := upstreamtest.Push(t, named, "team/app:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)).Digest
	logs := newLogSink()
	addr, stop := serveLogged(t, logs, "--upstream", def.URL+"/v2/", "--upstream-official-library=true",
		"--upstreams", "named.site="+named.URL+"/v2")
	for ref, want := range map[string]digest.Digest{addr + "/hello:v1": wantDef, addr + "/named.site/team/app:v1": wantNamed} {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, r, hashOf(t, want))
	}
	stop()
	for setting, url := range map[string]string{"upstream.url": def.URL, "upstreams[0].url": named.URL} {
		var trimmed int
		for _, e := range withSetting(logs.all(), setting) {
			if e.Level == "warning" && strings.Contains(e.Msg, "ends in /v2") && strings.Contains(e.Msg, "using "+url+";") {
				trimmed++
			}
		}
		if trimmed != 1 {
			t.Errorf("%s: %d warnings that /v2 was trimmed to %s, want 1:\n%+v", setting, trimmed, url, logs.all())
		}
	}
}

// serveLogged runs serve with JSON logs at debug level into logs, until
// the returned stop is called (also at cleanup).
func serveLogged(t *testing.T, logs *logSink, args ...string) (addr string, stop func()) {
	t.Helper()
	addr = freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", addr, "--data", t.TempDir(),
			"--log-level", "debug", "--log-format", "json"}, args...), logs, logs)
	}()
	logs.waitFor(t, func(es []logEntry) bool {
		for _, e := range es {
			if e.Msg == "wharf serving" {
				return true
			}
		}
		return false
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}

// logEntry is what these tests read of one JSON log line.
type logEntry struct {
	Level   string `json:"level"`
	Msg     string `json:"msg"`
	Setting string `json:"setting"`
	Content string `json:"content"`
	// The caps of the start-up line with storage.s3.
	LocalMaxSize string `json:"localMaxSize"`
	S3MaxSize    string `json:"s3MaxSize"`
}

// logSink collects serve's JSON log lines and wakes a waiting test after
// each one, so the test waits on the line it expects, not on a clock.
type logSink struct {
	mu      sync.Mutex
	entries []logEntry
	raw     strings.Builder // every line as written, to look for what must never be logged
	added   chan struct{}
}

func newLogSink() *logSink { return &logSink{added: make(chan struct{}, 1)} }

// Write takes one entry per line (logrus writes an entry in one call).
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.raw.Write(p)
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			s.entries = append(s.entries, e)
		}
	}
	s.mu.Unlock()
	select {
	case s.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *logSink) all() []logEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]logEntry(nil), s.entries...)
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// waitFor returns once done holds for the entries logged so far.
func (s *logSink) waitFor(t *testing.T, done func([]logEntry) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for !done(s.all()) {
		select {
		case <-s.added:
		case <-timeout:
			t.Fatalf("the expected log lines never came:\n%+v", s.all())
		}
	}
}

// probeOutcomes are the entries about setting that report a probe's
// answer, a warning or a healthy answer, not its start.
func probeOutcomes(es []logEntry, setting string) []logEntry {
	var out []logEntry
	for _, e := range withSetting(es, setting) {
		if e.Msg != "probing upstream" {
			out = append(out, e)
		}
	}
	return out
}

func withSetting(es []logEntry, setting string) []logEntry {
	var out []logEntry
	for _, e := range es {
		if e.Setting == setting {
			out = append(out, e)
		}
	}
	return out
}
