package fill_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestSegmentedFillFromRegistry fills a big blob from the real registry
// (distribution, which honours Range) in segments: the requests are the
// planned ranges, the registry sends the blob's bytes once, followers
// read it whole and it is stored.
func TestSegmentedFillFromRegistry(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	blob, d := randomBlob(t, 3*segThreshold+12345)
	repo, err := name.NewRepository(reg.Host+"/r", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	if err := remote.WriteLayer(repo, static.NewLayer(blob, types.DockerLayer), remote.WithTransport(tr), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	c, err := upstream.New(upstream.Options{URL: faulty.URL, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sg := newSegGroup(t, nil)
	open, ranged := sources(c, d)

	got, errs := followAll(t, sg.Group, d, open, ranged, 3)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], blob) {
			t.Errorf("follower %d: %d bytes, %v; want the blob", i, len(got[i]), errs[i])
		}
	}
	if !sg.stored(t, d) {
		t.Error("blob not stored")
	}
	if n := faulty.BlobGets(); n != 4 {
		t.Errorf("the registry got %d blob GETs, want 4 ranges", n)
	}
	if n := faulty.BlobBytes(); n != int64(len(blob)) {
		t.Errorf("the registry sent %d bytes for a blob of %d (ratio %.3f)", n, len(blob), float64(n)/float64(len(blob)))
	}
}
