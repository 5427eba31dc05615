package config

import (
	"errors"
	"fmt"
	"github.com/distribution/reference"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fieldError is one problem with one setting. path is the YAML field path;
// from, when known, says which layer set the value, so the operator knows
// whether to fix the file, the environment or the command line.
type fieldError struct {
	path string
	err  error
	from string
}

// minUploadExpiry is push.uploadExpiry's least value.
const minUploadExpiry = time.Second

func (e *fieldError) Error() string {
	s := e.path + ": " + e.err.Error()
	if e.from != "" {
		s += " (from " + e.from + ")"
	}
	return s
}

func (e *fieldError) Unwrap() error { return e.err }

// logLevels are the names logrus.ParseLevel accepts, lower case; wharf
// takes them as written so the config reads the same everywhere.
func logLevels() []string {
	return []string{"trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"}
}

// Validate returns nil, or an error joining every problem found (see
// errors.Join), each prefixed with its YAML field path.
func (c Config) Validate() error {
	var errs []error
	for _, fe := range c.problems() {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// problems checks every field and returns all that are wrong, in field
// order. It does no I/O: whether PasswordFile can be read is Load's check.
func (c Config) problems() []*fieldError {
	var ps []*fieldError
	add := func(path string, format string, args ...any) {
		ps = append(ps, &fieldError{path: path, err: fmt.Errorf(format, args...)})
	}
	if err := checkAddr(c.Listen); err != nil {
		add("listen", "%w", err)
	}

	u := c.Upstream
	ps = append(ps, registryProblems("upstream", u.Registry)...)
	if u.TagTTL < 0 {
		add("upstream.tagTTL", "%s is negative; use 0 to revalidate every time", u.TagTTL)
	}
	if u.Timeout <= 0 {
		add("upstream.timeout", "%s must be more than 0", u.Timeout)
	}
	if u.RevalidateTimeout <= 0 {
		add("upstream.revalidateTimeout", "%s must be more than 0", u.RevalidateTimeout)
	}
	if u.Retries < 0 || u.Retries > 20 {
		add("upstream.retries", "%d is outside 0..20", u.Retries)
	}
	if u.DownAfter < 1 || u.DownAfter > 100 {
		add("upstream.downAfter", "%d is outside 1..100 (consecutive failures)", u.DownAfter)
	}
	if u.StallAfter <= 0 || u.Timeout > 0 && u.StallAfter > u.Timeout {
		add("upstream.stallAfter", "%s must be more than 0 and at most upstream.timeout (%s)", u.StallAfter, u.Timeout)
	}
	if n := u.PrefetchConcurrency; n < 1 || n > 64 {
		add("upstream.prefetchConcurrency", "%d is outside 1..64 (blobs at once per upstream)", n)
	}
	if u.SegmentThreshold < 0 || u.SegmentThreshold > 0 && u.SegmentThreshold < 64<<10 {
		add("upstream.segmentThreshold", "%s is under 64KiB, the least range worth a request; use 0 to fetch every blob as one stream", u.SegmentThreshold)
	}
	if n := u.Segments; n < 1 || n > 16 {
		add("upstream.segments", "%d is outside 1..16 (ranges of one blob at once)", n)
	}
	if u.FarLatency < 0 || u.FarLatency > Duration(10*time.Second) {
		add("upstream.farLatency", "%s is outside 0..10s (0: every upstream is far)", u.FarLatency)
	}

	if c.Storage.Dir == "" {
		add("storage.dir", "is required")
	}
	if c.Storage.MaxSize < 0 {
		add("storage.maxSize", "%d is negative; use 0 for unlimited", int64(c.Storage.MaxSize))
	}
	if w := c.Storage.HighWatermark; w < 1 || w > 100 {
		add("storage.highWatermark", "%d is outside 1..100 (percent of maxSize)", w)
	}
	if w := c.Storage.LowWatermark; w < 1 || w >= c.Storage.HighWatermark {
		add("storage.lowWatermark", "%d must be at least 1 and below highWatermark (%d)", w, c.Storage.HighWatermark)
	}
	for _, p := range c.Storage.Pins() {
		if _, err := reference.ParseNormalizedNamed(p); err != nil || strings.Contains(p, "@") {
			add("storage.pin", "%q is not a repository or repository:tag", p)
		}
	}
	ps = append(ps, c.Storage.S3.problems()...)
	ps = append(ps, c.Cluster.problems(c.Listen, c.Storage.S3.On())...)

	ps = append(ps, c.upstreamProblems()...)
	if !c.AnyWriteThrough() && u.WriteThroughSyncOn() {
		add("upstream.writeThroughSync", "needs upstream.writeThrough (or an upstreams entry's writeThrough)")
	}
	if c.OfflineOn() && u.WriteThroughOn() {
		add("offline", "cannot be combined with upstream.writeThrough: offline, no push reaches the upstream")
	}
	if c.Push.UploadExpiry <= 0 {
		add("push.uploadExpiry", "%s must be more than 0", c.Push.UploadExpiry)
	} else if c.Push.UploadExpiry < Duration(minUploadExpiry) {
		// A request keeps its session alive a quarter expiry apart, at
		// least 100ms apart: shorter, a streaming session would expire.
		add("push.uploadExpiry", "%s must be at least %s", c.Push.UploadExpiry, Duration(minUploadExpiry))
	}
	if c.Push.MaxUploads <= 0 {
		add("push.maxUploads", "%d must be more than 0", c.Push.MaxUploads)
	}
	if n := c.Push.MaxUploadsPerClient; n <= 0 || (c.Push.MaxUploads > 0 && n > c.Push.MaxUploads) {
		add("push.maxUploadsPerClient", "%d must be more than 0 and at most push.maxUploads (%d)", n, c.Push.MaxUploads)
	}
	if c.Push.ChunkBuffers <= 0 {
		add("push.chunkBuffers", "%s must be more than 0", c.Push.ChunkBuffers)
	}
	if c.Push.BodyIdleTimeout <= 0 {
		add("push.bodyIdleTimeout", "%s must be more than 0", c.Push.BodyIdleTimeout)
	}

	if !slices.Contains(logLevels(), c.Log.Level) {
		add("log.level", "%q is not one of %s", c.Log.Level, strings.Join(logLevels(), ", "))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "%q is not text or json", c.Log.Format)
	}

	ps = append(ps, c.authProblems()...)

	if c.Debug.Listen != "" {
		if err := checkAddr(c.Debug.Listen); err != nil {
			add("debug.listen", "%w", err)
		} else if c.Debug.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			add("debug.listen", "%q is also the registry's listen address", c.Debug.Listen)
		}
	}
	return ps
}

// checkAddr accepts host:port with a numeric port, host possibly empty
// (all interfaces), as net.Listen("tcp", addr) would.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("is required (host:port, e.g. :5000)")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 0..65535", addr, port)
	}
	return nil
}

// checkUpstreamURL accepts an http(s) URL with a host. Credentials in the
// URL are refused: they would be logged with it, and username/password
// exist for them.
func checkUpstreamURL(raw string) error {
	if raw == "" {
		return errors.New("is required (e.g. https://registry-1.docker.io)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input; the path prefix already names it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if strings.Contains(raw, "@") { // may hold a password: not quoted
			return fmt.Errorf("is not a URL: %w", err)
		}
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	switch {
	case u.User != nil: // first: every other message quotes the URL
		return fmt.Errorf("URL must not carry credentials; use upstream.username and upstream.password")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with https:// or http://", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q must not have a query or fragment", raw)
	}
	return nil
}
