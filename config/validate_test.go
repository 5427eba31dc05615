package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestValidateNamesField(t *testing.T) {
	t.Parallel()
	boolp := func(b bool) *bool { return &b }
	tests := []struct {
		name   string
		change func(*Config)
		want   string // the whole error; each starts with the field path
	}{
		{"listen empty", func(c *Config) { c.Listen = "" }, "listen: is required (host:port, e.g. :5000)"},
		{"listen no port", func(c *Config) { c.Listen = "localhost" }, `listen: "localhost" is not host:port: address localhost: missing port in address`},
		{"listen port name", func(c *Config) { c.Listen = ":http" }, `listen: ":http": port "http" is not a number in 0..65535`},
		{"listen port range", func(c *Config) { c.Listen = ":70000" }, `listen: ":70000": port "70000" is not a number in 0..65535`},
		{"url empty", func(c *Config) { c.Upstream.URL = "" }, "upstream.url: is required (e.g. https://registry-1.docker.io)"},
		{"url no scheme", func(c *Config) { c.Upstream.URL = "registry-1.docker.io" }, `upstream.url: "registry-1.docker.io" must start with https:// or http://`},
		{"url ftp", func(c *Config) { c.Upstream.URL = "ftp://example.com" }, `upstream.url: "ftp://example.com" must start with https:// or http://`},
		{"url no host", func(c *Config) { c.Upstream.URL = "https:///v2" }, `upstream.url: "https:///v2" has no host`},
		{"url bad", func(c *Config) { c.Upstream.URL = "https://exa mple.com" }, `upstream.url: "https://exa mple.com" is not a URL: invalid character " " in host name`},
		{"url credentials", func(c *Config) { c.Upstream.URL = "https://me:pw@example.com" }, "upstream.url: URL must not carry credentials; use upstream.username and upstream.password"},
		{"url credentials and a bad scheme: the password is not quoted", func(c *Config) { c.Upstream.URL = "ftp://me:pw@example.com" }, "upstream.url: URL must not carry credentials; use upstream.username and upstream.password"},
		{"url credentials that do not parse: the password is not quoted", func(c *Config) { c.Upstream.URL = "https://me:pw@exa mple.com" }, `upstream.url: is not a URL: invalid character " " in host name`},
		{"url query", func(c *Config) { c.Upstream.URL = "https://example.com/?x=1" }, `upstream.url: "https://example.com/?x=1" must not have a query or fragment`},
		{"password and file", func(c *Config) {
			c.Upstream.Username, c.Upstream.Password, c.Upstream.PasswordFile = "me", "pw", "/run/pw"
		}, "upstream.password: set together with upstream.passwordFile; use one"},
		{"password without user", func(c *Config) { c.Upstream.Password = "pw" }, "upstream.username: required when a password is set"},
		{"password file without user", func(c *Config) { c.Upstream.PasswordFile = "/run/pw" }, "upstream.username: required when a password is set"},
		{"user without password", func(c *Config) { c.Upstream.Username = "me" }, "upstream.password: required when a username is set (or set upstream.passwordFile)"},
		{"ttl negative", func(c *Config) { c.Upstream.TagTTL = Duration(-time.Second) }, "upstream.tagTTL: -1s is negative; use 0 to revalidate every time"},
		{"timeout zero", func(c *Config) { c.Upstream.Timeout = 0 }, "upstream.timeout: 0s must be more than 0"},
		{"retries negative", func(c *Config) { c.Upstream.Retries = -1 }, "upstream.retries: -1 is outside 0..20"},
		{"retries many", func(c *Config) { c.Upstream.Retries = 21 }, "upstream.retries: 21 is outside 0..20"},
		{"down after zero", func(c *Config) { c.Upstream.DownAfter = 0 }, "upstream.downAfter: 0 is outside 1..100"},
		{"down after many", func(c *Config) { c.Upstream.DownAfter = 101 }, "upstream.downAfter: 101 is outside 1..100"},
		{"prefetch concurrency zero", func(c *Config) { c.Upstream.PrefetchConcurrency = 0 }, "upstream.prefetchConcurrency: 0 is outside 1..64"},
		{"prefetch concurrency many", func(c *Config) { c.Upstream.PrefetchConcurrency = 65 }, "upstream.prefetchConcurrency: 65 is outside 1..64"},
		{"segment threshold small", func(c *Config) { c.Upstream.SegmentThreshold = 4 << 10 }, "upstream.segmentThreshold: 4KiB is under 64KiB"},
		{"segment threshold negative", func(c *Config) { c.Upstream.SegmentThreshold = -1 }, "upstream.segmentThreshold: "},
		{"segments zero", func(c *Config) { c.Upstream.Segments = 0 }, "upstream.segments: 0 is outside 1..16"},
		{"segments many", func(c *Config) { c.Upstream.Segments = 17 }, "upstream.segments: 17 is outside 1..16"},
		{"stall after zero", func(c *Config) { c.Upstream.StallAfter = 0 }, "upstream.stallAfter: 0s must be more than 0 and at most upstream.timeout (30s)"},
		{"stall after over timeout", func(c *Config) { c.Upstream.StallAfter = Duration(time.Minute) }, "upstream.stallAfter: 1m must be more than 0 and at most upstream.timeout (30s)"},
		{"sync without write-through", func(c *Config) { c.Upstream.WriteThroughSync = boolp(true) }, "upstream.writeThroughSync: needs upstream.writeThrough"},
		{"offline with write-through", func(c *Config) { c.Offline, c.Upstream.WriteThrough = boolp(true), boolp(true) }, "offline: cannot be combined with upstream.writeThrough"},
		{"upload expiry zero", func(c *Config) { c.Push.UploadExpiry = 0 }, "push.uploadExpiry: 0s must be more than 0"},
		{"max uploads zero", func(c *Config) { c.Push.MaxUploads = 0 }, "push.maxUploads: 0 must be more than 0"},
		{"max uploads per client zero", func(c *Config) { c.Push.MaxUploadsPerClient = 0 }, "push.maxUploadsPerClient: 0 must be more than 0 and at most push.maxUploads (1000)"},
		{"max uploads per client over max", func(c *Config) { c.Push.MaxUploads, c.Push.MaxUploadsPerClient = 10, 11 }, "push.maxUploadsPerClient: 11 must be more than 0 and at most push.maxUploads (10)"},
		{"body idle timeout zero", func(c *Config) { c.Push.BodyIdleTimeout = 0 }, "push.bodyIdleTimeout: 0s must be more than 0"},
		{"dir empty", func(c *Config) { c.Storage.Dir = "" }, "storage.dir: is required"},
		{"max size negative", func(c *Config) { c.Storage.MaxSize = -1 }, "storage.maxSize: -1 is negative; use 0 for unlimited"},
		{"level", func(c *Config) { c.Log.Level = "verbose" }, `log.level: "verbose" is not one of trace, debug, info, warn, warning, error, fatal, panic`},
		{"level case", func(c *Config) { c.Log.Level = "INFO" }, `log.level: "INFO" is not one of`},
		{"format", func(c *Config) { c.Log.Format = "logfmt" }, `log.format: "logfmt" is not text or json`},
		{"debug listen", func(c *Config) { c.Debug.Listen = "6060" }, `debug.listen: "6060" is not host:port`},
		{"debug listen clash", func(c *Config) { c.Debug.Listen = ":5000" }, `debug.listen: ":5000" is also the registry's listen address`},
		{"chunk buffers zero", func(c *Config) { c.Push.ChunkBuffers = 0 }, "push.chunkBuffers: 0 must be more than 0"},
	}
	for _, tt := range tests {
		c := Default()
		c.Upstream.OfficialLibrary = boolp(true)
		tt.change(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v\nwant %s", tt.name, err, tt.want)
			continue
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
			t.Errorf("%s: got %d problems, want 1: %v", tt.name, n, err)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	boolp := func(b bool) *bool { return &b }
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"all interfaces", func(c *Config) { c.Listen = ":5000" }},
		{"ipv6", func(c *Config) { c.Listen = "[::1]:5000" }},
		{"port 0", func(c *Config) { c.Listen = "127.0.0.1:0"; c.Debug.Listen = "127.0.0.1:0" }},
		{"http upstream", func(c *Config) { c.Upstream.URL = "http://localhost:5001" }},
		{"upstream path", func(c *Config) { c.Upstream.URL = "https://example.com/" }},
		{"credentials", func(c *Config) { c.Upstream.Username, c.Upstream.Password = "me", "pw" }},
		{"credentials file", func(c *Config) { c.Upstream.Username, c.Upstream.PasswordFile = "me", "/run/pw" }},
		{"ttl zero", func(c *Config) { c.Upstream.TagTTL = 0 }},
		{"retries bounds", func(c *Config) { c.Upstream.Retries = 20 }},
		{"write-through sync", func(c *Config) { c.Upstream.WriteThrough, c.Upstream.WriteThroughSync = boolp(true), boolp(true) }},
		{"deletes off", func(c *Config) { c.Push.Deletes = boolp(false) }},
		{"no retries", func(c *Config) { c.Upstream.Retries = 0 }},
		{"max size", func(c *Config) { c.Storage.MaxSize = 20 << 30 }},
		{"warning", func(c *Config) { c.Log.Level = "warning" }},
		{"json", func(c *Config) { c.Log.Format = "json" }},
		{"debug", func(c *Config) { c.Debug.Listen = "127.0.0.1:6060" }},
	}
	for _, tt := range tests {
		c := Default()
		tt.change(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Listen = "nope"
	c.Upstream.URL = "ftp://x"
	c.Upstream.Retries = 99
	c.Storage.MaxSize = -1
	c.Log.Level = "loud"
	c.Log.Format = "xml"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want six problems")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"listen: ", "upstream.url: ", "upstream.retries: ", "storage.maxSize: ", "log.level: ", "log.format: "}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, p := range want {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], p)
		}
	}
}

// TestValidatePushBounds: an upload expiry too short for a streaming
// request to keep its session is refused; the least value passes.
func TestValidatePushBounds(t *testing.T) {
	t.Parallel()
	yes := true
	c := Default()
	c.Upstream.OfficialLibrary = &yes
	c.Push.UploadExpiry = Duration(500 * time.Millisecond)
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "push.uploadExpiry: 500ms must be at least 1s") {
		t.Errorf("an expiry of 500ms: %v", err)
	}
	c.Push.UploadExpiry = Duration(time.Second)
	if err := c.Validate(); err != nil {
		t.Errorf("an expiry of 1s: %v", err)
	}
}
