package writethrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// Replicator is what write-through needs of an upstream beyond reading.
// upstream.Client implements it.
type Replicator interface {
	HeadBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// PushBlob uploads size bytes from open() as d to repo, or mounts d
	// from mountFrom when that is not empty and the upstream allows it.
	PushBlob(ctx context.Context, repo string, d digest.Digest, size int64, open func() (io.ReadCloser, error), mountFrom string) error
	PutManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error
}

// errMissing: what a job would push is no longer stored here.
var errMissing = errors.New("content missing")

// replicate pushes j's manifest and everything it references, or passes
// its delete on.
func (wt *Worker) replicate(ctx context.Context, j index.Job) error {
	up, path, ok := strings.Cut(j.Repo, "/")
	if !ok {
		return fmt.Errorf("repository %q: %w", j.Repo, cache.ErrUnknownUpstream)
	}
	o, err := wt.origin(cache.Repo{Upstream: up, Path: path})
	if err != nil {
		return err
	}
	if j.Op != "" {
		return wt.replicateDelete(ctx, o, path, j)
	}
	rep, ok := o.(Replicator)
	if !ok {
		return fmt.Errorf("upstream %s cannot be pushed to: %w", up, cache.ErrUnknownUpstream)
	}
	ref := j.Tag
	if ref == "" {
		ref = j.Digest.String()
	}
	return wt.pushManifest(ctx, rep, up, path, j.Digest, ref, 0)
}

// maxDepth bounds nested indexes, which a hostile push could make deep.
const maxDepth = 8

func (wt *Worker) pushManifest(ctx context.Context, rep Replicator, up, path string, d digest.Digest, ref string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("manifest %s: indexes nested too deep: %w", d, cache.ErrManifestInvalid)
	}
	m, err := wt.store.StoredManifest(d)
	if errors.Is(err, cache.ErrNotFound) {
		return fmt.Errorf("manifest %s is no longer stored: %w", d, errMissing)
	}
	if err != nil {
		return err // the store did not answer: retried, not dropped
	}
	p, err := oci.ParseManifest(m.Body)
	if err != nil {
		return err
	}
	for _, b := range p.Blobs {
		if oci.Foreign(b) {
			continue
		}
		if err := wt.pushBlob(ctx, rep, up, path, b.Digest); err != nil {
			return err
		}
	}
	for _, c := range p.Manifests {
		if err := wt.pushManifest(ctx, rep, up, path, c.Digest, c.Digest.String(), depth+1); err != nil {
			return err
		}
	}
	return rep.PutManifest(ctx, path, ref, m.Descriptor.MediaType, m.Body)
}

// mountKey names a blob on one upstream: a path is a mount source only on
// the upstream it was pushed to (on another it is someone else's
// repository, or none).
type mountKey struct {
	upstream string
	d        digest.Digest
}

func (wt *Worker) pushBlob(ctx context.Context, rep Replicator, up, path string, d digest.Digest) error {
	if _, err := rep.HeadBlob(ctx, path, d); err == nil {
		return nil
	}
	size, err := wt.store.ContentSize(d)
	if errors.Is(err, cache.ErrNotFound) {
		return fmt.Errorf("blob %s is no longer stored: %w", d, errMissing)
	}
	if err != nil {
		return err // the store did not answer: retried, not dropped
	}
	open := func() (io.ReadCloser, error) {
		b, err := wt.store.OpenContent(d)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{b.File, b}, nil
	}
	wt.mountMu.Lock()
	from := wt.mounts[mountKey{up, d}]
	wt.mountMu.Unlock()
	if from == path {
		from = ""
	}
	if err := rep.PushBlob(ctx, path, d, size, open, from); err != nil {
		return err
	}
	wt.mountMu.Lock()
	wt.mounts[mountKey{up, d}] = path
	wt.mountMu.Unlock()
	return nil
}

// failureReason labels an error for the failures metric (a fixed set).
func failureReason(err error) string {
	switch {
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, upstream.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, upstream.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, upstream.ErrDenied):
		return "denied"
	case errors.Is(err, upstream.ErrTooManyRequests):
		return "429"
	case errors.Is(err, upstream.ErrRejected), errors.Is(err, upstream.ErrNotFound):
		return "rejected"
	case errors.Is(err, errMissing):
		return "missing"
	}
	return "error"
}
