package e2e

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.2, …): another anonymous client to wharf.
func clientFrom(t *testing.T, ip string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}).DialContext
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// call sends method url with body from c and returns the status, the
// Location and Retry-After headers.
func call(t *testing.T, c *http.Client, method, url string, body []byte) (status int, loc, retry string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Retry-After")
}

// TestUploadSessionsCapped: open upload sessions are capped per client
// (anonymous clients by address) and in all; past a cap a new session is
// 429 TOOMANYREQUESTS with Retry-After; cancelling or finishing a session
// frees its slot, and a restart remembers whose sessions are open.
func TestUploadSessionsCapped(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	dir := t.TempDir()
	opts := pushOpts{dir: dir, writer: push.Options{UploadLimits: push.UploadLimits{Max: 5, PerClient: 3}}}
	p := startPusher(t, reg.URL, opts)
	a, b, c := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	start := func(cl *http.Client, p *pusher) (int, string, string) {
		return call(t, cl, "POST", p.URL+"/v2/team/app/blobs/uploads/", nil)
	}
	expect := func(what string, want int, status int, retry string) {
		t.Helper()
		if status != want {
			t.Fatalf("%s: %d, want %d", what, status, want)
		}
		if want == http.StatusTooManyRequests {
			if n, err := strconv.Atoi(retry); err != nil || n <= 0 {
				t.Errorf("%s: Retry-After %q", what, retry)
			}
		}
	}

	var sessions []string
	for i := 0; i < 3; i++ {
		st, loc, _ := start(a, p)
		expect("client a's session", http.StatusAccepted, st, "")
		sessions = append(sessions, loc)
	}
	st, _, retry := start(a, p)
	expect("client a past its cap", http.StatusTooManyRequests, st, retry)
	blob := randomBytes(t, 1000)
	st, _, retry = call(t, a, "POST", p.URL+"/v2/team/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), blob)
	expect("client a's monolithic upload past its cap", http.StatusTooManyRequests, st, retry)
	var bSessions []string
	for i := 0; i < 2; i++ {
		st, loc, _ := start(b, p)
		expect("client b's session", http.StatusAccepted, st, "")
		bSessions = append(bSessions, loc)
	}
	st, _, retry = start(c, p)
	expect("client c past the global cap", http.StatusTooManyRequests, st, retry)
	if n := testutil.ToFloat64(p.Metrics.LimitHits.WithLabelValues("uploads_client")); n != 2 {
		t.Errorf("wharf_limit_hits_total{limit=uploads_client} = %v, want 2", n)
	}
	if n := testutil.ToFloat64(p.Metrics.LimitHits.WithLabelValues("uploads_global")); n != 1 {
		t.Errorf("wharf_limit_hits_total{limit=uploads_global} = %v, want 1", n)
	}

	// Cancelling frees a slot (c gets it); finishing frees one (a gets it).
	st, _, _ = call(t, a, "DELETE", p.URL+sessions[0], nil)
	expect("cancel", http.StatusNoContent, st, "")
	st, _, _ = start(c, p)
	expect("client c after a cancel", http.StatusAccepted, st, "")
	st, _, _ = call(t, a, "PUT", p.URL+sessions[1]+"?digest="+digest.FromBytes(blob).String(), blob)
	expect("finish", http.StatusCreated, st, "")
	st, _, _ = start(a, p)
	expect("client a after a finish", http.StatusAccepted, st, "")
	st, _, retry = start(b, p)
	expect("client b at the global cap", http.StatusTooManyRequests, st, retry)

	// A restart counts the open sessions by their clients again.
	p.stop()
	p = startPusher(t, reg.URL, opts)
	st, _, retry = start(a, p)
	expect("client a after a restart", http.StatusTooManyRequests, st, retry)
	st, _, _ = call(t, b, "DELETE", p.URL+bSessions[0], nil)
	expect("cancel after the restart", http.StatusNoContent, st, "")
	st, _, _ = start(b, p)
	expect("client b after its cancel", http.StatusAccepted, st, "")
}
