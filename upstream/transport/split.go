package transport

import (
	"net/http"
	"slices"
)

// byKind sends blob requests that carry a blob (KindBlob: a GET, or an
// upload with a body; whichever hop of a redirect) over HTTP/1.1
// connections of their own and every other request over the base
// transport, HTTP/2 where the server offers it: the API, and blob
// requests without a body either way (HEAD, DELETE, the POST that starts
// an upload), which are as small as the API's.
//
// HTTP/2 carries all of a host's requests on one TCP connection. That
// suits the API (manifests, HEADs, tag lists, tokens: small requests, one
// handshake, many in flight), not blob bodies: on a long link one TCP
// connection's throughput is capped (congestion window over round-trip
// time, a CDN's per-connection shaping), so the blobs of an image fetched
// at once and the Range segments of a big blob would share one cap. Over
// HTTP/1.1 each blob request in flight has a connection, and a cap, of its
// own; the blob transport's idle pool (base.go) keeps them for the next
// burst.
type byKind struct {
	api, blob *http.Transport
}

// splitByKind returns t for the API and a clone of it without HTTP/2 for
// blobs. The clone keeps everything else of t: the pool settings (with a
// pool of its own), the proxy, the TLS settings and the dialer (the
// guard's checking one included).
func splitByKind(t *http.Transport) *byKind {
	return &byKind{api: t, blob: http1Only(t)}
}

// http1Only returns a clone of t that speaks only HTTP/1.1. Protocols is
// the switch: once set, net/http ignores ForceAttemptHTTP2 and
// TLSNextProto (the older ways), and does not touch the ALPN list.
func http1Only(t *http.Transport) *http.Transport {
	c := t.Clone()
	c.Protocols = new(http.Protocols)
	c.Protocols.SetHTTP1(true)
	// Clone has set t up for HTTP/2, which put "h2" in its ALPN list: the
	// clone must not offer it, or a server that picks it would get
	// HTTP/1.1 on an HTTP/2 connection. tls.Config.Clone shares the
	// slice, hence the copy.
	if c.TLSClientConfig != nil {
		c.TLSClientConfig.NextProtos = slices.DeleteFunc(slices.Clone(c.TLSClientConfig.NextProtos),
			func(p string) bool { return p == "h2" })
	}
	return c
}

// RoundTrip implements http.RoundTripper.
func (s *byKind) RoundTrip(req *http.Request) (*http.Response, error) {
	if KindOf(req) == KindBlob && (req.Method == http.MethodGet || !bodyless(req)) {
		return s.blob.RoundTrip(req)
	}
	return s.api.RoundTrip(req)
}

// CloseIdleConnections closes both transports' idle connections.
func (s *byKind) CloseIdleConnections() {
	s.api.CloseIdleConnections()
	s.blob.CloseIdleConnections()
}
