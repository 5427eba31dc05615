// Package s3test starts a real MinIO server for the tests of packages
// that speak to an S3 store (cache/s3, and cmd/wharf's tests of serve on
// one): a process on a free 127.0.0.1 port with a fresh data directory,
// over HTTP or HTTPS with a CA of its own, and a client of its root user
// to make buckets and look at what was written.
//
// .ci/install-s3.sh builds the server; the tests find it through
// $WHARF_MINIO, where that script links it, or $PATH. Without one they
// skip, unless WHARF_S3_REQUIRED is set (as .ci/run sets it), when they
// fail. MinIO is AGPL-3.0: it is run as a separate process, never
// imported, linked, vendored or shipped.
package s3test
