package e2e

import (
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/statuspage"
	"github.com/wharf-mirror/wharf/upstream"
)

// namedUpstream is one registry behind a multi-upstream wharf.
type namedUpstream struct {
	name, url       string
	officialLibrary bool
}

type multiOpts struct {
	def   namedUpstream   // the default upstream; name "" means the URL's host
	named []namedUpstream // the upstreams list
	auth  *proxy.AuthOptions
	log   *logrus.Logger // default: warnings to stderr
	// status serves the status page at / as serve does: metrics, store,
	// grouped errors (a hook on log) and each upstream's breaker.
	status bool
}

// multiMirror is a running wharf with several upstreams, its write path
// and optional access control: the stack cmd/wharf serve builds.
type multiMirror struct {
	URL, Host string
	srv       *httptest.Server
	writer    *push.Writer
	store     *cache.Cache
	clients   []*upstream.Client
	registry  *prometheus.Registry // the metrics'
}

func startMulti(t *testing.T, o multiOpts) *multiMirror {
	t.Helper()
	mm := &multiMirror{registry: prometheus.NewRegistry()}
	m := metrics.New(mm.registry)
	log := o.log
	if log == nil {
		log = logrus.New()
		log.SetLevel(logrus.WarnLevel)
		log.SetOutput(os.Stderr)
	}
	var origins []cache.Origin
	var named []proxy.Upstream
	for i, u := range append([]namedUpstream{o.def}, o.named...) {
		c, err := upstream.New(upstream.Options{Name: u.name, URL: u.url, OfficialLibrary: u.officialLibrary,
			Timeout: 5 * time.Second, MaxRetries: -1, Metrics: m, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		mm.clients = append(mm.clients, c)
		origins = append(origins, c)
		if i > 0 {
			named = append(named, c)
		}
	}
	set, err := proxy.NewUpstreamSet(mm.clients[0], named...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if mm.store, err = cache.Open(cache.Options{Dir: dir, Origins: origins, TagTTL: time.Hour, Metrics: m, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if mm.writer, err = push.New(mm.store, push.Options{}); err != nil {
		t.Fatal(err)
	}
	po := proxy.Options{Store: mm.writer, Upstreams: set, Auth: o.auth, Metrics: m, Logger: log}
	if o.status {
		recent := proxy.NewRecentErrors(20)
		log.AddHook(recent)
		page, err := statuspage.New(statuspage.Options{Gatherer: mm.registry, Store: holdings{mm.store}, Errors: recent,
			Upstreams: set.Names(), Health: statuspage.BreakersOf(mm.clients...),
			PullName: func(r cache.Repo) string { return proxy.ClientName(set, r) }})
		if err != nil {
			t.Fatal(err)
		}
		po.StatusPage = page
	}
	h, err := proxy.New(po)
	if err != nil {
		t.Fatal(err)
	}
	mm.srv = httptest.NewServer(h)
	mm.URL, mm.Host = mm.srv.URL, mm.srv.Listener.Addr().String()
	t.Cleanup(mm.stop)
	return mm
}

func (mm *multiMirror) stop() {
	mm.srv.CloseClientConnections()
	mm.srv.Close()
	mm.writer.Close()
	mm.store.Close()
	for _, c := range mm.clients {
		c.Close()
	}
}

// ref names repo (with tag or digest) on the mirror for go-containerregistry.
func (mm *multiMirror) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	return mustRef(t, mm.Host+"/"+s)
}

// holdings is the store as the status page reads it, wired as serve does.
type holdings struct{ *cache.Cache }

func (h holdings) Stats() (inspect.Stats, error) { return inspect.StatsOf(h.Cache) }
