package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// bigImage is a Docker image of n layers of size random bytes each (a
// tar of one file, gzipped without compression: a valid layer, built in
// a fraction of the time RandomImage's gzip takes, 13 s for 256 MiB on
// the CI's machine; random bytes would not compress anyway). The layers
// are held in memory.
func bigImage(t *testing.T, n int, size int64) v1.Image {
	t.Helper()
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	src := rand.NewChaCha8(seed)
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.DockerManifestSchema2), types.DockerConfigJSON)
	for i := range n {
		var buf bytes.Buffer
		buf.Grow(int(size) + int(size>>12) + 4096)
		zw, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(zw)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer-%d", i), Size: size, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, src, size); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// pulled is what one client's pull did.
type pulled struct {
	Manifest v1.Hash
	Bytes    int64 // blob bytes read, the failed attempts' included
	Retries  int   // parts tried again
}

// pullVerified pulls ref through host as one client does: a transport of
// its own (its own connections, as another machine's), the manifest,
// then the config and every layer, each hashed as it is read and checked
// against its digest and size. A part that fails is tried again, up to
// tries times in all, as docker and containerd retry a layer.
func pullVerified(ctx context.Context, host, ref string, tries int) (pulled, error) {
	var p pulled
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	opts := []remote.Option{remote.WithTransport(tr), remote.WithContext(ctx),
		// go-containerregistry's own retries, shortened: the test's loop
		// below is the client's patience.
		remote.WithRetryBackoff(remote.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Steps: 2})}
	r, err := name.ParseReference(host+"/"+ref, name.Insecure)
	if err != nil {
		return p, err
	}
	var m *v1.Manifest
	err = retry(ctx, tries, &p.Retries, func() error {
		img, err := remote.Image(r, opts...)
		if err != nil {
			return err
		}
		if p.Manifest, err = img.Digest(); err != nil {
			return err
		}
		m, err = img.Manifest()
		return err
	})
	if err != nil {
		return p, fmt.Errorf("manifest of %s: %w", ref, err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		err := retry(ctx, tries, &p.Retries, func() error {
			n, err := fetchBlob(r.Context().Digest(d.Digest.String()), d, opts)
			p.Bytes += n
			return err
		})
		if err != nil {
			return p, fmt.Errorf("blob %s of %s: %w", d.Digest, ref, err)
		}
	}
	return p, nil
}

// fetchBlob reads one blob and checks it, returning the bytes read.
func fetchBlob(ref name.Digest, d v1.Descriptor, opts []remote.Option) (int64, error) {
	l, err := remote.Layer(ref, opts...)
	if err != nil {
		return 0, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return n, err
	}
	if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); n != d.Size || got != d.Digest.String() {
		return n, fmt.Errorf("read %d bytes hashing to %s, want %d bytes of %s", n, got, d.Size, d.Digest)
	}
	return n, nil
}

// retry calls fn until it succeeds, tries times at most, counting the
// retries, after a pause growing by 200 ms a try (a client's backoff);
// it stops early when ctx ends.
func retry(ctx context.Context, tries int, retries *int, fn func() error) error {
	var errs []error
	for i := range tries {
		if i > 0 {
			*retries++
			select {
			case <-ctx.Done():
				return errors.Join(append(errs, ctx.Err())...)
			case <-time.After(time.Duration(i) * 200 * time.Millisecond):
			}
		}
		err := fn()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}
