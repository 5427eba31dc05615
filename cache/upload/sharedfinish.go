package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
)

// finishShared is Finish for a shared session. A session that holds
// nothing yet and gets its whole blob in this request (a monolithic
// push) takes the short way: the body goes to a staged file only, as on
// one node, and no chunk is written to the shared store.
func (s *Sessions) finishShared(ctx context.Context, repo, id string, c Chunk, d digest.Digest) error {
	st, ver, err := s.load(ctx, repo, id)
	if err != nil {
		return err
	}
	monolithic := st.Size == 0 && c.Body != nil && c.Length != 0
	if !monolithic {
		if st, ver, err = s.appendShared(ctx, id, st, ver, c); err != nil {
			return err
		}
	}
	// Staging, checking and storing a large blob takes a while, and the
	// session must not look idle to a sweep meanwhile (sharedkeep.go).
	keep, err := s.keepAlive(ctx, id, st, ver)
	if err != nil {
		return err
	}
	end, err := s.settle(ctx, id, st, c, d, monolithic)
	keep.done()
	if !end {
		return err
	}
	if eerr := s.endShared(ctx, id); eerr != nil {
		if err == nil {
			return eerr
		}
		s.log.WithError(eerr).WithField("upload", id).Warn("end upload of a wrong digest; the sweep ends it")
	}
	return err
}

// settle stages the session's blob (its body, when monolithic), checks
// it against d and hands it to the Ingester. It reports whether the
// session is over: stored, or of a wrong digest.
func (s *Sessions) settle(ctx context.Context, id string, st sharedState, c Chunk, d digest.Digest, monolithic bool) (bool, error) {
	var f *os.File
	var got digest.Digest
	var err error
	if monolithic {
		f, got, st, err = s.stageBody(id, st, c, d)
	} else {
		f, got, err = s.stage(ctx, id, st, d)
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if got != d {
		os.Remove(f.Name())
		return true, fmt.Errorf("upload %s: received bytes hash to %s, not %s: %w", id, got, d, ErrDigestInvalid)
	}
	s.compose(ctx, id, st, d)
	if err := s.opts.Ingest.Ingest(ctx, f, d, st.Size, true); err != nil {
		// The chunks stay for a retry; the staged file is remade then.
		s.dropCopy(id, s.copyOf(id))
		return false, err
	}
	return true, nil
}

// stageBody writes a whole blob from one request to the staged file,
// hashing it under d's algorithm.
func (s *Sessions) stageBody(id string, st sharedState, c Chunk, d digest.Digest) (*os.File, digest.Digest, sharedState, error) {
	c, err := checkChunk(0, c)
	if err != nil {
		return nil, "", st, err
	}
	s.dropCopy(id, s.copyOf(id)) // the file becomes the staged blob
	f, err := os.Create(s.path(id))
	if err != nil {
		s.opts.Metrics.StoreError("write")
		return nil, "", st, fmt.Errorf("upload %s: %w", id, err)
	}
	src := c.Body
	if c.Length > 0 {
		src = io.LimitReader(src, c.Length)
	}
	dg := d.Algorithm().Digester()
	n, err := io.CopyBuffer(io.MultiWriter(f, dg.Hash()), src, make([]byte, copyBuffer))
	switch {
	case err == nil && c.Length >= 0 && n != c.Length:
		err = fmt.Errorf("body ended after %d of %d bytes: %w", n, c.Length, ErrSizeInvalid)
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("body cut short: %w: %w", ErrSizeInvalid, err)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", st, err
	}
	st.Size = n
	return f, dg.Digest(), st, nil
}

// stage makes the staged file of a session's chunks: the local copy when
// it holds exactly them, or else the chunks read back in order, each
// checked against its size. It returns the digest under d's algorithm,
// from the running sha256 when the state carries it.
func (s *Sessions) stage(ctx context.Context, id string, st sharedState, d digest.Digest) (*os.File, digest.Digest, error) {
	lc := s.copyOf(id)
	if lc.matches(st) && lc.size == st.Size {
		if f, err := os.OpenFile(s.path(id), os.O_RDWR, 0); err == nil {
			if fi, err := f.Stat(); err == nil && fi.Size() == st.Size {
				return s.digestStaged(f, st, d)
			}
			f.Close()
		}
	}
	s.dropCopy(id, lc)
	f, err := os.Create(s.path(id))
	if err != nil {
		s.opts.Metrics.StoreError("write")
		return nil, "", fmt.Errorf("upload %s: %w", id, err)
	}
	buf := make([]byte, copyBuffer)
	for _, c := range st.Chunks {
		if err := s.copyChunk(ctx, f, id, c, buf); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, "", err
		}
	}
	return s.digestStaged(f, st, d)
}

func (s *Sessions) copyChunk(ctx context.Context, f *os.File, id string, c chunkRef, buf []byte) error {
	rc, err := s.opts.Shared.Chunks.Open(ctx, id, c.Name)
	if err != nil {
		s.opts.Metrics.StoreError("read")
		return unavailable(id, err)
	}
	defer rc.Close()
	n, err := io.CopyBuffer(f, io.LimitReader(rc, c.Size+1), buf)
	if err != nil {
		s.opts.Metrics.StoreError("read")
		return fmt.Errorf("upload %s: chunk %s: %w", id, c.Name, err)
	}
	if n != c.Size {
		return fmt.Errorf("upload %s: chunk %s holds %d bytes, its state says %d", id, c.Name, n, c.Size)
	}
	return nil
}

func (s *Sessions) digestStaged(f *os.File, st sharedState, d digest.Digest) (*os.File, digest.Digest, error) {
	h, known := resumeHashOf(st.Size, st.HashState)
	if !known {
		h = nil
	}
	got, err := digestOf(f, h, d)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	return f, got, nil
}

// composer is a ChunkStore that can make content of chunks where they
// are (cache/s3's Chunks: a copy within the bucket).
type composer interface {
	Compose(ctx context.Context, session string, chunks []string, d digest.Digest) error
}

// compose puts the verified chunks together as d's content in the shared
// store, when it can, so that Ingest finds d stored there and uploads
// nothing: a chunked push's bytes then travel to the bucket once. When
// it cannot (chunks under S3's 5 MiB minimum part), Ingest uploads them.
func (s *Sessions) compose(ctx context.Context, id string, st sharedState, d digest.Digest) {
	c, ok := s.opts.Shared.Chunks.(composer)
	if !ok || len(st.Chunks) == 0 {
		return
	}
	names := make([]string, len(st.Chunks))
	for i, ch := range st.Chunks {
		names[i] = ch.Name
	}
	if err := c.Compose(ctx, id, names, d); err != nil {
		s.log.WithError(err).WithField("upload", id).Debug("compose the chunks in the shared store; uploading the blob instead")
	}
}
