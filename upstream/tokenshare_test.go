package upstream_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestTokenSharedByConcurrentRequests: a burst of cold requests for one
// repository (the blobs of an image, asked by several clients at once)
// fetches one token between them, which the next burst reuses without
// asking; another repository's burst fetches its own, and never carries
// the first repository's token, whose scope does not cover it.
func TestTokenSharedByConcurrentRequests(t *testing.T) {
	const inFlight = 16
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("alice", "s3cret"))
	img := upstreamtest.RandomImage(t, 1, 1<<10, upstreamtest.DockerManifest)
	for _, repo := range []string{"share/one", "share/two"} {
		upstreamtest.Push(t, reg, repo+":v1", img)
	}
	d, want := layerBytes(t, img)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c := newClient(t, faulty.URL, func(o *upstream.Options) { o.Username, o.Password = "alice", "s3cret" })

	steps := []struct {
		name     string
		repo     string
		wantToks int
	}{
		{"cold burst", "share/one", 1},
		{"warm burst", "share/one", 0},
		{"another repository's cold burst", "share/two", 1},
		{"the first repository again", "share/one", 0},
	}
	tokens := map[string]string{} // repository → the token its requests carried
	for _, s := range steps {
		faulty.ResetCounts()
		toks := reg.TokenRequests()
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				if err := readBlobIs(t, c, s.repo, d, string(want)); err != nil {
					t.Errorf("%s: GetBlob: %v", s.name, err)
				}
			})
		}
		wg.Wait()
		if n := reg.TokenRequests() - toks; n != s.wantToks {
			t.Errorf("%s: %d token requests, want %d", s.name, n, s.wantToks)
		}
		for _, r := range faulty.Requests() {
			auth := r.Header.Get("Authorization")
			if !strings.HasPrefix(auth, "Bearer ") {
				continue
			}
			if tokens[s.repo] == "" {
				tokens[s.repo] = auth
			}
			if auth != tokens[s.repo] {
				t.Errorf("%s: requests for %s carried two tokens", s.name, s.repo)
			}
		}
		if s.wantToks == 0 && faulty.Count("", "/v2/") != inFlight {
			t.Errorf("%s: %d registry requests, want %d (one each, the token attached)", s.name, faulty.Count("", "/v2/"), inFlight)
		}
	}
	if tokens["share/one"] == "" || tokens["share/one"] == tokens["share/two"] {
		t.Error("the two repositories' requests carried the same token, or none")
	}
}
