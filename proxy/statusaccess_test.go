package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/metrics"
)

// TestStatusPageShowsOnlyWhatTheViewerMayRead: the top repositories and
// the recent errors name only repositories the viewer may read; errors
// that name none (their messages may name anything) only to a viewer who
// may read everything. /metrics names no repository at all.
func TestStatusPageShowsOnlyWhatTheViewerMayRead(t *testing.T) {
	reg := prometheus.NewRegistry()
	recent := NewRecentErrors(10)
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.AddHook(recent)
	src := &holdings{inspect.Stats{Tags: 3, Repos: []inspect.RepoUsage{
		{Repo: "docker.io/alice/secret", Tags: 2, Bytes: 10},
		{Repo: "docker.io/team/app", Tags: 1, Bytes: 5},
	}}}
	users := passwords{"ops": hashOf(t, "ops-pw", bcrypt.MinCost), "team": hashOf(t, "team-pw", bcrypt.MinCost)}
	h, err := New(withStatusPage(t, Options{Store: &recorder{}, Upstream: hub{}, Metrics: metrics.New(reg), Logger: log,
		MetricsHandler: metricsHandler(reg),
		Auth: &AuthOptions{Passwords: users, AnonymousPull: true, Rules: []Rule{
			{User: "ops", Prefix: ""},
			{User: "team", Prefix: "docker.io/team"},
			{User: Anonymous, Prefix: "docker.io/library"},
		}}}, reg, src, recent, nil))
	if err != nil {
		t.Fatal(err)
	}
	log.WithField("repo", "docker.io/alice/secret").Error("fill failed for alice")
	log.WithField("repo", "docker.io/team/app").Error("fill failed for team")
	log.Error("upstream docker.io/alice/secret unreachable") // names a repository in its message only
	for range 3 {                                            // grouped into one row, which keeps its repository's rule
		log.WithField("repo", "docker.io/alice/secret").WithError(errFillFailed).Error("request failed")
		log.WithField("repo", "docker.io/team/app").WithError(errFillFailed).Error("request failed")
	}

	page := func(user string) string {
		req := httptest.NewRequest("GET", "/", nil)
		if user != "" {
			req.SetBasicAuth(user, user+"-pw")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("status page as %q: %d %s", user, w.Code, w.Body)
		}
		return w.Body.String()
	}
	cases := []struct {
		user      string
		see, hide []string
	}{
		{"ops", []string{"alice/secret", "team/app", "fill failed for alice", "unreachable"}, nil},
		{"team", []string{"team/app", "fill failed for team", "could not be fetched whole"}, []string{"alice", "unreachable"}},
		{"", nil, []string{"alice", "team/app", "fill failed", "unreachable"}},
	}
	for _, c := range cases {
		body := page(c.user)
		for _, s := range c.see {
			if !strings.Contains(body, s) {
				t.Errorf("page for %q lacks %q", orAnonymous(c.user), s)
			}
		}
		for _, s := range c.hide {
			if strings.Contains(body, s) {
				t.Errorf("page for %q shows %q", orAnonymous(c.user), s)
			}
		}
	}
	pull := httptest.NewRequest("GET", "/v2/team/app/manifests/1", nil)
	pull.SetBasicAuth("team", "team-pw")
	h.ServeHTTP(httptest.NewRecorder(), pull)
	req := httptest.NewRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if strings.Contains(w.Body.String(), "alice") || strings.Contains(w.Body.String(), "team/app") {
		t.Errorf("/metrics names a repository:\n%s", w.Body)
	}
}

func metricsHandler(g prometheus.Gatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fams, _ := g.Gather()
		for _, f := range fams {
			io.WriteString(w, f.String()+"\n")
		}
	})
}
