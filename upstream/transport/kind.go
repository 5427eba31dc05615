package transport

import (
	"context"
	"net/http"
)

// Kinds of upstream request, the values of the metrics' "kind" label.
// A fixed set keeps the label's cardinality bounded.
const (
	KindManifest = "manifest"
	KindBlob     = "blob"
	KindTags     = "tags"
	KindToken    = "token"
	KindOther    = "other"
)

type kindKey struct{}

// WithKind returns a context that labels requests made with it as kind.
// The label travels with the request through redirects, which is why a
// blob served from a CDN still counts as a blob.
func WithKind(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, kindKey{}, kind)
}

// KindOf returns the kind of req, KindOther when none was set.
func KindOf(req *http.Request) string {
	if k, ok := req.Context().Value(kindKey{}).(string); ok && k != "" {
		return k
	}
	return KindOther
}
