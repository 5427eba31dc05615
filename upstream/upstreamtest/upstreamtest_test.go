package upstreamtest_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, upstreamtest.LeakOptions()...)
}

// TestAuthModes checks the registries against go-containerregistry, an
// independent client: who may pull and who may push.
func TestAuthModes(t *testing.T) {
	img := upstreamtest.RandomImage(t, 1, 128, upstreamtest.OCIManifest)
	tests := []struct {
		name          string
		opts          []upstreamtest.Option
		anonymousPull bool
	}{
		{"anonymous", nil, true},
		{"basic", []upstreamtest.Option{upstreamtest.WithBasicAuth("u", "p")}, false},
		{"token", []upstreamtest.Option{upstreamtest.WithTokenAuth("u", "p")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t, tt.opts...)
			upstreamtest.Push(t, reg, "modes/app:v1", img)
			ref, err := name.ParseReference(reg.Ref("modes/app:v1"), name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			defer tr.CloseIdleConnections()
			anon := []remote.Option{remote.WithTransport(tr), remote.WithContext(t.Context())}
			_, err = remote.Head(ref, anon...)
			if (err == nil) != tt.anonymousPull {
				t.Errorf("anonymous pull: err = %v, want allowed=%v", err, tt.anonymousPull)
			}
			if tt.opts != nil {
				fresh := upstreamtest.RandomImage(t, 1, 128, upstreamtest.OCIManifest) // nothing to skip
				if err := remote.Write(ref, fresh, anon...); err == nil {
					t.Error("anonymous push succeeded")
				}
				wrong := append(anon, remote.WithAuth(&authn.Basic{Username: "u", Password: "wrong"}))
				if _, err := remote.Head(ref, wrong...); err == nil {
					t.Error("pull with a wrong password succeeded")
				}
			}
		})
	}
}

// TestDiskStorage: WithDiskStorage keeps what is pushed in files under
// Dir, and serves it back.
func TestDiskStorage(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithDiskStorage())
	img := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)
	want := upstreamtest.Push(t, reg, "disk/app:v1", img)
	data := filepath.Join(reg.Dir, "docker/registry/v2/blobs/sha256", want.Digest.Encoded()[:2], want.Digest.Encoded(), "data")
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the manifest is not in a file under Dir: %v", err)
	}
	ref, err := name.ParseReference(reg.Ref("disk/app:v1"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	got, err := remote.Image(ref, remote.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := got.Digest(); err != nil || d.String() != want.Digest.String() {
		t.Errorf("pulled %v, %v; want %s", d, err, want.Digest)
	}
}

func TestFaulty(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "f/app:v1", img)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	want, _ := io.ReadAll(rc)
	rc.Close()
	f := upstreamtest.NewFaulty(t, reg.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	blobURL := f.URL + "/v2/f/app/blobs/" + d.String()
	get := func(header http.Header) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, blobURL, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	f.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{Corrupt: true} })
	if _, b, err := get(nil); err != nil || len(b) != len(want) || b[0] != want[0]^0xff || !bytes.Equal(b[1:], want[1:]) {
		t.Errorf("Corrupt: %d bytes, %v; want the blob with its first byte flipped", len(b), err)
	}
	f.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{TruncateAfter: 100} })
	if _, b, err := get(nil); err == nil || len(b) != 100 {
		t.Errorf("TruncateAfter 100: %d bytes, %v; want 100 and an error", len(b), err)
	}
	f.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{Redirect: true} })
	resp, b, err := get(http.Header{"Range": {"bytes=10-"}})
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, want[10:]) {
		t.Errorf("Redirect with Range: %v, %d bytes, %v", resp.Status, len(b), err)
	}
	// The CDN token is good once.
	var cdn upstreamtest.Request
	for _, r := range f.Requests() {
		if r.CDN {
			cdn = r
		}
	}
	again, err := client.Get(f.CDNURL + cdn.Path + "?" + cdn.Query)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusForbidden {
		t.Errorf("reusing a CDN token: %s, want 403", again.Status)
	}
	// Three blob GETs reached the registry side; the CDN hops don't count.
	if n := f.BlobGets(); n != 3 {
		t.Errorf("BlobGets = %d, want 3", n)
	}
	// Bytes sent: the whole corrupt blob, 100 truncated, the redirected
	// range at the CDN (the 307 has no blob body).
	if n, w := f.BlobBytes(), int64(len(want)+100+len(want)-10); n != w {
		t.Errorf("BlobBytes = %d, want %d", n, w)
	}
	f.ResetCounts()
	if n := f.BlobBytes(); n != 0 {
		t.Errorf("BlobBytes after ResetCounts = %d, want 0", n)
	}
}

// RandomFaults misbehaves on about its rate of requests, in every kind,
// and the same seed makes the same decisions.
func TestRandomFaults(t *testing.T) {
	decide := func(seed uint64) ([]bool, map[string]int) {
		rf := upstreamtest.NewRandomFaults(seed, 0.05, upstreamtest.UpstreamFaults(time.Second, time.Second))
		req, _ := http.NewRequest(http.MethodGet, "http://h/v2/a/blobs/sha256:00", nil)
		var hits []bool
		for range 20000 {
			f := rf.Fault(req)
			hits = append(hits, f.Reset || f.Status != 0 || f.Stall != 0 || f.TruncateAfter != 0 || f.Corrupt)
		}
		n, injected := rf.Counts()
		if n != 20000 {
			t.Errorf("%d requests counted, want 20000", n)
		}
		return hits, injected
	}
	a, injected := decide(7)
	b, _ := decide(7)
	if !slices.Equal(a, b) {
		t.Error("the same seed made different decisions")
	}
	total := 0
	for _, k := range []string{"reset", "503", "429", "stall", "truncated", "wrong bytes"} {
		if injected[k] < 100 {
			t.Errorf("%s injected %d times in 20000 requests at 5%%, want about 167", k, injected[k])
		}
		total += injected[k]
	}
	if total < 850 || total > 1150 {
		t.Errorf("%d faults in 20000 requests, want about 1000", total)
	}
}
