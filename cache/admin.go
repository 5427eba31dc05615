package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/oci"
)

// The operator's tools (wharf verify, gc, du) run on a stopped store:
// Badger allows one process at a time.

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

// Verify re-hashes every stored item. With repair, corrupt ones are moved
// to quarantine/ and forgotten, so the next pull fetches them again.
// progress, if set, is called after each item with bytes done and total.
func (c *Cache) Verify(ctx context.Context, repair bool, progress func(done, total int64)) (VerifyReport, error) {
	var rep VerifyReport
	type item struct {
		d    digest.Digest
		size int64
	}
	var items []item
	var total int64
	if err := c.index.Blobs(func(d digest.Digest, m index.BlobMeta) error {
		items = append(items, item{d, m.Size})
		total += m.Size
		return nil
	}); err != nil {
		return rep, err
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		n, reason := c.check(ctx, it.d, it.size)
		rep.Checked++
		rep.Bytes += n
		if reason != "" {
			rep.Corrupt = append(rep.Corrupt, Corrupt{Digest: it.d, Reason: reason})
			if repair {
				if err := c.quarantine(ctx, it.d, it.size); err != nil {
					return rep, err
				}
				rep.Quarantined++
			}
		}
		if progress != nil {
			progress(rep.Bytes, total)
		}
	}
	return rep, nil
}

// check hashes one stored item; reason is "" when it is sound.
func (c *Cache) check(ctx context.Context, d digest.Digest, size int64) (int64, string) {
	f, err := c.store.Open(ctx, d)
	if err != nil {
		return 0, "missing file"
	}
	defer f.Close()
	v, err := oci.NewVerifier(d, -1) // the size is judged here, to say it in the reason
	if err != nil {
		return 0, fmt.Sprintf("not a digest: %v", err)
	}
	n, err := io.Copy(v, f)
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

// quarantine copies a corrupt item aside (for an operator to inspect),
// then removes it through the one locked removal path eviction and
// deletes use, so the usage totals, their metrics, the hot manifests and
// links and the access log all forget it with the index. A copy, not a
// rename, because the store need not be on this disk.
func (c *Cache) quarantine(ctx context.Context, d digest.Digest, size int64) error {
	dir := filepath.Join(c.opts.Dir, "quarantine")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if err := c.copyOut(ctx, d, filepath.Join(dir, d.Encoded())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quarantine %s: %w", d, err)
	}
	c.contentMu.Lock()
	defer c.contentMu.Unlock()
	if err := c.removeLocked(d, size); err != nil {
		return fmt.Errorf("quarantine %s: %w", d, err)
	}
	return nil
}

// copyOut copies stored content d to the local file dst.
func (c *Cache) copyOut(ctx context.Context, d digest.Digest, dst string) error {
	src, err := c.store.Open(ctx, d)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, ctxReader{ctx, src}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// GCReport is what GC removed (or would remove, on a dry run).
type GCReport struct {
	Items int
	Bytes int64
}

// GC removes stored content no tag reaches: not named by a tag (cached or
// pushed), not pinned, and not referenced by anything that is. Blobs
// fetched by digest alone, and manifests of tags that moved on, go.
func (c *Cache) GC(dryRun bool) (GCReport, error) {
	c.evictRun.Lock()
	defer c.evictRun.Unlock()
	var rep GCReport
	plan, err := c.planEviction()
	if err != nil {
		return rep, err
	}
	reach := map[digest.Digest]bool{}
	var mark func(d digest.Digest)
	mark = func(d digest.Digest) {
		if reach[d] {
			return
		}
		reach[d] = true
		if cd := plan[d]; cd != nil {
			for _, r := range cd.meta.Refs {
				mark(r)
			}
		}
	}
	repos, err := c.index.Repositories()
	if err != nil {
		return rep, err
	}
	for _, repo := range repos {
		recs, err := c.index.TagRecords(repo, "")
		if err != nil {
			return rep, err
		}
		for _, r := range recs {
			mark(r.Digest)
		}
	}
	for d, cd := range plan {
		if cd.keep {
			mark(d)
		}
	}
	for d, cd := range plan {
		if reach[d] {
			continue
		}
		rep.Items++
		rep.Bytes += cd.meta.Size
		if !dryRun && !c.evictOne(d, cd.meta.Size) {
			rep.Items--
			rep.Bytes -= cd.meta.Size
		}
	}
	return rep, nil
}

// Stats describes what the store holds.
type Stats struct {
	Bytes     int64
	Items     int64 // blobs and manifests
	Manifests int64
	Tags      int64 // distinct repo:tag names cached or pushed
	Pulls     int64 // manifest requests since the store was created
	Hits      int64 // of which the cache answered
	Repos     []RepoUsage
}

// RepoUsage is one repository's share.
type RepoUsage struct {
	Repo  string
	Bytes int64 // content its tags reach (shared blobs count for each repo)
	Tags  int
	// Pushed counts the tags pushed to wharf itself (not mirrored): a
	// repository with any is the site's own, which an operator backs up
	// and eviction keeps.
	Pushed int
	Pulls  int64
	Hits   int64
}

// HitRatio is Hits/Pulls, 0 when nothing was pulled.
func (s Stats) HitRatio() float64 {
	if s.Pulls == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Pulls)
}

// Stats computes what the store holds, by repository.
func (c *Cache) Stats() (Stats, error) {
	c.flushAccess()
	var st Stats
	plan, err := c.planEviction()
	if err != nil {
		return st, err
	}
	for _, cd := range plan {
		st.Bytes += cd.meta.Size
		st.Items++
		if cd.meta.MediaType != "" {
			st.Manifests++
		}
	}
	counters, err := c.index.Stats()
	if err != nil {
		return st, err
	}
	repos, err := c.index.Repositories()
	if err != nil {
		return st, err
	}
	for _, repo := range repos {
		u := RepoUsage{Repo: repo, Pulls: counters[repo].Pulls, Hits: counters[repo].Hits}
		tags, _ := c.index.Tags(repo)
		local, _ := c.index.LocalTags(repo)
		u.Tags, u.Pushed = len(tags)+len(local), len(local)
		recs, err := c.index.TagRecords(repo, "")
		if err != nil {
			return st, err
		}
		seen := map[digest.Digest]bool{}
		var add func(d digest.Digest)
		add = func(d digest.Digest) {
			cd := plan[d]
			if cd == nil || seen[d] {
				return
			}
			seen[d] = true
			u.Bytes += cd.meta.Size
			for _, r := range cd.meta.Refs {
				add(r)
			}
		}
		for _, r := range recs {
			add(r.Digest)
		}
		st.Tags += int64(u.Tags)
		st.Pulls += u.Pulls
		st.Hits += u.Hits
		st.Repos = append(st.Repos, u)
	}
	sort.Slice(st.Repos, func(i, j int) bool { return st.Repos[i].Bytes > st.Repos[j].Bytes })
	return st, nil
}
