package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// The bench client against the reference registry: what it pushes, it
// pulls back and verifies, monolithic or chunked, anonymous or through
// distribution's token auth.
func TestPushThenPull(t *testing.T) {
	tests := []struct {
		name  string
		chunk int64
		auth  bool
	}{
		{"monolithic", 0, false},
		{"chunked, last chunk short", 30 << 10, false},
		{"chunked with token auth", 64 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []upstreamtest.Option
			if tt.auth {
				opts = append(opts, upstreamtest.WithTokenAuth("bench", "secret"))
			}
			reg := upstreamtest.NewRegistry(t, opts...)
			common := Common{Registry: reg.URL, Clients: 2, Ops: 3, Username: reg.Username, Password: reg.Password}
			push, err := Push(t.Context(), PushOptions{Common: common, Repo: "bench/app", Layers: 3, LayerSize: 100 << 10, Chunk: tt.chunk, TagPrefix: "t-"})
			if err != nil {
				t.Fatal(err)
			}
			if push.Ops != 3 || push.Failed != 0 {
				t.Fatalf("pushes: %d done, %d failed: %v", push.Ops, push.Failed, push.ErrorExamples)
			}
			// 3 layers and a config per push, and every byte of them.
			if n := push.Latency["blob"].Count; n != 12 {
				t.Errorf("%d blob uploads, want 12", n)
			}
			if push.Bytes < 3*3*100<<10 {
				t.Errorf("pushed %d bytes, want at least %d", push.Bytes, 3*3*100<<10)
			}

			tags := listTags(t, reg, "bench/app")
			if len(tags) != 3 {
				t.Fatalf("tags %v, want 3", tags)
			}
			images := make([]string, len(tags))
			for i, tag := range tags {
				images[i] = reg.Host + "/bench/app:" + tag
			}
			common.Ops = 6
			pull, err := Pull(t.Context(), PullOptions{Common: common, Images: images})
			if err != nil {
				t.Fatal(err)
			}
			if pull.Ops != 6 || pull.Failed != 0 {
				t.Fatalf("pulls: %d done, %d failed: %v", pull.Ops, pull.Failed, pull.ErrorExamples)
			}
			if m, b := pull.Latency["manifest"].Count, pull.Latency["blob"].Count; m != 6 || b != 24 {
				t.Errorf("%d manifest and %d blob requests, want 6 and 24", m, b)
			}
			if want := int64(6 * 3 * 100 << 10); pull.Bytes < want {
				t.Errorf("pulled %d bytes, want at least %d", pull.Bytes, want)
			}
		})
	}
}

// A tag naming an index resolves to the platform's manifest, in two
// manifest requests, and only that platform's blobs are fetched.
func TestPullFollowsIndexToPlatform(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.PushIndex(t, reg, "multi:v1", upstreamtest.RandomIndex(t, 3, upstreamtest.OCIIndex))
	upstreamtest.PushIndex(t, reg, "list:v1", upstreamtest.RandomIndex(t, 2, upstreamtest.DockerManifestList))
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		r, err := Pull(t.Context(), PullOptions{
			Common: Common{Registry: reg.URL, Clients: 1, Ops: 2}, Images: []string{"multi:v1", "list:v1"}, Platform: platform,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops != 2 || r.Failed != 0 {
			t.Fatalf("%s: %d done, %d failed: %v", platform, r.Ops, r.Failed, r.ErrorExamples)
		}
		if m, b := r.Latency["manifest"].Count, r.Latency["blob"].Count; m != 4 || b != 4 {
			t.Errorf("%s: %d manifest and %d blob requests, want 4 and 4", platform, m, b)
		}
	}
	r, err := Pull(t.Context(), PullOptions{Common: Common{Registry: reg.URL, Clients: 1, Ops: 1}, Images: []string{"list:v1"}, Platform: "linux/s390x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors["platform"] != 1 {
		t.Errorf("errors %v, want one platform error", r.Errors)
	}
}

// Bytes that do not hash to their digest fail the pull as "digest", for
// blobs and for manifests whose digest the server announced; the same
// bytes pass with NoVerify, which only checks sizes.
func TestPullReportsWrongBytes(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "app:v1", upstreamtest.RandomImage(t, 2, 4<<10, upstreamtest.OCIManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	for _, part := range []string{"/blobs/", "/manifests/"} {
		faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			return upstreamtest.Fault{Corrupt: strings.Contains(r.URL.Path, part)}
		})
		r, err := Pull(t.Context(), PullOptions{Common: Common{Registry: faulty.URL, Clients: 2, Ops: 4}, Images: []string{"app:v1"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops != 0 || r.Failed != 4 || r.Errors["digest"] != 4 {
			t.Errorf("corrupt %s: %d done, errors %v; want 4 digest errors", part, r.Ops, r.Errors)
		}
	}
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Corrupt: strings.Contains(r.URL.Path, "/blobs/")}
	})
	r, err := Pull(t.Context(), PullOptions{Common: Common{Registry: faulty.URL, Clients: 1, Ops: 1}, Images: []string{"app:v1"}, NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 1 {
		t.Errorf("NoVerify: %d done, errors %v; want the pull to pass", r.Ops, r.ErrorExamples)
	}
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{TruncateAfter: 100}
	})
	r, err = Pull(t.Context(), PullOptions{Common: Common{Registry: faulty.URL, Clients: 1, Ops: 1}, Images: []string{"app:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 1 {
		t.Errorf("truncated: errors %v, want one", r.Errors)
	}
}

func TestPullReportsHTTPErrorsByStatus(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	r, err := Pull(t.Context(), PullOptions{Common: Common{Registry: reg.URL, Clients: 3, Ops: 5}, Images: []string{"nothing:here"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors["http_404"] != 5 || !strings.Contains(r.ErrorExamples["http_404"], "MANIFEST_UNKNOWN") {
		t.Errorf("errors %v %v, want 5 × http_404 naming MANIFEST_UNKNOWN", r.Errors, r.ErrorExamples)
	}
}

// With a duration, clients loop until it passes; what it cuts off is
// neither done nor failed.
func TestPullForADuration(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	desc := upstreamtest.Push(t, reg, "app:v1", upstreamtest.RandomImage(t, 1, 1<<10, upstreamtest.DockerManifest))
	r, err := Pull(t.Context(), PullOptions{
		Common:        Common{Registry: reg.URL, Clients: 4, Duration: 300 * time.Millisecond},
		Images:        []string{"app@" + desc.Digest.String()},
		ManifestsOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops < 4 || r.Failed != 0 || r.Latency["blob"].Count != 0 {
		t.Errorf("%d done, %d failed, %d blobs; want manifests only, no failures", r.Ops, r.Failed, r.Latency["blob"].Count)
	}
	if r.Seconds < 0.3 || r.Seconds > 1 {
		t.Errorf("ran %.2fs for a 300ms duration", r.Seconds)
	}
	if r.OpsPerSecond <= 0 || r.Latency["manifest"].P99 <= 0 {
		t.Errorf("no rates: %+v", r)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	ctx := context.Background()
	bad := []PullOptions{
		{Common: Common{Registry: "ftp://x", Clients: 1, Ops: 1}, Images: []string{"a"}},
		{Common: Common{Registry: "http://x", Clients: 0, Ops: 1}, Images: []string{"a"}},
		{Common: Common{Registry: "http://x", Clients: 1}, Images: []string{"a"}},
		{Common: Common{Registry: "http://x", Clients: 1, Ops: 1}},
		{Common: Common{Registry: "http://x", Clients: 1, Ops: 1}, Images: []string{"A"}},
		{Common: Common{Registry: "http://x", Clients: 1, Ops: 1}, Images: []string{"a"}, Platform: "linux"},
	}
	for _, o := range bad {
		if _, err := Pull(ctx, o); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
	if _, err := Push(ctx, PushOptions{Common: Common{Registry: "http://x", Clients: 1, Ops: 1}, Repo: "r"}); err == nil {
		t.Error("push without layers: want an error")
	}
}

func TestResultText(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	upstreamtest.Push(t, reg, "app:v1", upstreamtest.RandomImage(t, 1, 1<<10, upstreamtest.OCIManifest))
	r, err := Pull(t.Context(), PullOptions{Common: Common{Registry: reg.URL, Clients: 1, Ops: 2}, Images: []string{"app:v1", "gone:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pulls     1 done, 1 failed", "manifest", "blob", "http_404"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	js, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(js), `"p99_ms"`) {
		t.Errorf("json %s, %v", js, err)
	}
}

func listTags(t *testing.T, reg *upstreamtest.Registry, repo string) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/"+repo+"/tags/list", nil)
	if reg.Username != "" {
		// The token issuer hands out pull tokens to anyone; use the client's
		// own stack to get one.
		c, err := newClient(0, mustURL(t, reg.URL), &Common{Username: reg.Username, Password: reg.Password, UserAgent: "test", Parallel: 1}, &counters{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		resp, err := c.http.Do(req)
		return decodeTags(t, resp, err)
	}
	resp, err := http.DefaultClient.Do(req)
	return decodeTags(t, resp, err)
}

func decodeTags(t *testing.T, resp *http.Response, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	slices.Sort(body.Tags)
	return body.Tags
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
