package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"
)

// Store keeps verified content as objects of an S3 bucket. It has
// cache.Store's methods but TempFile: content is staged by its caller
// (cache/tier, in its local tier) and Put uploads the staged file.
type Store struct {
	client *minio.Client
	tr     *http.Transport          // under client, for Close
	creds  *credentials.Credentials // client's
	opts   Options
}

// Swept counts the leftovers of earlier runs that Open removed.
type Swept struct {
	Uploads int // multipart uploads older than AbandonedUploadAge, aborted
}

// Open checks opts, that the bucket exists and answers to the
// credentials, and aborts abandoned multipart uploads under the prefix. Its errors name the setting at
// fault where one is.
func Open(ctx context.Context, opts Options) (*Store, Swept, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, Swept{}, err
	}
	client, tr, creds, err := newClient(opts)
	if err != nil {
		return nil, Swept{}, err
	}
	s := &Store{client: client, tr: tr, creds: creds, opts: opts}
	var swept Swept
	if err := s.checkBucket(ctx); err != nil {
		s.Close()
		return nil, swept, err
	}
	if swept.Uploads, err = s.abortAbandoned(ctx); err != nil {
		s.Close()
		return nil, swept, err
	}
	return s, swept, nil
}

// Close drops the connections kept open to the store. The Store must not
// be used after.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

func (s *Store) checkBucket(ctx context.Context) error {
	if s.opts.IAMRole {
		// Asked apart, so that a role that yields nothing says so rather
		// than as a failed request to the bucket, and within ctx.
		if _, err := s.creds.GetWithContext(&credentials.CredContext{Context: ctx}); err != nil {
			return fmt.Errorf("s3: %w", err)
		}
	}
	ok, err := s.client.BucketExists(ctx, s.opts.Bucket)
	if err != nil {
		return fmt.Errorf("s3: bucket %q at %s: %w", s.opts.Bucket, s.client.EndpointURL().Host, s.refusal(ctx, err))
	}
	if !ok {
		return fmt.Errorf("s3: bucket %q at %s: does not exist", s.opts.Bucket, s.client.EndpointURL().Host)
	}
	return nil
}

// refusal names the credential a store's refusal of the bucket check
// points to, by its S3 error code, before the store's own words (which
// say "signature" for a wrong secret key). The check is a HEAD, whose
// answer S3 leaves without a body, so a bare 400 or 403 is asked again
// as a GET of one key, whose error says why. The access key is an
// identifier, not a secret.
func (s *Store) refusal(ctx context.Context, err error) error {
	if st := minio.ToErrorResponse(err).StatusCode; st == http.StatusBadRequest || st == http.StatusForbidden {
		lctx, cancel := context.WithCancel(ctx)
		objects := s.client.ListObjects(lctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: s.opts.Prefix, MaxKeys: 1})
		if o, ok := <-objects; ok && o.Err != nil && minio.ToErrorResponse(o.Err).Code != "" {
			err = o.Err
		}
		cancel()
		for range objects { // the lister's goroutine ends with lctx
		}
	}
	who := fmt.Sprintf("access key %q", s.opts.AccessKey)
	switch {
	case s.opts.IAMRole:
		who = "the IAM role's credentials"
	case s.opts.AccessKey == "":
		who = "anonymous requests (no keys given)"
	}
	switch minio.ToErrorResponse(err).Code {
	case "SignatureDoesNotMatch":
		return fmt.Errorf("secret key: the store refuses it for %s: %w", who, err)
	case "InvalidAccessKeyId":
		return fmt.Errorf("%s: the store knows no such key: %w", who, err)
	case "ExpiredToken", "InvalidToken", "InvalidTokenId":
		return fmt.Errorf("session token: the store refuses it for %s (expired, missing, or not the one issued with the keys): %w", who, err)
	case "AccessDenied":
		return fmt.Errorf("%s may not use the bucket (the policy must allow listing, reading, writing and deleting objects under the prefix): %w", who, err)
	}
	return err
}

// blobsPrefix is where content objects live, keyed like the disk store's
// files: <prefix>/blobs/<algorithm>/<2 hex>/<hex>.
func (s *Store) blobsPrefix() string {
	if s.opts.Prefix == "" {
		return "blobs/"
	}
	return s.opts.Prefix + "/blobs/"
}

// key is the object key of d, which must be valid.
func (s *Store) key(d digest.Digest) string {
	enc := d.Encoded()
	return s.blobsPrefix() + path.Join(d.Algorithm().String(), enc[:2], enc)
}

// digestOf reads a key back, refusing what key would not have produced
// (another tool's object, a misplaced copy).
func (s *Store) digestOf(key string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(key, s.blobsPrefix())
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
	if d.Validate() != nil || parts[1] != parts[2][:2] {
		return "", false
	}
	return d, true
}

func valid(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("s3: %q: %w", d, err)
	}
	return nil
}

// notFound words an error of op on d; a missing object wraps
// fs.ErrNotExist.
func notFound(d digest.Digest, op string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3: %s: %w", d, fs.ErrNotExist)
	}
	return fmt.Errorf("s3: %s %s: %w", op, d, err)
}

func isNotFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == minio.NoSuchKey || code == "NotFound"
}

// Put uploads the staged file f as d's object. S3 makes an object visible
// only when its upload completes, whole; a multipart upload that fails is
// aborted (by the client, under a context of its own), and one a crash
// interrupts is aborted by a later Open. If d is stored already nothing is
// sent. On success the staged file is removed; f stays open.
func (s *Store) Put(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	if err := valid(d); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("s3: stat staged %s: %w", d, err)
	}
	if fi.Size() != size {
		return fmt.Errorf("s3: put %s: staged file holds %d bytes, not %d", d, fi.Size(), size)
	}
	switch stored, err := s.Stat(ctx, d); {
	case err == nil && stored == size:
		// Content-addressed: what is there is these bytes.
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	default:
		if err := s.upload(ctx, f, d, size); err != nil {
			return err
		}
	}
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("s3: remove staged %s: %w", d, err)
	}
	return nil
}

// upload sends size bytes of f. Every wait on the store is bounded by
// Timeout (answers by the transport, a body the store stops taking by a
// watchdog at twice that, so that it never fires while the transport
// waits within its own bound), so a store that freezes fails the upload
// instead of hanging it.
func (s *Store) upload(ctx context.Context, f *os.File, d digest.Digest, size int64) error {
	w := watch(ctx, 2*s.opts.Timeout)
	defer w.stop()
	w.alive()
	body := io.NewSectionReader(progressReaderAt{r: f, w: w}, 0, size)
	info, err := s.client.PutObject(w.ctx, s.opts.Bucket, s.key(d), body, size,
		minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: uint64(s.opts.PartSize)})
	if err != nil {
		return fmt.Errorf("s3: upload %s: %w", d, w.explain(err))
	}
	if info.Size != size {
		return fmt.Errorf("s3: upload %s: the store took %d bytes of %d", d, info.Size, size)
	}
	return nil
}

// Stat returns the size of d's object.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	info, err := s.head(ctx, d)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

func (s *Store) head(ctx context.Context, d digest.Digest) (minio.ObjectInfo, error) {
	if err := valid(d); err != nil {
		return minio.ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.opts.Bucket, s.key(d), minio.StatObjectOptions{})
	if err != nil {
		return minio.ObjectInfo{}, notFound(d, "stat", err)
	}
	return info, nil
}

// Delete removes d's object; S3 answers a delete of a missing key with
// success. A reader that opened d before reads on only as far as its
// current GET goes: the next ranged GET finds nothing.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := valid(d); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.opts.Bucket, s.key(d), minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("s3: delete %s: %w", d, err)
	}
	return nil
}

// Walk lists the objects under the prefix's blobs/ and calls fn for each
// that is content. Keys that key would not produce are skipped.
func (s *Store) Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing if fn stops it
	opts := minio.ListObjectsOptions{Prefix: s.blobsPrefix(), Recursive: true}
	for obj := range s.client.ListObjectsIter(ctx, s.opts.Bucket, opts) {
		if obj.Err != nil {
			return fmt.Errorf("s3: list %s: %w", s.blobsPrefix(), obj.Err)
		}
		d, ok := s.digestOf(obj.Key)
		if !ok {
			continue
		}
		if err := fn(d, obj.Size); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// abortAbandoned aborts multipart uploads under the prefix begun more than
// AbandonedUploadAge ago: a crash mid-upload leaves its parts stored (and
// billed) though never visible. Younger ones may be another replica's
// uploads in progress. A bucket lifecycle rule
// (AbortIncompleteMultipartUpload) does the same where the store has one.
//
// It lists the whole bucket's uploads and keeps the keys this store
// writes: MinIO answers a listing by prefix only for an exact key, with
// nothing. A bucket has few unfinished uploads.
func (s *Store) abortAbandoned(ctx context.Context) (int, error) {
	core := minio.Core{Client: s.client}
	before := time.Now().Add(-s.opts.AbandonedUploadAge)
	aborted := 0
	var keyMarker, idMarker string
	for {
		res, err := core.ListMultipartUploads(ctx, s.opts.Bucket, "", keyMarker, idMarker, "", 1000)
		if err != nil {
			return aborted, fmt.Errorf("s3: list unfinished uploads: %w", err)
		}
		for _, u := range res.Uploads {
			_, ours := s.digestOf(u.Key)
			if ours = ours || s.Chunks().isChunkKey(u.Key); !ours || !u.Initiated.Before(before) {
				continue
			}
			if err := core.AbortMultipartUpload(ctx, s.opts.Bucket, u.Key, u.UploadID); err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchUpload {
				return aborted, fmt.Errorf("s3: abort unfinished upload of %s: %w", u.Key, err)
			}
			aborted++
		}
		if !res.IsTruncated {
			return aborted, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}
