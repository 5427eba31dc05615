package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// rangingOrigin sends ranges of the blobs it holds, or those bytes
// inverted when lie is set, and counts what it sends: faults a real
// registry does not make on demand (wrong bytes, a failure on cue).
type rangingOrigin struct {
	claimingOrigin
	lie   bool
	fail  error         // every blob read fails with it, when set
	asked chan struct{} // told (without blocking) of each range asked
	gate  chan struct{} // ranges wait for it to close, when set

	ranges, gets, sent atomic.Int64
}

func (o *rangingOrigin) body(d digest.Digest, from, to int64) (io.ReadCloser, int64, error) {
	if o.fail != nil {
		return nil, 0, o.fail
	}
	b, ok := o.holds[d]
	if !ok {
		return nil, 0, upstream.ErrNotFound
	}
	p := bytes.Clone(b[from:min(to, int64(len(b)))])
	if o.lie {
		for i := range p {
			p[i] ^= 0xff
		}
	}
	o.sent.Add(int64(len(p)))
	return io.NopCloser(bytes.NewReader(p)), int64(len(b)), nil
}

func (o *rangingOrigin) GetBlob(_ context.Context, _ string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	o.gets.Add(1)
	body, size, err := o.body(d, offset, 1<<62)
	return body, size - offset, err
}

func (o *rangingOrigin) GetBlobRange(ctx context.Context, _ string, d digest.Digest, offset, length int64, _ bool) (io.ReadCloser, int64, bool, error) {
	o.ranges.Add(1)
	select {
	case o.asked <- struct{}{}:
	default:
	}
	if o.gate != nil {
		select {
		case <-o.gate:
		case <-ctx.Done():
			return nil, 0, false, ctx.Err()
		}
	}
	body, size, err := o.body(d, offset, offset+length)
	return body, size, false, err
}

func (o *rangingOrigin) GetManifest(_ context.Context, _, ref string, _ []string) (*upstream.Manifest, error) {
	if o.fail != nil {
		return nil, o.fail
	}
	b, ok := o.holds[digest.Digest(ref)]
	if !ok {
		return nil, upstream.ErrNotFound
	}
	if o.lie {
		b = append(bytes.Clone(b), ' ')
	}
	return &upstream.Manifest{Body: b, Descriptor: ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b)),
	}}, nil
}

// pushedThroughMirror opens a cache on o with body pushed to a team's
// repository, and returns the cache, a mirrored repository of the same
// upstream, and body's digest.
func pushedThroughMirror(t *testing.T, o Origin, body []byte) (*Cache, Repo, digest.Digest) {
	t.Helper()
	c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{o}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	team := Repo{Upstream: "mirror.test", Path: "team/private"}
	d := ingestBytes(t, c, body)
	if err := c.LinkUploaded(t.Context(), team, d); err != nil {
		t.Fatal(err)
	}
	return c, Repo{Upstream: "mirror.test", Path: "library/python"}, d
}

// TestPushedBlobProvenByRanges: invariant 8 without the cost of the
// whole blob. Pushed content asked for through a mirrored name, by eight
// clients at once, is checked once: two ranges, far less than the blob,
// and no whole read. The repository is linked and later reads ask
// nothing.
func TestPushedBlobProvenByRanges(t *testing.T) {
	body := randomBytes(2 << 20)
	o := &rangingOrigin{asked: make(chan struct{}, 1), gate: make(chan struct{})}
	o.holds = map[digest.Digest][]byte{digest.FromBytes(body): body}
	c, mirrored, d := pushedThroughMirror(t, o, body)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Blob(t.Context(), mirrored, d)
			if err == nil {
				b.Close()
			}
			errs <- err
		}()
	}
	<-o.asked // the check is under way: whoever comes later joins it or finds its link
	close(o.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("pushed blob the upstream holds, through a mirrored name: %v", err)
		}
	}
	if n, g := o.ranges.Load(), o.gets.Load(); n != proofRanges || g != 0 {
		t.Errorf("upstream asked for %d ranges and %d whole blobs, want %d and 0 (one check)", n, g, proofRanges)
	}
	if sent := o.sent.Load(); sent > proofRanges*proofRange || sent*8 > int64(len(body)) {
		t.Errorf("upstream sent %d bytes to prove a %d-byte blob", sent, len(body))
	}
	if !c.Holds(mirrored, d) {
		t.Error("proven, and the mirrored repository is not linked")
	}
}

// TestPushedBlobRangesMustMatch: an upstream that answers ranges with
// bytes other than the stored ones (it knows the digest, not the
// content) opens nothing; one that fails with a 5xx is heard as the
// upstream's failure, not a not-found, as a miss would be (the status
// must not tell that the content is stored).
func TestPushedBlobRangesMustMatch(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    *rangingOrigin
		want error
	}{
		{"wrong bytes", &rangingOrigin{lie: true}, ErrNotFound},
		{"upstream down", &rangingOrigin{fail: upstream.ErrUnavailable}, upstream.ErrUnavailable},
		{"not found", &rangingOrigin{fail: upstream.ErrNotFound}, ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := randomBytes(1 << 20)
			tt.o.holds = map[digest.Digest][]byte{digest.FromBytes(body): body}
			c, mirrored, d := pushedThroughMirror(t, tt.o, body)
			b, err := c.Blob(t.Context(), mirrored, d)
			if b != nil {
				b.Close()
			}
			if !errors.Is(err, tt.want) || tt.want != ErrNotFound && errors.Is(err, ErrNotFound) {
				t.Errorf("Blob: %v, want %v", err, tt.want)
			}
			if c.Holds(mirrored, d) {
				t.Error("the mirrored repository was linked")
			}
			if sent := tt.o.sent.Load(); sent > proofRange {
				t.Errorf("upstream sent %d bytes, more than the first range", sent)
			}
		})
	}
}

// TestPushedManifestNeedsTheUpstreamsBytes: a pushed manifest opens to a
// mirrored name only when its upstream sends the very bytes.
func TestPushedManifestNeedsTheUpstreamsBytes(t *testing.T) {
	for _, lie := range []bool{false, true} {
		body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
		o := &rangingOrigin{lie: lie}
		o.holds = map[digest.Digest][]byte{digest.FromBytes(body): body}
		c, mirrored, d := pushedThroughMirror(t, o, body)
		err := c.mayServe(t.Context(), mirrored, d, true)
		switch {
		case lie && !errors.Is(err, ErrNotFound):
			t.Errorf("manifest the upstream sends wrong: %v, want ErrNotFound", err)
		case !lie && err != nil:
			t.Errorf("manifest the upstream sends: %v", err)
		}
		if c.Holds(mirrored, d) == lie {
			t.Errorf("upstream lying %v: linked %v", lie, !lie)
		}
	}
}

// TestFailedFillLinksNothing: invariant 8. An upstream that answers 200
// for a digest under a repository and sends wrong bytes leaves no link:
// once another team pushes the digest's real content, the repository's
// readers are refused it (its upstream does not send it), not served it.
func TestFailedFillLinksNothing(t *testing.T) {
	secret := randomBytes(300 << 10)
	d := digest.FromBytes(secret)
	o := &rangingOrigin{lie: true}
	o.holds = map[digest.Digest][]byte{d: secret}
	c, err := Open(Options{Dir: t.TempDir(), Origins: []Origin{o}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mirrored := Repo{Upstream: "mirror.test", Path: "library/python"}

	b, err := c.Blob(t.Context(), mirrored, d)
	if err != nil {
		t.Fatalf("the hostile upstream's answer: %v", err)
	}
	if _, err := io.Copy(io.Discard, b.Fill.Reader(t.Context(), 0)); err == nil {
		t.Error("wrong bytes read to their end without an error")
	}
	if err := b.Fill.Wait(t.Context()); err == nil {
		t.Fatal("a fill of wrong bytes succeeded")
	}
	b.Close()
	if c.Holds(mirrored, d) || c.vouches.has(d, mirrored) {
		t.Fatal("a failed fill left its repository linked or vouched for")
	}

	team := Repo{Upstream: "mirror.test", Path: "team/private"}
	if err := c.LinkUploaded(t.Context(), team, ingestBytes(t, c, secret)); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Blob(t.Context(), mirrored, d); !errors.Is(err, ErrNotFound) {
		if b != nil {
			b.Close()
		}
		t.Errorf("another team's push read through the repository a failed fill named: %v, want ErrNotFound", err)
	}
	if _, err := c.StatBlob(t.Context(), mirrored, d); !errors.Is(err, ErrNotFound) {
		t.Errorf("HEAD likewise: %v, want ErrNotFound", err)
	}
}

// TestFetchedManifestLinksNoPushedContent: invariant 8. A manifest an
// upstream sends under a repository's name, naming the digest of content
// another team pushed, does not open that content to the repository: a
// digest alone opens nothing, the upstream must send the bytes.
func TestFetchedManifestLinksNoPushedContent(t *testing.T) {
	secret := randomBytes(1000)
	d := digest.FromBytes(secret)
	cfg := []byte("{}")
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digest.FromBytes(cfg).String() + `","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d.String() + `","size":1000}]}`)
	o := &rangingOrigin{}
	o.holds = map[digest.Digest][]byte{digest.FromBytes(m): m}
	c, mirrored, _ := pushedThroughMirror(t, o, secret)

	if _, err := c.Manifest(t.Context(), mirrored, digest.FromBytes(m).String(), oci.ServedManifests); err != nil {
		t.Fatalf("the hostile manifest: %v", err)
	}
	if c.Holds(mirrored, d) {
		t.Error("a fetched manifest linked its repository to pushed content it names")
	}
	if b, err := c.Blob(t.Context(), mirrored, d); !errors.Is(err, ErrNotFound) {
		if b != nil {
			b.Close()
		}
		t.Errorf("pushed content named by a fetched manifest: %v, want ErrNotFound", err)
	}
}
