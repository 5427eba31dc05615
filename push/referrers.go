package push

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
)

// Referrers lists the manifests pushed to repo whose subject is d
// (OCI 1.1), only those of artifactType when it is not empty. A subject
// nobody refers to has an empty list, not an error: the subject itself
// need not exist.
func (w *Writer) Referrers(ctx context.Context, repo cache.Repo, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	all, err := w.c.Referrers(ctx, repo, d)
	if err != nil || artifactType == "" {
		return all, err
	}
	out := []ocispec.Descriptor{}
	for _, desc := range all {
		if desc.ArtifactType == artifactType {
			out = append(out, desc)
		}
	}
	return out, nil
}
