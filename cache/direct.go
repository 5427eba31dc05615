package cache

import (
	"context"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Directer is an optional capability of an Origin that asks others before
// the registry (package peer: the replica owning a key): Direct is the
// Origin behind it, the registry itself, with every capability the
// configuration gave it (TagTTLer, push.TagShadower, write-through's).
// The cache asks Direct for a request marked with DirectOrigin, so that a
// request a peer forwarded is never forwarded again, and for those
// capabilities.
type Directer interface {
	Direct() Origin
}

// CheckedHeader is an optional capability of an Origin that relays
// another cache's answers (package peer): HeadManifestChecked is
// HeadManifest with the time the answer for a tag was last checked
// against the registry (zero: now), so that a tag record made from it
// expires with the record it came from and the registry is asked once
// per TTL for a cluster, not once per replica. GetManifest's answer
// carries the same time in upstream.Manifest.Checked.
type CheckedHeader interface {
	HeadManifestChecked(ctx context.Context, repo, ref string, accept []string) (ocispec.Descriptor, time.Time, error)
}

type directCtxKey struct{}

// DirectOrigin marks ctx: the cache serves a request under it with each
// upstream's Direct origin. A peer's request is served so (peer.Server).
func DirectOrigin(ctx context.Context) context.Context {
	return context.WithValue(ctx, directCtxKey{}, true)
}

func isDirect(ctx context.Context) bool {
	d, _ := ctx.Value(directCtxKey{}).(bool)
	return d
}

// flightPrefix prefixes the key of a detached call made for a marked
// request, so that it never joins a call that asks a peer: two replicas
// whose views of the cluster disagree for a moment would otherwise each
// wait on the other.
func flightPrefix(ctx context.Context) string {
	if isDirect(ctx) {
		return "direct\x00"
	}
	return ""
}

// directOf is o's Direct origin, or o.
func directOf(o Origin) Origin {
	if d, ok := o.(Directer); ok {
		return d.Direct()
	}
	return o
}
