// Package haproxytest is HAProxy as the tests and the benchmark run it in
// front of wharf replicas (e2e's cluster proofs, make bench's cluster
// scenario): where the binary is, and its configuration, with
// deploy/cluster/haproxy.cfg's choices — round-robin per request, no
// stickiness, /healthz checks, a request refused by a replica tried on
// another — on 127.0.0.1 addresses. The callers run it in the foreground
// (haproxy -db -f FILE) as their own child process.
package haproxytest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Binary finds HAProxy: $WHARF_HAPROXY, then $PATH, then Debian's
// /usr/sbin (not on a user's PATH).
func Binary() (string, error) {
	if p := os.Getenv("WHARF_HAPROXY"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/haproxy"
	if _, err := os.Stat(debian); err != nil {
		return "", errors.New("no HAProxy: set WHARF_HAPROXY, put haproxy on PATH, or apt-get install haproxy")
	}
	return debian, nil
}

// Options are what differs between the callers.
type Options struct {
	Listen  string   // the registry frontend, 127.0.0.1:port
	Stats   string   // a stats listener (its CSV at /;csv), or "" for none
	Servers []string // the replicas' client listeners; server i is named r<i>
	// CheckEvery is the interval of the /healthz checks: two failures take
	// a replica out, one success puts it back.
	CheckEvery time.Duration
}

// Config is the haproxy.cfg for o.
func Config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    # Idle timeouts, not totals: a blob streams as long as bytes move.
    timeout client 5m
    timeout server 5m
    timeout http-request 30s
    timeout http-keep-alive 30s
    timeout queue 30s
    retries 2
    option redispatch

frontend registry
    bind %s
    default_backend wharf

backend wharf
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter %dms fall 2 rise 1
`, o.Listen, o.CheckEvery.Milliseconds())
	for i, s := range o.Servers {
		fmt.Fprintf(&b, "    server r%d %s\n", i, s)
	}
	if o.Stats != "" {
		fmt.Fprintf(&b, "\nlisten stats\n    bind %s\n    stats enable\n    stats uri /\n", o.Stats)
	}
	return b.String()
}
