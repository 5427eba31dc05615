package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHealthSettingsReachTheUpstream: upstream.downAfter and
// upstream.stallAfter, given as flags, are what the breaker uses. Against
// an upstream that accepts and never answers, with a 30s header timeout,
// one request stalled 200ms marks it down (defaults: 3 failures of 3s),
// and the next miss is a 503 at once rather than another wait.
func TestHealthSettingsReachTheUpstream(t *testing.T) {
	released := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" { // the start-up probe: let it through
			w.WriteHeader(http.StatusOK)
			return
		}
		select {
		case <-r.Context().Done():
		case <-released:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(released) })
	logs := newLogSink()
	addr, stop := serveLogged(t, logs, "--upstream", hang.URL, "--upstream-timeout", "30s",
		"--upstream-down-after", "1", "--upstream-stall-after", "200ms", "--upstream-retries", "0")

	first := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/v2/team/app/manifests/v1")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	logs.waitFor(t, func(es []logEntry) bool {
		for _, e := range es {
			if strings.HasPrefix(e.Msg, "upstream marked down") {
				return true
			}
		}
		return false
	})
	start := time.Now()
	resp, err := http.Get("http://" + addr + "/v2/team/app/manifests/v2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "is down") {
		t.Errorf("a miss once marked down: %d %s; want 503 saying the upstream is down", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the miss took %v: it waited for the hung upstream", d)
	}
	stop() // ends the first request too (its context), before the server closes
	<-first
}
