package e2e

import (
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/push"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/writethrough"
)

// pusher is a running wharf with its write path: the stack cmd/wharf
// serve builds, on an httptest server.
type pusher struct {
	URL, Host string
	Dir       string
	Writer    *push.Writer
	Metrics   *metrics.Metrics
	Registry  *prometheus.Registry
	srv       *httptest.Server
	store     *cache.Cache
	wt        *writethrough.Worker // nil without write-through
	up        *upstream.Client
	closed    bool
}

type pushOpts struct {
	dir             string
	officialLibrary bool
	writer          push.Options
	writeThrough    *writethrough.Options // nil: off; the harness fills in its upstream, metrics, log and clock
	now             func() time.Time
	user, pass      string        // the upstream's credentials
	bodyIdle        time.Duration // proxy.Options.BodyIdleTimeout
	// auth is the access control; nil opens pushes to anonymous clients,
	// as a lab wharf would (--anonymous-push): these tests are about the
	// write path, security_test.go about who may use it.
	auth *proxy.AuthOptions
}

// startPusher runs wharf, write path included, in front of upstreamURL.
// t.Cleanup stops it; stop does so earlier, to restart on the same dir.
func startPusher(t *testing.T, upstreamURL string, o pushOpts) *pusher {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if os.Getenv("WHARF_TEST_LOG") != "" { // one access-log line per request: a lot
		log.SetLevel(logrus.InfoLevel)
	}
	log.SetOutput(os.Stderr)
	up, err := upstream.New(upstream.Options{
		URL: upstreamURL, OfficialLibrary: o.officialLibrary, Timeout: 5 * time.Second, Username: o.user, Password: o.pass,
		MaxRetries: -1, Metrics: m, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(cache.Options{
		Dir: o.dir, Origins: []cache.Origin{up}, TagTTL: time.Hour, Metrics: m, Logger: log, Now: o.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wt *writethrough.Worker
	if o.writeThrough != nil {
		wo := *o.writeThrough
		wo.Origins, wo.Metrics, wo.Logger, wo.Now = []cache.Origin{up}, m, log, o.now
		if wt, err = writethrough.New(c, c.Queue(), wo); err != nil {
			t.Fatal(err)
		}
		o.writer.WriteThrough = wt
	}
	o.writer.Logger = log
	w, err := push.New(c, o.writer)
	if err != nil {
		t.Fatal(err)
	}
	if o.auth == nil {
		o.auth = &proxy.AuthOptions{AnonymousPush: true}
	}
	h, err := proxy.New(proxy.Options{
		Store: w, Upstream: up, Metrics: m, Logger: log, Auth: o.auth,
		MetricsHandler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		BodyIdleTimeout: o.bodyIdle,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	p := &pusher{URL: srv.URL, Host: srv.Listener.Addr().String(), Dir: o.dir, Writer: w,
		Metrics: m, Registry: reg, srv: srv, store: c, wt: wt, up: up}
	t.Cleanup(p.stop)
	return p
}

// stop shuts wharf down in serve's order: HTTP, the write path,
// write-through, the store.
func (p *pusher) stop() {
	if p.closed {
		return
	}
	p.closed = true
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.Writer.Close()
	if p.wt != nil {
		p.wt.Close()
	}
	p.store.Close()
	p.up.Close()
}
