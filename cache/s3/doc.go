// Package s3 keeps verified content in a bucket of an S3-compatible
// object store (AWS S3, MinIO, Ceph RGW, SeaweedFS, …): the second
// implementation of cache.Store's storage, beside cache/disk, for
// replicas that share one store, as cache/tier's shared tier. With a
// staging directory of the tests' own, it passes the same conformance
// table, cache/storetest.
//
// Layout under the bucket, after an optional prefix:
//
//	<prefix>/blobs/sha256/ab/abcdef…   verified content, one object per digest
//	<prefix>/uploads/<uuid>/<chunk>     the chunks of upload sessions the replicas
//	                                    share (chunks.go; their state is a record)
//
// Staging stays local whatever the store (fills let followers read the
// growing file; uploads append to it across requests), and is its
// caller's: cache/tier stages in its local tier, so the Store has no
// TempFile and no directory of its own. Put uploads a staged file under
// its digest's key. S3 makes an object visible only
// when its upload has completed, whole, so an object under blobs/ is
// always content that was verified before it was put. A multipart upload
// that fails is aborted; one that a crash cut short holds parts that are
// never visible, and Open aborts those older than AbandonedUploadAge
// (a bucket lifecycle rule, AbortIncompleteMultipartUpload, does the same
// on the store's side). The bucket should not be versioned: a delete
// there only hides the object behind a marker, and evicted bytes stay.
//
// Open returns a reader that fetches nothing until read: it HEADs the
// object for its size and modification time, Seek only moves the offset,
// and Read runs a ranged GET from the offset, continued as long as reads
// follow on. A Range request thus costs the bytes it sends, not the
// object. Unlike the disk store's *os.File it is copied through user
// space, not sent with sendfile, and a reader of content deleted under it
// fails at its next GET rather than reading on.
//
// Every wait on the store is bounded by Options.Timeout: connecting, the
// answer to a request (net/http's ResponseHeaderTimeout), and a body that
// stops moving (a watchdog, since net/http has no such bound), each tried
// a few times. A store that is down or frozen costs seconds, never a
// hang, and its errors never say fs.ErrNotExist: unreachable is not
// missing.
//
// # The client library
//
// It speaks S3 through minio-go (github.com/minio/minio-go/v7, Apache
// 2.0) rather than the AWS SDK for Go v2. minio-go is one module with a
// handful of small dependencies where the SDK is a dozen modules around a
// generated client; it is built and tested for S3-compatible stores
// first, choosing path-style or virtual-hosted addressing by itself and
// taking any endpoint as a plain host, where the SDK is AWS-first (custom
// endpoints and path-style are options, and the integrity checksums it
// sends by default since early 2025 were refused by several compatible
// stores until each client opted out). Its Core API returns a ranged
// GET's body as it is, which the lazy reader needs, and its uploader
// takes an io.ReaderAt, so parts are read from the staged file and never
// buffered whole, and it aborts a failed multipart upload itself, under
// a context that the caller's cancellation does not reach. This package
// is the only one that imports it (depcheck_test.go).
//
// The tests run against a real MinIO server, built from source by
// .ci/install-s3.sh and started by the tests on 127.0.0.1 (through
// package s3test, which cmd/wharf's tests share). The MinIO
// server is AGPL-3.0: it is a test tool run as a separate process, never
// imported, linked, vendored or shipped.
package s3
