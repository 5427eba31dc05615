package upstream_test

import (
	"errors"
	"fmt"
	"net/http"
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

	// A cold client learns from 401s that the registry wants tokens:
	// each request of the cold burst sent before the first 401 was read
	// goes twice, those sent after it once (how many is the scheduler's
	// call); after that a new repository's token is fetched before its
	// requests go out, so they go once each.
	steps := []struct {
		name                  string
		repo                  string
		wantToks, least, most int
	}{
		{"cold burst", "share/one", 1, inFlight + 1, 2 * inFlight},
		{"warm burst", "share/one", 0, inFlight, inFlight},
		{"another repository's first burst", "share/two", 1, inFlight, inFlight},
		{"the first repository again", "share/one", 0, inFlight, inFlight},
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
		if n := faulty.Count("", "/v2/"); n < s.least || n > s.most {
			t.Errorf("%s: %d registry requests, want %d to %d", s.name, n, s.least, s.most)
		}
	}
	if tokens["share/one"] == "" || tokens["share/one"] == tokens["share/two"] {
		t.Error("the two repositories' requests carried the same token, or none")
	}
}

// TestFreshTokenRefusedIsFinal: a token fetched for a request and refused
// by the registry (no access to that repository, or none such: Docker Hub
// answers both with 401) is not fetched again within the request: the
// request costs one token and one registry round trip, and fails
// ErrUnauthorized. The next request fetches anew.
func TestFreshTokenRefusedIsFinal(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("alice", "s3cret"))
	upstreamtest.Push(t, reg, "open/app:v1", upstreamtest.RandomImage(t, 1, 256, upstreamtest.DockerManifest))
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:denied/app:pull",error="insufficient_scope"`,
		reg.TokenRealm, reg.TokenService)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		if strings.Contains(r.URL.Path, "/denied/") {
			return upstreamtest.Fault{Status: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {challenge}}}
		}
		return upstreamtest.Fault{}
	})
	c := newClient(t, faulty.URL, nil)
	if _, err := c.GetManifest(t.Context(), "open/app", "v1", acceptAll); err != nil {
		t.Fatal(err) // the client learns that the registry wants tokens
	}
	for i := range 2 {
		faulty.ResetCounts()
		toks := reg.TokenRequests()
		_, err := c.GetManifest(t.Context(), "denied/app", "v1", acceptAll)
		if !errors.Is(err, upstream.ErrUnauthorized) {
			t.Fatalf("request %d: %v, want ErrUnauthorized", i, err)
		}
		if n := reg.TokenRequests() - toks; n != 1 {
			t.Errorf("request %d: %d token requests, want 1", i, n)
		}
		if n := faulty.Count("", "/v2/"); n != 1 {
			t.Errorf("request %d: %d registry requests, want 1", i, n)
		}
	}
}
