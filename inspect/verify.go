package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
)

// VerifyStore is what Verify needs of a store; *cache.Cache satisfies it.
type VerifyStore interface {
	// Items lists what the index records, with the sizes it records.
	Items(fn func(cache.Item) error) error
	// OpenContent opens stored bytes, asking no upstream.
	OpenContent(d digest.Digest) (*cache.Blob, error)
	// Remove forgets an item through the store's locked removal path.
	Remove(d digest.Digest) error
}

// Corrupt is a stored item whose bytes no longer hash to its digest.
type Corrupt struct {
	Digest digest.Digest
	Reason string
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Checked     int
	Bytes       int64
	Corrupt     []Corrupt
	Quarantined int
}

// VerifyOptions say what Verify does besides checking.
type VerifyOptions struct {
	// Quarantine, when set, repairs: each corrupt item is copied into this
	// directory (for an operator to inspect) and removed from the store,
	// so the next pull fetches it again. wharf verify --repair uses
	// quarantine/ in the data directory. Empty: only report.
	Quarantine string
	// Progress, if set, is called after each item with bytes done and
	// total.
	Progress func(done, total int64)
}

// Verify re-hashes every item s holds, against the digest and the size
// its index records.
func Verify(ctx context.Context, s VerifyStore, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	// Listed first and checked after: the listing is one index snapshot,
	// and the checks (and removals) must not run inside it.
	var items []cache.Item
	var total int64
	if err := s.Items(func(it cache.Item) error {
		items = append(items, it)
		total += it.Size
		return nil
	}); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		n, reason := check(s, it.Digest, it.Size)
		rep.Checked++
		rep.Bytes += n
		if reason != "" {
			rep.Corrupt = append(rep.Corrupt, Corrupt{Digest: it.Digest, Reason: reason})
			if o.Quarantine != "" {
				if err := quarantine(ctx, s, it.Digest, o.Quarantine); err != nil {
					return rep, err
				}
				rep.Quarantined++
			}
		}
		if o.Progress != nil {
			o.Progress(rep.Bytes, total)
		}
	}
	return rep, nil
}

// check hashes one stored item; reason is "" when it is sound.
func check(s VerifyStore, d digest.Digest, size int64) (int64, string) {
	b, err := s.OpenContent(d)
	if err != nil {
		return 0, "missing file"
	}
	defer b.Close()
	v, err := oci.NewVerifier(d, -1) // the size is judged here, to say it in the reason
	if err != nil {
		return 0, fmt.Sprintf("not a digest: %v", err)
	}
	n, err := io.Copy(v, b.File)
	switch {
	case err != nil:
		return n, fmt.Sprintf("read error: %v", err)
	case n != size:
		return n, fmt.Sprintf("size %d, index says %d", n, size)
	case v.Verify() != nil:
		return n, "content does not hash to its digest"
	}
	return n, ""
}

// quarantine copies a corrupt item aside, then has the store remove it.
// A copy, not a rename, because the store need not be on this disk; a
// file already gone leaves nothing to copy, and the index entry still
// goes.
func quarantine(ctx context.Context, s VerifyStore, d digest.Digest, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if err := copyOut(ctx, s, d, filepath.Join(dir, d.Encoded())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine %s: %w", d, err)
	}
	if err := s.Remove(d); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// copyOut copies stored content d to the local file dst.
func copyOut(ctx context.Context, s VerifyStore, d digest.Digest, dst string) error {
	src, err := s.OpenContent(d)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	// An operator's Ctrl-C ends a long copy: closing the source fails the
	// read in progress.
	stop := context.AfterFunc(ctx, func() { src.File.Close() })
	defer stop()
	if _, err := io.Copy(f, src.File); err != nil {
		f.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return f.Close()
}
