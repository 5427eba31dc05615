// Command baseline is the benchmark's idea of "what the machine allows":
// the least a server can do to answer the same registry requests a mirror
// answers, measured with the same load generator in the same run.
//
// Blobs: a plain static file server. GET /v2/<any>/blobs/<digest> opens
// <blobs>/<algorithm>/<2 hex>/<hex> (wharf's own layout, so it serves the
// very files wharf serves) and hands it to http.ServeContent, as
// http.FileServer does: sendfile, nothing else.
//
// Manifests: a bare Go handler. Every --manifest ref=file is read into
// memory at start; GET /v2/<any>/manifests/<ref> (ref a tag, or the file's
// digest) writes those bytes with Content-Type, Docker-Content-Digest and
// Content-Length, and does nothing else: no routing library, no logging, no
// lookup beyond one map.
//
// Usage:
//
//	baseline --listen 127.0.0.1:7100 --blobs data/blobs --manifest single=manifest.json
package main
