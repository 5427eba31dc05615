package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/wharf-mirror/wharf/cache/records"
)

// Records are the cluster's small shared objects (package records), kept
// in the store's bucket under <prefix>/records/<key>, beside the content.
// Each call is bounded by the store's Timeout as a whole: a record is at
// most records.MaxSize bytes, so no watchdog is needed.
type Records struct{ s *Store }

// Records returns the store's records.
func (s *Store) Records() Records { return Records{s} }

func (r Records) prefix() string {
	if r.s.opts.Prefix == "" {
		return "records/"
	}
	return r.s.opts.Prefix + "/records/"
}

func (r Records) key(key string) (string, error) {
	if err := records.CheckKey(key); err != nil {
		return "", fmt.Errorf("s3: %w", err)
	}
	return r.prefix() + key, nil
}

// Get reads the record at key.
func (r Records) Get(ctx context.Context, key string) (records.Record, error) {
	k, err := r.key(key)
	if err != nil {
		return records.Record{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.s.opts.Timeout)
	defer cancel()
	// One request for the answer and the body (minio.Client's GetObject
	// makes two, the second conditional on the first's ETag, and fails
	// when a writer replaces the record in between).
	body, info, _, err := minio.Core{Client: r.s.client}.GetObject(ctx, r.s.opts.Bucket, k, minio.GetObjectOptions{})
	if err != nil {
		return records.Record{}, recordError("get", key, err)
	}
	defer body.Close()
	if info.Size > records.MaxSize {
		return records.Record{Version: info.ETag, Modified: info.LastModified},
			fmt.Errorf("s3: record %s: %d bytes, more than %d: %w", key, info.Size, records.MaxSize, records.ErrTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(body, records.MaxSize+1))
	if err != nil {
		return records.Record{}, recordError("get", key, err)
	}
	if int64(len(data)) != info.Size {
		return records.Record{}, fmt.Errorf("s3: record %s: read %d bytes of %d", key, len(data), info.Size)
	}
	return records.Record{Data: data, Version: info.ETag, Modified: info.LastModified}, nil
}

// Put writes data at key under cond, with the conditional headers S3 and
// MinIO honour on PUT: If-None-Match: * to create, If-Match to replace.
func (r Records) Put(ctx context.Context, key string, data []byte, cond records.Cond) (string, error) {
	k, err := r.key(key)
	if err != nil {
		return "", err
	}
	if len(data) > records.MaxSize {
		return "", fmt.Errorf("s3: record %s: %d bytes, more than a record may hold (%d)", key, len(data), records.MaxSize)
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	switch {
	case cond.Absent():
		opts.SetMatchETagExcept("*")
	case cond.Version() != "":
		opts.SetMatchETag(cond.Version())
	}
	ctx, cancel := context.WithTimeout(ctx, r.s.opts.Timeout)
	defer cancel()
	info, err := r.s.client.PutObject(ctx, r.s.opts.Bucket, k, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return "", recordError("put ("+cond.String()+")", key, err)
	}
	return info.ETag, nil
}

// Delete removes the record at key.
func (r Records) Delete(ctx context.Context, key string) error {
	k, err := r.key(key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.s.opts.Timeout)
	defer cancel()
	if err := r.s.client.RemoveObject(ctx, r.s.opts.Bucket, k, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return recordError("delete", key, err)
	}
	return nil
}

// List calls fn with each key under prefix. The listing is bounded by the
// context only: a bucket may hold many records, and each page of the
// listing is one request bounded by the transport's own timeouts.
func (r Records) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := records.CheckPrefix(prefix); err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing if fn stops it
	base := r.prefix()
	for obj := range r.s.client.ListObjectsIter(ctx, r.s.opts.Bucket, minio.ListObjectsOptions{Prefix: base + prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("s3: list records %s: %w", prefix, obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, base)
		if !ok || records.CheckKey(key) != nil {
			continue // not a key Put would have written
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// recordError words a failed op on a record, mapping S3's answers to the
// records package's errors: a missing key, and a condition that did not
// hold (412; 409 where a store refuses a conditional write racing
// another).
func recordError(op, key string, err error) error {
	code := minio.ToErrorResponse(err)
	switch {
	case isNotFound(err):
		return fmt.Errorf("s3: %s record %s: %w", op, key, records.ErrNotFound)
	case op != "get" && (code.Code == minio.PreconditionFailed || code.StatusCode == 412 || code.Code == "ConditionalRequestConflict" || code.StatusCode == 409):
		return fmt.Errorf("s3: %s record %s: %w", op, key, records.ErrConflict)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3: %s record %s: no answer within the timeout: %w", op, key, err)
	}
	return fmt.Errorf("s3: %s record %s: %w", op, key, err)
}
