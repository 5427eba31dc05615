package cache

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/upstream"
)

// ErrOffline: the cache does not hold what was asked for, and it is
// switched offline (Options.Offline), so no upstream is asked. proxy maps
// it to a 404 whose message says so: the store is all there is, and a
// retry would get the same answer.
var ErrOffline = errors.New("not in the cache, and wharf is offline (it asks no upstream)")

// offlineOrigin stands in for an upstream when the cache is offline. It
// contacts nothing: what it can answer it answers from the store itself,
// everything else is ErrOffline.
//
// Answering from the store matters for tags: the cache keeps one tag
// record per Accept set, so a tag warmed by one client is a miss for a
// client that sends other Accept values. Online, that miss asks the
// upstream; offline, this origin hands back any stored answer the client
// accepts, which the cache then records for that Accept set too.
type offlineOrigin struct {
	c    *Cache
	name string
}

func (o offlineOrigin) Name() string { return o.name }

func (o offlineOrigin) repo(path string) string { return o.name + "/" + path }

func (o offlineOrigin) GetManifest(_ context.Context, path, ref string, accept []string) (*upstream.Manifest, error) {
	m, err := o.stored(path, ref, accept)
	if err != nil {
		return nil, err
	}
	return &upstream.Manifest{Descriptor: m.Descriptor, Body: m.Body}, nil
}

func (o offlineOrigin) HeadManifest(_ context.Context, path, ref string, accept []string) (ocispec.Descriptor, error) {
	m, err := o.stored(path, ref, accept)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return m.Descriptor, nil
}

// stored finds ref (a digest, or a tag with a record for any Accept set)
// among the stored manifests, keeping to the media types accept allows.
func (o offlineOrigin) stored(path, ref string, accept []string) (*Manifest, error) {
	missing := fmt.Errorf("manifest %s:%s: %w", o.repo(path), ref, ErrOffline)
	if d, err := digest.Parse(ref); err == nil {
		if m, err := o.c.storedManifest(d); err == nil {
			return m, nil
		}
		return nil, missing
	}
	if m, ok := o.c.storedTag(o.repo(path), ref, accept); ok {
		return m, nil
	}
	return nil, missing
}

func (o offlineOrigin) GetBlob(_ context.Context, path string, d digest.Digest, _ int64) (io.ReadCloser, int64, error) {
	return nil, 0, fmt.Errorf("blob %s@%s: %w", o.repo(path), d, ErrOffline)
}

func (o offlineOrigin) HeadBlob(_ context.Context, path string, d digest.Digest) (int64, error) {
	return 0, fmt.Errorf("blob %s@%s: %w", o.repo(path), d, ErrOffline)
}

// Tags lists the tags cached for the repository, as the upstream's list
// would have been, so Cache.Tags answers without warning about an
// unreachable upstream on every call.
func (o offlineOrigin) Tags(_ context.Context, path string, n int, last string) ([]string, bool, error) {
	tags, err := o.c.index.Tags(o.repo(path))
	if err != nil || len(tags) == 0 {
		return nil, false, fmt.Errorf("tags of %s: %w", o.repo(path), ErrOffline)
	}
	page, more := Page(tags, n, last)
	return page, more, nil
}
