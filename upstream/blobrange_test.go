package upstream_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func readRange(t *testing.T, c *upstream.Client, repo string, d digest.Digest, offset, length int64) ([]byte, int64, bool, error) {
	t.Helper()
	rc, size, whole, err := c.GetBlobRange(t.Context(), repo, d, offset, length, offset == 0)
	if err != nil {
		return nil, size, whole, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, size, whole, err
}

// TestGetBlobRange asks the real registry for exact spans: each request
// says "bytes=a-b", and the answer is those bytes and the total size.
func TestGetBlobRange(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "blobs/range", 64<<10)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c := newClient(t, faulty.URL, nil)
	total := int64(len(want))

	tests := []struct {
		name           string
		offset, length int64
		header         string
		want           []byte
	}{
		{"start", 0, 1000, "bytes=0-999", want[:1000]},
		{"middle", 1000, 5000, "bytes=1000-5999", want[1000:6000]},
		{"past the end is clamped", total - 10, 100, "bytes=" + itoa(total-10) + "-" + itoa(total+89), want[total-10:]},
		{"whole in one", 0, total, "bytes=0-" + itoa(total-1), want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faulty.ResetCounts()
			got, size, whole, err := readRange(t, c, "blobs/range", d, tt.offset, tt.length)
			if err != nil || whole {
				t.Fatalf("GetBlobRange: whole %v, %v", whole, err)
			}
			if size != total || !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes of %d, want %d of %d", len(got), size, len(tt.want), total)
			}
			rs := faulty.Requests()
			if len(rs) != 1 || rs[0].Header.Get("Range") != tt.header {
				t.Errorf("requests %d, Range %q; want one with %q", len(rs), rs[0].Header.Get("Range"), tt.header)
			}
			if faulty.BlobBytes() != int64(len(tt.want)) {
				t.Errorf("the registry sent %d bytes for a range of %d", faulty.BlobBytes(), len(tt.want))
			}
		})
	}
}

// TestGetBlobRangeIgnored: an upstream answering 200 is told plainly
// (whole), with its body from byte 0 and nothing skipped.
func TestGetBlobRangeIgnored(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "blobs/norange", 64<<10)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	faulty.SetFault(func(*http.Request) upstreamtest.Fault { return upstreamtest.Fault{IgnoreRange: true} })
	c := newClient(t, faulty.URL, nil)
	got, size, whole, err := readRange(t, c, "blobs/norange", d, 0, 1000)
	if err != nil || !whole || size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, size %d, whole %v, %v; want the whole blob, whole", len(got), size, whole, err)
	}
}

// TestGetBlobRangeMismatch: a 206 whose Content-Range is not the span
// asked for is the upstream's failure, and no body is handed back.
func TestGetBlobRangeMismatch(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, _ := pushLayer(t, reg, "blobs/badrange", 64<<10)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c := newClient(t, faulty.URL, nil)
	for _, cr := range []string{"bytes 10-1009/65536", "bytes 0-998/65536", "bytes 0-999/*x", "nonsense"} {
		faulty.SetFault(func(*http.Request) upstreamtest.Fault {
			return upstreamtest.Fault{Header: http.Header{"Content-Range": {cr}}}
		})
		rc, _, _, err := c.GetBlobRange(t.Context(), "blobs/badrange", d, 0, 1000, true)
		if !errors.Is(err, upstream.ErrUnavailable) || rc != nil {
			t.Errorf("Content-Range %q: body %v, err %v; want ErrUnavailable and no body", cr, rc != nil, err)
		}
	}
	if _, _, _, err := c.GetBlobRange(t.Context(), "blobs/badrange", d, 0, 0, true); !errors.Is(err, upstream.ErrInvalid) {
		t.Errorf("GetBlobRange(length 0) error = %v, want ErrInvalid", err)
	}
}

// TestGetBlobRangeEmpty: an empty blob reads as empty, whether the
// registry answers its range with the empty body (distribution does) or
// with a 416, as no range of it is satisfiable; a 416 to a range from
// elsewhere, or to a resume from 0, stays the upstream's refusal.
func TestGetBlobRangeEmpty(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	layer := static.NewLayer(nil, types.DockerLayer)
	repo, err := name.NewRepository(reg.Host+"/blobs/empty", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	if err := remote.WriteLayer(repo, layer, remote.WithTransport(tr), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	d := digest.FromBytes(nil)
	for _, status := range []int{0, http.StatusRequestedRangeNotSatisfiable} {
		faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			if r.Header.Get("Range") == "" {
				return upstreamtest.Fault{} // the whole blob, asked after a 416
			}
			return upstreamtest.Fault{Status: status}
		})
		c := newClient(t, faulty.URL, nil)
		got, size, whole, err := readRange(t, c, "blobs/empty", d, 0, 1000)
		if err != nil || size != 0 || len(got) != 0 || !whole {
			t.Errorf("status %d: %d bytes, size %d, whole %v, %v; want the empty blob, asked whole after the 416 (distribution answers one for an empty blob)", status, len(got), size, whole, err)
		}
		if _, _, _, err := c.GetBlobRange(t.Context(), "blobs/empty", d, 10, 1000, false); status != 0 && !errors.Is(err, upstream.ErrRejected) {
			t.Errorf("416 from offset 10: %v, want ErrRejected", err)
		}
		if _, _, _, err := c.GetBlobRange(t.Context(), "blobs/empty", d, 0, 1000, false); status != 0 && !errors.Is(err, upstream.ErrRejected) {
			t.Errorf("416 to a resume from 0: %v, want ErrRejected", err)
		}
	}
}

// TestGetBlobRangeUnknownTotalEndsFirst: a blob of untold size shorter
// than the range asked ("bytes 0-99/*" to "bytes=0-16777215") is that
// short range, of size -1, not a misplaced one.
func TestGetBlobRangeUnknownTotalEndsFirst(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	d, want := pushLayer(t, reg, "blobs/short", 100)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	cr := "bytes 0-" + itoa(int64(len(want))-1) + "/*"
	faulty.SetFault(func(*http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Header: http.Header{"Content-Range": {cr}}}
	})
	c := newClient(t, faulty.URL, nil)
	got, size, whole, err := readRange(t, c, "blobs/short", d, 0, 16<<20)
	if err != nil || whole || size != -1 || !bytes.Equal(got, want) {
		t.Errorf("Content-Range %q: %d bytes, size %d, whole %v, %v; want the %d bytes, size -1", cr, len(got), size, whole, err, len(want))
	}
	if _, _, _, err := c.GetBlobRange(t.Context(), "blobs/short", d, 10, 1000, false); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("Content-Range %q to bytes=10-1009: %v, want ErrUnavailable", cr, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestGetBlobRangePastTheEndRefused: go-containerregistry's registry
// answers 416 to a first range that ends past the blob (RFC 9110 says to
// clamp it); the blob is then asked for whole, and read as one stream.
func TestGetBlobRangePastTheEndRefused(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	d, want := pushLayer(t, &upstreamtest.Registry{URL: srv.URL, Host: strings.TrimPrefix(srv.URL, "http://")}, "blobs/ggcr", 100<<10)
	c := newClient(t, srv.URL, nil)
	got, size, whole, err := readRange(t, c, "blobs/ggcr", d, 0, 16<<20)
	if err != nil || !whole || size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Errorf("first range past the end: %d bytes, size %d, whole %v, %v; want the %d bytes whole", len(got), size, whole, err, len(want))
	}
}
