package warm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/archive"
	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
	"github.com/wharf-mirror/wharf/warm"
)

// mirror is a store in front of a real registry.
type mirror struct {
	reg  *upstreamtest.Registry
	c    *cache.Cache
	name string // the upstream's name in cache.Repo
}

func newMirror(t *testing.T) *mirror {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	up, err := upstream.New(upstream.Options{URL: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	c, err := cache.Open(cache.Options{Dir: t.TempDir(), Origins: []cache.Origin{up}, TagTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &mirror{reg: reg, c: c, name: up.Name()}
}

func (m *mirror) repo(path string) cache.Repo { return cache.Repo{Upstream: m.name, Path: path} }

func platforms(t *testing.T, s string) []ocispec.Platform {
	t.Helper()
	ps, err := archive.ParsePlatforms(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// counter adds up the progress Image reports, from several goroutines.
type counter struct{ n atomic.Int64 }

func (c *counter) add(n int64) { c.n.Add(n) }

// TestWarmKeepsTheIndexAndThePlatformsAsked: of a multi-platform image,
// warming keeps the index and the children that match, every blob of
// those verified and stored; asked again it fetches nothing; asked for
// all platforms it fetches the rest.
func TestWarmKeepsTheIndexAndThePlatformsAsked(t *testing.T) {
	m := newMirror(t)
	idx := upstreamtest.RandomIndex(t, 3, upstreamtest.OCIIndex) // amd64, arm64, arm
	desc := upstreamtest.PushIndex(t, m.reg, "team/app:v1", idx)
	repo := m.repo("team/app")
	ctx := context.Background()

	var progress counter
	rep, err := warm.Image(ctx, m.c, repo, "v1", platforms(t, "linux/arm64"), progress.add)
	if err != nil {
		t.Fatal(err)
	}
	// The index and one child; that child's config and layer.
	if rep.Descriptor.Digest != desc.Digest || rep.Manifests != 2 || rep.Blobs != 2 || rep.Fetched != 2 || rep.Bytes <= 0 {
		t.Errorf("report %+v: want %s, 2 manifests, 2 blobs, both fetched", rep, desc.Digest)
	}
	if got := progress.n.Load(); got != rep.Bytes {
		t.Errorf("progress added up to %d bytes, the report says %d fetched", got, rep.Bytes)
	}
	stored := childBlobs(t, idx)
	for arch, blobs := range stored {
		for _, d := range blobs {
			if _, ok := m.c.HasContent(d); ok != (arch == "arm64") {
				t.Errorf("%s blob %s stored: %v, want %v", arch, d, ok, arch == "arm64")
			}
		}
	}

	again, err := warm.Image(ctx, m.c, repo, "v1", platforms(t, "linux/arm64"), nil)
	if err != nil || again.Fetched != 0 || again.Bytes != 0 || again.Blobs != 2 {
		t.Errorf("warming again: %+v, %v; want the 2 blobs found stored", again, err)
	}

	all, err := warm.Image(ctx, m.c, repo, desc.Digest.String(), nil, nil)
	if err != nil || all.Manifests != 4 || all.Blobs != 6 || all.Fetched != 4 {
		t.Errorf("warming every platform: %+v, %v; want 4 manifests, 6 blobs, 4 fetched", all, err)
	}
	for arch, blobs := range stored {
		for _, d := range blobs {
			if _, ok := m.c.HasContent(d); !ok {
				t.Errorf("%s blob %s not stored after warming every platform", arch, d)
			}
		}
	}
}

// childBlobs lists, by architecture, the blobs (config and layers) of
// each image of idx.
func childBlobs(t *testing.T, idx v1.ImageIndex) map[string][]digest.Digest {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]digest.Digest{}
	for _, child := range im.Manifests {
		img, err := idx.Image(child.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		blobs := []digest.Digest{digest.Digest(cfg.String())}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			blobs = append(blobs, digest.Digest(ld.String()))
		}
		out[child.Platform.Architecture] = blobs
	}
	return out
}

// TestWarmRefusesAPlatformTheIndexLacks: an index with no child for the
// platforms asked is not found, and says which platforms.
func TestWarmRefusesAPlatformTheIndexLacks(t *testing.T) {
	m := newMirror(t)
	upstreamtest.PushIndex(t, m.reg, "team/app:v1", upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex))
	rep, err := warm.Image(context.Background(), m.c, m.repo("team/app"), "v1", platforms(t, "linux/s390x"), nil)
	if !errors.Is(err, cache.ErrNotFound) || !strings.Contains(err.Error(), "lists no manifest for linux/s390x") {
		t.Errorf("warming a platform the index lacks: %v", err)
	}
	if rep.Manifests != 1 || rep.Fetched != 0 {
		t.Errorf("report %+v: want the index walked and nothing fetched", rep)
	}
}

// status records what List shows on the status line.
type status struct {
	mu      sync.Mutex
	shown   []string
	cleared int
}

func (s *status) Show(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shown = append(s.shown, fmt.Sprintf(format, args...))
}

func (s *status) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleared++
}

// TestListGoesOnPastAFailure: an image that cannot be named or fetched is
// reported and fails the list, and the others are warmed all the same; a
// line per image, then the totals.
func TestListGoesOnPastAFailure(t *testing.T) {
	m := newMirror(t)
	img := upstreamtest.RandomImage(t, 2, 4<<10, upstreamtest.DockerManifest)
	desc := upstreamtest.Push(t, m.reg, "team/app:v1", img)
	name := func(image string) (archive.Name, error) {
		if strings.HasPrefix(image, "bad/") {
			return archive.Name{}, errors.New("not an upstream of this wharf")
		}
		path, tag, _ := strings.Cut(image, ":")
		return archive.Name{Repo: m.repo(path), Tag: tag}, nil
	}
	items := []archive.ListItem{{Image: "bad/name:v1"}, {Image: "team/app:v1"}, {Image: "team/missing:v1"}}
	var out strings.Builder
	var st status
	err := warm.List(context.Background(), m.c, name, items, &out, &st)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 images failed: bad/name:v1, team/missing:v1") {
		t.Errorf("List: %v, want the two failures named", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"FAILED  bad/name:v1: not an upstream of this wharf",
		"ok      team/app:v1  " + desc.Digest.String() + "  3 blobs, 3 fetched",
		"FAILED  team/missing:v1: ",
		"warmed 1 of 3 images in ",
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s\nwant %d lines", out.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start %q", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[3], ": 1 manifests, 3 blobs, 3 fetched (") || !strings.HasSuffix(lines[3], "; 2 failed") {
		t.Errorf("totals: %q", lines[3])
	}
	if len(st.shown) == 0 || st.shown[0] != "[2/3] team/app:v1  0 B" || st.cleared != 3 {
		t.Errorf("status line: shown %q, cleared %d times; want it started at [2/3] and cleared after each image", st.shown, st.cleared)
	}
}
