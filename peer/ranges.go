package peer

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
)

var _ cache.BlobRanger = (*Origin)(nil)

// GetBlobRange is cache.BlobRanger: the registry's ranges, for the replica
// ranked first for d only, so that the replica that fills d from the
// registry is the one that fetches it in segments. For a blob another
// replica owns its first request answers cache.ErrNoRanges, asking
// nothing: the fill then streams it with GetBlob from the owner, which
// segments. Any other request (a later segment, or a resume, even of
// range 0 from byte 0) belongs to a fill this replica segments already,
// and goes to the registry whatever the ranking says by then.
func (o *Origin) GetBlobRange(ctx context.Context, repo string, d digest.Digest, offset, length int64, first bool) (io.ReadCloser, int64, bool, error) {
	r, ok := o.next.(cache.BlobRanger)
	if !ok || (first && !o.owns(d)) {
		return nil, 0, false, fmt.Errorf("blob %s@%s: %w", repo, d, cache.ErrNoRanges)
	}
	return r.GetBlobRange(ctx, repo, d, offset, length, first)
}

// owns says whether this replica is ranked first for d (alone, it is).
func (o *Origin) owns(d digest.Digest) bool {
	ranked := o.c.opts.Cluster.Rank(d.String())
	return len(ranked) == 0 || ranked[0].Self
}
