package proxy

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream"
)

// grouping returns a logger feeding a fresh RecentErrors of n groups.
func grouping(n int) (*logrus.Logger, *RecentErrors) {
	recent := NewRecentErrors(n)
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.AddHook(recent)
	return log, recent
}

var t0 = time.Date(2026, 12, 2, 4, 12, 0, 0, time.UTC)

// TestRecentErrorsGroupsRepeats: the same failure on one repository is one
// row, counted, with its first and last time; another repository or
// another kind of failure is a row of its own.
func TestRecentErrorsGroupsRepeats(t *testing.T) {
	log, recent := grouping(10)
	unavailable := &upstream.Error{Upstream: "docker.io", Op: "GET manifest a:1", Status: 503, Err: upstream.ErrUnavailable}
	for i := range 5 {
		log.WithTime(t0.Add(time.Duration(i) * time.Second)).
			WithFields(logrus.Fields{"repo": "docker.io/team/a", "route": "manifest", "request_id": fmt.Sprint("req-", i)}).
			WithError(fmt.Errorf("manifest a:1: %w", unavailable)).Error("request failed")
	}
	log.WithTime(t0.Add(time.Minute)).WithField("repo", "docker.io/team/b").WithError(unavailable).Error("request failed")
	log.WithTime(t0.Add(2*time.Minute)).WithField("repo", "docker.io/team/a").
		WithError(fmt.Errorf("fill: %w", cache.ErrFillDigestMismatch)).Warn("blob fill failed; nothing kept")

	got := recent.Entries()
	if len(got) != 3 {
		t.Fatalf("%d groups, want 3: %+v", len(got), got)
	}
	mismatch, b, a := got[0], got[1], got[2] // the one seen last first
	if a.Repo != "docker.io/team/a" || a.Count != 5 || !a.First.Equal(t0) || !a.Last.Equal(t0.Add(4*time.Second)) {
		t.Errorf("repeated group = %+v, want count 5 from %v to %v", a, t0, t0.Add(4*time.Second))
	}
	if a.Kind != "upstream failed" || a.Words != "upstream docker.io failed: 503 Service Unavailable" || a.Level != "error" {
		t.Errorf("repeated group says %q %q (%s)", a.Kind, a.Words, a.Level)
	}
	if a.RequestID != "req-4" || a.Route != "manifest" {
		t.Errorf("repeated group keeps request %q on %q, want the last one, req-4 on manifest", a.RequestID, a.Route)
	}
	if !strings.Contains(a.Raw, "request failed: manifest a:1: upstream docker.io: GET manifest a:1: 503 upstream unavailable") {
		t.Errorf("raw chain %q", a.Raw)
	}
	if b.Repo != "docker.io/team/b" || b.Count != 1 {
		t.Errorf("second repository = %+v, want its own row", b)
	}
	if mismatch.Repo != "docker.io/team/a" || mismatch.Kind != "digest mismatch" || mismatch.Level != "warning" ||
		!strings.Contains(mismatch.Words, "bytes were discarded") {
		t.Errorf("another kind on the same repository = %+v, want its own row", mismatch)
	}
}

// TestRecentErrorsCapDropsOldest: past its cap, a new group replaces the
// one seen longest ago (not the one created first).
func TestRecentErrorsCapDropsOldest(t *testing.T) {
	log, recent := grouping(3)
	fail := func(repo string, at time.Duration) {
		log.WithTime(t0.Add(at)).WithField("repo", repo).WithError(upstream.ErrTimeout).Error("request failed")
	}
	fail("r/1", 1*time.Second)
	fail("r/2", 2*time.Second)
	fail("r/3", 3*time.Second)
	fail("r/1", 4*time.Second) // r/2 is now the oldest
	fail("r/4", 5*time.Second)
	var got []string
	for _, e := range recent.Entries() {
		got = append(got, fmt.Sprintf("%s×%d", e.Repo, e.Count))
	}
	if strings.Join(got, " ") != "r/4×1 r/1×2 r/3×1" {
		t.Errorf("groups %v, want r/4×1 r/1×2 r/3×1 (r/2 dropped)", got)
	}
}

// TestRecentErrorsConcurrent: many goroutines logging at once lose no
// count (run with -race).
func TestRecentErrorsConcurrent(t *testing.T) {
	log, recent := grouping(10)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				log.WithField("repo", fmt.Sprint("r/", (w+i)%3)).WithError(errFillFailed).Error("request failed")
				_ = recent.Entries()
			}
		}()
	}
	wg.Wait()
	var total int64
	groups := recent.Entries()
	for _, e := range groups {
		total += e.Count
	}
	if len(groups) != 3 || total != workers*each {
		t.Errorf("%d groups counting %d, want 3 counting %d", len(groups), total, workers*each)
	}
}

// TestErrorWords: each class of error an operator meets reads as words,
// classified by type; the answers a mirror gives all day stay off.
func TestErrorWords(t *testing.T) {
	up := func(status int, code string, sentinel error) error {
		return fmt.Errorf("blob x: %w", &upstream.Error{Upstream: "registry.site", Op: "GET blob", Status: status, Code: code, Err: sentinel})
	}
	info, warn, errl := logrus.InfoLevel, logrus.WarnLevel, logrus.ErrorLevel
	for _, c := range []struct {
		level      logrus.Level
		err        error
		kind, want string // want "": not shown
	}{
		{errl, up(503, "", upstream.ErrUnavailable), "upstream failed", "upstream registry.site failed: 503 Service Unavailable"},
		{errl, up(0, "", upstream.ErrUnavailable), "upstream failed", "upstream registry.site did not answer"},
		{errl, up(0, "", upstream.ErrTimeout), "upstream timeout", "upstream registry.site did not answer in time"},
		{errl, up(0, "", upstream.ErrDigestMismatch), "digest mismatch", "digest mismatch from upstream registry.site: the bytes were discarded"},
		{warn, fmt.Errorf("fill: %w", cache.ErrFillStalled), "upstream stalled", "stopped sending a blob part-way"},
		{warn, fmt.Errorf("write: %w", syscall.ENOSPC), "disk full", "the data directory's disk is full"},
		{errl, up(200, "", upstream.ErrTooLarge), "bad upstream answer", "upstream registry.site sent something that is not a manifest"},
		{errl, up(0, "", upstream.ErrTargetRefused), "refused redirect", "will not follow"},
		{errl, errFillFailed, "fill failed", "could not be fetched whole"},
		{errl, errPanic, "internal error", "a request handler panicked"},
		// An upstream's 4xx passed on: logged at info, the operator's to fix.
		{info, up(429, "TOOMANYREQUESTS", upstream.ErrTooManyRequests), "rate limited", "its pull rate limit is reached"},
		{info, up(401, "UNAUTHORIZED", upstream.ErrUnauthorized), "upstream auth", "refused wharf's credentials"},
		{info, up(403, "DENIED", upstream.ErrDenied), "upstream auth", "denied wharf access"},
		{info, up(400, "NAME_INVALID", upstream.ErrRejected), "upstream rejected", "rejected the request (400 NAME_INVALID)"},
		// A client's mistakes worth chasing.
		{info, fmt.Errorf("%q: %w", "UPPER", errNameInvalid), "client error", "client sent an invalid repository name"},
		{info, errTagInvalid, "client error", "client sent an invalid tag"},
		{info, errDigestInvalid, "client error", "client sent an invalid digest"},
		{info, cache.ErrManifestInvalid, "client error", "client pushed an invalid manifest"},
		{info, errAuthFailed, "client error", "wrong user name or password"},
		{info, &loginRefused{retryAfter: time.Minute}, "client error", "too many failed logins"},
		{info, errUnknownNamespace, "client error", "does not mirror"},
		{info, errDenied, "client error", "denied access by the access rules"},
		// A mirror's daily answers: not news.
		{info, fmt.Errorf("manifest: %w", cache.ErrNotFound), "", ""},
		{info, errAuthRequired, "", ""},
		{info, up(404, "MANIFEST_UNKNOWN", upstream.ErrNotFound), "", ""},
		{info, nil, "", ""},
		// Unknown errors at error level show as logged.
		{errl, errors.New("index: closed"), "error", "request failed: index: closed"},
	} {
		log, recent := grouping(5)
		e := log.WithField("repo", "registry.site/app")
		if c.err != nil {
			e = e.WithError(c.err)
		}
		e.Log(c.level, "request failed")
		got := recent.Entries()
		switch {
		case c.want == "" && len(got) != 0:
			t.Errorf("%v at %s shown: %+v", c.err, c.level, got[0])
		case c.want == "":
		case len(got) != 1:
			t.Errorf("%v at %s: %d groups, want 1", c.err, c.level, len(got))
		case got[0].Kind != c.kind || !strings.Contains(got[0].Words, c.want):
			t.Errorf("%v: %q %q, want %q %q", c.err, got[0].Kind, got[0].Words, c.kind, c.want)
		}
	}
}

// TestRecentErrorsClientsCannotCrowdOutErrors: a client's bad requests,
// one group per repository it names, replace only one another past the
// cap, never a group of wharf's own errors; an error still replaces the
// oldest client group.
func TestRecentErrorsClientsCannotCrowdOutErrors(t *testing.T) {
	log, recent := grouping(3)
	log.WithTime(t0).WithField("repo", "r/mismatch").WithError(upstream.ErrDigestMismatch).Error("request failed")
	log.WithTime(t0.Add(time.Second)).WithField("repo", "r/timeout").WithError(upstream.ErrTimeout).Error("request failed")
	for i := range 50 {
		log.WithTime(t0.Add(time.Duration(2+i)*time.Second)).WithField("repo", fmt.Sprint("probe/", i)).
			WithError(errDenied).Info("request")
	}
	log.WithTime(t0.Add(time.Minute)).WithField("repo", "r/stalled").WithError(cache.ErrFillStalled).Error("request failed")
	var got []string
	for _, e := range recent.Entries() {
		got = append(got, e.Repo)
	}
	if strings.Join(got, " ") != "r/stalled r/timeout r/mismatch" {
		t.Errorf("groups %v, want r/stalled r/timeout r/mismatch: the client groups dropped, the errors kept", got)
	}
}
