package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/transport"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(upstreamtest.LeakOptions(),
		// http.Transport keeps idle connections' goroutines until they time out.
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)...)
}

// clock is a settable clock for TTL tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mirror is a running wharf.
type mirror struct {
	URL, Host string
	Dir       string
	Cache     *cache.Cache
	Metrics   *metrics.Metrics
	Registry  *prometheus.Registry
	srv       *httptest.Server
	up        *upstream.Client
	closed    bool
}

type mirrorOpts struct {
	dir             string
	tagTTL          time.Duration
	clock           *clock
	officialLibrary bool
	retries         int // 0: upstream's default; -1: none
	timeout         time.Duration
	stallTimeout    time.Duration
	maxSize         int64
	pins            []cache.Pin
	network         transport.Network // where the upstream counts as being (hostile_upstream_test.go)
	revalidate      time.Duration     // cache.Options.RevalidateTimeout (health_test.go)
	probeMin        time.Duration     // upstream.Options.ProbeMin; ProbeMax is twice it
	downAfter       int               // upstream.Options.DownAfter
}

// startMirror runs wharf in front of upstreamURL. It is closed by t.Cleanup
// (or earlier with stop, to restart on the same directory).
func startMirror(t *testing.T, upstreamURL string, o mirrorOpts) *mirror {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.tagTTL == 0 {
		o.tagTTL = time.Hour
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if testing.Verbose() {
		log.SetLevel(logrus.InfoLevel)
	}
	log.SetOutput(os.Stderr)
	up, err := upstream.New(upstream.Options{
		URL:             upstreamURL,
		OfficialLibrary: o.officialLibrary,
		Timeout:         o.timeout,
		MaxRetries:      o.retries,
		Backoff:         10 * time.Millisecond,
		Network:         o.network,
		ProbeMin:        o.probeMin,
		DownAfter:       o.downAfter,
		ProbeMax:        2 * o.probeMin,
		Metrics:         m,
		Logger:          log,
	})
	if err != nil {
		t.Fatal(err)
	}
	copts := cache.Options{
		Dir: o.dir, Origins: []cache.Origin{up}, TagTTL: o.tagTTL,
		StallTimeout: o.stallTimeout, Metrics: m, Logger: log,
		MaxSize: o.maxSize, Pins: o.pins, RevalidateTimeout: o.revalidate,
	}
	if o.clock != nil {
		copts.Now = o.clock.Now
	}
	c, err := cache.Open(copts)
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Options{
		Store: c, Upstream: up, Metrics: m, Logger: log,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	mr := &mirror{URL: srv.URL, Host: srv.Listener.Addr().String(), Dir: o.dir, Cache: c, Metrics: m, Registry: reg, srv: srv, up: up}
	t.Cleanup(mr.stop)
	return mr
}

// stop shuts the mirror down: HTTP first, then the store.
func (m *mirror) stop() {
	if m.closed {
		return
	}
	m.closed = true
	m.srv.CloseClientConnections()
	m.srv.Close()
	m.Cache.Close()
	m.up.Close()
}

// ref names repo (with tag or digest) on the mirror for go-containerregistry.
func (m *mirror) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(m.Host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// client is a go-containerregistry remote option set with a fresh transport,
// so idle connections die with the test.
func client(t *testing.T) []remote.Option {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return []remote.Option{remote.WithTransport(tr)}
}

// get performs a plain GET with optional headers.
func get(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	return do(t, http.MethodGet, url, hdr...)
}

func do(t *testing.T, method, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func drain(rc io.ReadCloser) {
	io.Copy(io.Discard, rc)
	rc.Close()
}
