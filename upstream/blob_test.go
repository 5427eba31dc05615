package upstream_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// pushLayer pushes a one-layer image to reg as repo:v1 and returns the
// layer's digest and bytes.
func pushLayer(t *testing.T, reg *upstreamtest.Registry, repo string, size int64) (digest.Digest, []byte) {
	t.Helper()
	img := upstreamtest.RandomImage(t, 1, size, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, repo+":v1", img)
	return layerBytes(t, img)
}

func layerBytes(t *testing.T, img v1.Image) (digest.Digest, []byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b), b
}

func readBlob(t *testing.T, c *upstream.Client, repo string, d digest.Digest, offset int64) ([]byte, int64, error) {
	t.Helper()
	rc, size, err := c.GetBlob(t.Context(), repo, d, offset)
	if err != nil {
		return nil, size, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, size, err
}

func TestGetBlob(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "blobs/one", 64<<10)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{IgnoreRange: true} })
	total := int64(len(want))

	tests := []struct {
		name   string
		url    string
		offset int64
	}{
		{"whole blob", reg.URL, 0},
		{"from an offset (206)", reg.URL, 1000},
		{"last byte", reg.URL, total - 1},
		{"offset, upstream ignores Range (200)", faulty.URL, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			c := newClient(t, tt.url, func(o *upstream.Options) { o.Metrics = m })
			got, size, err := readBlob(t, c, "blobs/one", d, tt.offset)
			if err != nil {
				t.Fatalf("GetBlob: %v", err)
			}
			if size != total {
				t.Errorf("size = %d, want %d", size, total)
			}
			if !bytes.Equal(got, want[tt.offset:]) {
				t.Errorf("got %d bytes, want the %d from offset %d", len(got), len(want[tt.offset:]), tt.offset)
			}
			if read := testutil.ToFloat64(m.UpstreamBytes.WithLabelValues(c.Name())); read < float64(len(got)) {
				t.Errorf("UpstreamRead counted %v bytes, want at least %d", read, len(got))
			}
		})
	}
	if n := faulty.Count(http.MethodGet, "/blobs/"); n != 1 {
		t.Errorf("Faulty saw %d blob GETs, want 1", n)
	}
	if rs := faulty.Requests(); len(rs) == 0 || rs[0].Header.Get("Range") != "bytes=1000-" {
		t.Errorf("the client did not send Range: bytes=1000- (requests %+v)", rs)
	}
}

func TestHeadBlob(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "blobs/head", 4096)
	c := newClient(t, reg.URL, nil)
	size, err := c.HeadBlob(t.Context(), "blobs/head", d)
	if err != nil || size != int64(len(want)) {
		t.Errorf("HeadBlob = %d, %v; want %d", size, err, len(want))
	}
}

func TestBlobErrors(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "blobs/err", 4096)
	c := newClient(t, reg.URL, nil)
	unknown := digest.FromString("no such blob")

	_, _, err := readBlob(t, c, "blobs/err", unknown, 0)
	var ue *upstream.Error
	if !errors.Is(err, upstream.ErrNotFound) || !errors.As(err, &ue) || ue.Code != "BLOB_UNKNOWN" {
		t.Errorf("GetBlob(unknown) error = %v, want ErrNotFound BLOB_UNKNOWN", err)
	}
	if _, err := c.HeadBlob(t.Context(), "blobs/err", unknown); !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("HeadBlob(unknown) error = %v, want ErrNotFound", err)
	}
	// Past the end: distribution answers 416, a request error, not an outage.
	_, _, err = readBlob(t, c, "blobs/err", d, int64(len(want))+10)
	if !errors.Is(err, upstream.ErrRejected) || !errors.As(err, &ue) || ue.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("GetBlob past the end error = %v, want ErrRejected 416", err)
	}
	if _, _, err := c.GetBlob(t.Context(), "blobs/err", d, -1); !errors.Is(err, upstream.ErrInvalid) {
		t.Errorf("GetBlob(offset -1) error = %v, want ErrInvalid", err)
	}
}

// TestBlobTruncated checks that a body that breaks off reads as an error
// wrapping ErrUnavailable, so a fill knows to resume or give up.
func TestBlobTruncated(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, _ := pushLayer(t, reg, "blobs/cut", 64<<10)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{TruncateAfter: 1000} })
	c := newClient(t, faulty.URL, nil)
	got, _, err := readBlob(t, c, "blobs/cut", d, 0)
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("read error = %v, want ErrUnavailable", err)
	}
	if len(got) != 1000 {
		t.Errorf("read %d bytes before the break, want 1000", len(got))
	}
}

// TestBlobRedirectToCDN follows a registry's redirect to another host, as
// Docker Hub's to its CDN: Range goes along, credentials (Basic, or the
// Bearer token) do not.
func TestBlobRedirectToCDN(t *testing.T) {
	for _, auth := range []struct {
		name string
		opt  upstreamtest.Option
	}{{"basic", upstreamtest.WithBasicAuth("alice", "s3cret")}, {"token", upstreamtest.WithTokenAuth("alice", "s3cret")}} {
		t.Run(auth.name, func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t, auth.opt)
			d, want := pushLayer(t, reg, "blobs/cdn", 64<<10)
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
				return upstreamtest.Fault{Redirect: strings.Contains(r.URL.Path, "/blobs/")}
			})
			c := newClient(t, faulty.URL, func(o *upstream.Options) { o.Username, o.Password = "alice", "s3cret" })

			got, size, err := readBlob(t, c, "blobs/cdn", d, 100)
			if err != nil {
				t.Fatalf("GetBlob: %v", err)
			}
			if size != int64(len(want)) || !bytes.Equal(got, want[100:]) {
				t.Errorf("got %d bytes of %d, want %d of %d", len(got), size, len(want)-100, len(want))
			}
			var cdn, authed int
			for _, r := range faulty.Requests() {
				switch {
				case r.CDN:
					cdn++
					if r.Header.Get("Authorization") != "" {
						t.Errorf("the CDN got an Authorization header")
					}
					if r.Header.Get("Range") != "bytes=100-" {
						t.Errorf("the CDN got Range %q, want bytes=100-", r.Header.Get("Range"))
					}
				case r.Header.Get("Authorization") != "":
					authed++
				}
			}
			if cdn != 1 || authed == 0 {
				t.Errorf("CDN requests %d (want 1), authorized registry requests %d (want > 0)", cdn, authed)
			}
		})
	}
}
