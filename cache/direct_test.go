package cache

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// relay stands for a peer origin: it counts what it is asked, answers
// through the registry, says its tag answers were checked an hour ago,
// and names the registry as its Direct origin.
type relay struct {
	Origin
	direct Origin
	calls  atomic.Int64
}

func (r *relay) Direct() Origin { return r.direct }

func (r *relay) GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	r.calls.Add(1)
	return r.Origin.GetBlob(ctx, repo, d, offset)
}

func (r *relay) GetManifest(ctx context.Context, repo, ref string, accept []string) (*upstream.Manifest, error) {
	r.calls.Add(1)
	m, err := r.Origin.GetManifest(ctx, repo, ref, accept)
	if m != nil {
		m.Checked = time.Now().Add(-time.Hour)
	}
	return m, err
}

func (r *relay) HeadManifestChecked(ctx context.Context, repo, ref string, accept []string) (ocispec.Descriptor, time.Time, error) {
	r.calls.Add(1)
	d, err := r.Origin.HeadManifest(ctx, repo, ref, accept)
	return d, time.Now().Add(-time.Hour), err
}

type ttlOrigin struct {
	Origin
	ttl time.Duration
}

func (o ttlOrigin) TagTTL() time.Duration { return o.ttl }

// TestDirectOriginSkipsTheRelay: a request marked DirectOrigin is served
// with the Direct origin (a fill too, though it runs detached), others
// with the configured one; the capabilities (TagTTL, Origin for the write
// path) are the Direct origin's; a relayed tag answer is recorded as
// checked when the relay says, so it expires with its source.
func TestDirectOriginSkipsTheRelay(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 2, 4096, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	up, err := upstream.New(upstream.Options{Name: "registry.test", URL: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	direct := ttlOrigin{up, 2 * time.Hour}
	r := &relay{Origin: up, direct: direct}
	c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{r}, TagTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	repo := Repo{Upstream: "registry.test", Path: "team/app"}
	layers, _ := img.Layers()
	read := func(ctx context.Context, i int) {
		t.Helper()
		h, _ := layers[i].Digest()
		b, err := c.Blob(ctx, repo, digest.Digest(h.String()))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := io.Copy(io.Discard, b.Fill.Reader(ctx, 0)); err != nil {
			t.Fatal(err)
		}
	}
	read(DirectOrigin(t.Context()), 0)
	if n := r.calls.Load(); n != 0 {
		t.Errorf("a marked request asked the relay %d times", n)
	}
	read(t.Context(), 1)
	if n := r.calls.Load(); n != 1 {
		t.Errorf("an unmarked request asked the relay %d times, want 1", n)
	}
	if got := c.tagTTL(repo); got != 2*time.Hour {
		t.Errorf("tag TTL %v, want the direct origin's", got)
	}
	if o, _ := c.Origin(repo); o != Origin(direct) {
		t.Errorf("the write path's origin is %T, want the direct one", o)
	}

	// The relay says its tag answer was checked an hour ago: the record
	// holds that time, not now, so it expires an hour sooner (still
	// fresh under the 2h TTL, so the next pull asks no one).
	r.calls.Store(0)
	m, err := c.Manifest(t.Context(), repo, "v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(m.Checked); age < 59*time.Minute || age > 61*time.Minute {
		t.Errorf("the tag was recorded checked %v ago, want the relay's hour", age)
	}
	rec, ok := c.tagRecord(repo, "v1", c.acceptKey(nil))
	if !ok || time.Since(rec.Checked) < 59*time.Minute {
		t.Errorf("the stored record: %+v %v", rec, ok)
	}
	if _, err := c.Manifest(t.Context(), repo, "v1", nil); err != nil || r.calls.Load() != 1 {
		t.Errorf("a fresh record asked the relay again: %v, %d calls", err, r.calls.Load())
	}
}
