package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// pusher pushes images for one client.
type pusher struct {
	*client
	o    *PushOptions
	bufs chan []byte // hashing buffers, one per upload in flight; also the bound
}

func newPusher(c *client, o *PushOptions) *pusher {
	p := &pusher{client: c, o: o, bufs: make(chan []byte, o.Parallel)}
	for range o.Parallel {
		p.bufs <- nil
	}
	return p
}

// tag is the tag of this client's push number n.
func (p *pusher) tag(n int) string {
	return p.o.TagPrefix + strconv.Itoa(p.id) + "-" + strconv.Itoa(n)
}

// pushed is what one push stored: its tag, its manifest's digest and the
// blobs the manifest names (config first).
type pushed struct {
	tag      string
	manifest digest.Digest
	blobs    []digest.Digest
}

// push makes push number n of this client.
func (p *pusher) push(ctx context.Context, n int) error {
	_, err := p.pushImage(ctx, n)
	return err
}

// pushImage makes push number n of this client: fresh random layers,
// uploaded with bounded parallelism, then the config, then the manifest
// under the tag, which is what makes the image visible to pulls.
func (p *pusher) pushImage(ctx context.Context, n int) (pushed, error) {
	layers := make([]ocispec.Descriptor, p.o.Layers)
	g, gctx := errgroup.WithContext(ctx)
	for i := range layers {
		buf := <-p.bufs
		if gctx.Err() != nil {
			p.bufs <- buf
			break
		}
		g.Go(func() error {
			if buf == nil {
				buf = make([]byte, p.bufLen)
			}
			defer func() { p.bufs <- buf }()
			seed := layerSeed{p.o.Seed, uint64(p.id), uint64(n), uint64(i)}
			d, err := p.uploadLayer(gctx, seed, buf)
			layers[i] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: p.o.LayerSize}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return pushed{}, err
	}

	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.Digest // uncompressed layers: the diff ID is the digest
	}
	cfg, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		return pushed{}, err
	}
	cd := digest.FromBytes(cfg)
	if err := p.upload(ctx, cd, int64(len(cfg)), func() io.Reader { return bytes.NewReader(cfg) }); err != nil {
		return pushed{}, err
	}
	man, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    layers,
	})
	if err != nil {
		return pushed{}, err
	}
	rec := pushed{tag: p.tag(n), manifest: digest.FromBytes(man), blobs: []digest.Digest{cd}}
	for _, l := range layers {
		rec.blobs = append(rec.blobs, l.Digest)
	}
	return rec, p.putManifest(ctx, rec.tag, man)
}

// uploadLayer uploads the layer seed generates: in chunks when asked,
// hashing as it sends, or monolithically, which needs the digest first and
// so generates the bytes twice (the hashing pass is not in the blob's
// latency).
func (p *pusher) uploadLayer(ctx context.Context, seed layerSeed, buf []byte) (digest.Digest, error) {
	open := func() io.Reader { return randomLayer(seed, p.o.LayerSize) }
	if p.o.Chunk > 0 {
		return p.uploadChunked(ctx, p.o.LayerSize, open())
	}
	d, err := layerDigest(seed, p.o.LayerSize, buf)
	if err != nil {
		return "", err
	}
	return d, p.upload(ctx, d, p.o.LayerSize, open)
}

// startUpload opens an upload session and returns where to send the bytes.
// Its POST has no body, so a 401 challenge is answered and retried here,
// and the token it earns (pull,push on the repository) goes out with the
// PATCH and PUT requests that follow, which have bodies and so cannot be
// retried.
func (p *pusher) startUpload(ctx context.Context) (*url.URL, error) {
	resp, err := p.call(ctx, "upload", http.MethodPost, p.url("/v2/"+p.o.Repo+"/blobs/uploads/"), nil, nil, 0, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return location(resp)
}

// upload is the monolithic upload: POST, then PUT ?digest= with the bytes.
func (p *pusher) upload(ctx context.Context, d digest.Digest, size int64, open func() io.Reader) error {
	start := time.Now()
	loc, err := p.startUpload(ctx)
	if err != nil {
		return err
	}
	if err := p.finish(ctx, loc, d, countingReader{open(), p.ctr}, size); err != nil {
		return err
	}
	p.rec.observe("blob", time.Since(start))
	return nil
}

// uploadChunked is the chunked upload: POST, PATCH per chunk with its
// Content-Range, following each new Location, then an empty PUT ?digest=.
func (p *pusher) uploadChunked(ctx context.Context, size int64, r io.Reader) (digest.Digest, error) {
	start := time.Now()
	loc, err := p.startUpload(ctx)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	src := io.TeeReader(r, h)
	for off := int64(0); off < size; {
		n := min(p.o.Chunk, size-off)
		hdr := http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", off, off+n-1)},
		}
		resp, err := p.call(ctx, "upload", http.MethodPatch, loc.String(), hdr, countingReader{io.LimitReader(src, n), p.ctr}, n,
			http.StatusAccepted, http.StatusNoContent)
		if err != nil {
			return "", err
		}
		if loc, err = location(resp); err != nil {
			return "", err
		}
		off += n
	}
	d := digest.NewDigest(digest.SHA256, h)
	if err := p.finish(ctx, loc, d, nil, 0); err != nil {
		return "", err
	}
	p.rec.observe("blob", time.Since(start))
	return d, nil
}

// finish closes an upload with PUT <location>?digest=, with body or none.
func (p *pusher) finish(ctx context.Context, loc *url.URL, d digest.Digest, body io.Reader, size int64) error {
	u := *loc
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	_, err := p.call(ctx, "upload", http.MethodPut, u.String(), hdr, body, size, http.StatusCreated)
	return err
}

func (p *pusher) putManifest(ctx context.Context, tag string, body []byte) error {
	start := time.Now()
	hdr := http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}}
	if _, err := p.call(ctx, "manifest-put", http.MethodPut, p.url("/v2/"+p.o.Repo+"/manifests/"+tag), hdr,
		countingReader{bytes.NewReader(body), p.ctr}, int64(len(body)), http.StatusCreated); err != nil {
		return err
	}
	p.rec.observe("manifest", time.Since(start))
	return nil
}

// location resolves an upload response's Location, which registries may
// send relative to the request.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: %d without Location", resp.Request.Method, resp.Request.URL.Redacted(), resp.StatusCode)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("upload location %q: %w", loc, err)
	}
	return u, nil
}
