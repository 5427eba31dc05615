package cache

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/cache/records"
)

// The keys the cluster's catalog and pins read stay in their repository:
// a mirrored/ key parses back to its repository alone, and the listing of
// a repository's mirrored tags (a pin without a tag) holds its own tags'
// records and never another repository's, whatever the names.
func TestMirroredKeysStayInTheirRepository(t *testing.T) {
	team := Repo{Upstream: "docker.io", Path: "team/a"}
	teamTag := mustKey(sharedMirrorKey(team, "v1", "application/x"))
	for _, repo := range []Repo{
		team,
		{"docker.io", "team/a/b"},
		{"docker.io", "team%2Fa"},
		{"docker.io/team", "a"},
		{"docker.io", "team/a/v1"},
		{"docker.io", "team/../../mirror"},
	} {
		key, err := sharedMirroredKey(repo)
		if err != nil {
			t.Fatalf("%q: %v", repo, err)
		}
		if err := records.CheckKey(key); err != nil || !strings.HasPrefix(key, sharedMirroredDir) {
			t.Errorf("%q: key %q (%v)", repo, key, err)
		}
		if got, ok := parseRepoKey(sharedMirroredDir, key); !ok || got != repo {
			t.Errorf("%q parses as %q (%v)", key, got, ok)
		}
		if _, ok := parseRepoKey(sharedReposDir, key); ok {
			t.Errorf("%q parses under %s", key, sharedReposDir)
		}
		prefix := mustKey(sharedMirrorRepoPrefix(repo))
		if own := mustKey(sharedMirrorKey(repo, "v1", "application/x")); !strings.HasPrefix(own, prefix) {
			t.Errorf("%q's tag record %q is not under its prefix %q", repo, own, prefix)
		}
		if repo != team && strings.HasPrefix(teamTag, prefix) {
			t.Errorf("%q's prefix %q holds %q's tag record %q", repo, prefix, team, teamTag)
		}
	}
	for _, bad := range []Repo{{"", "a"}, {"docker.io", ""}, {"..", "a"}} {
		if k, err := sharedMirroredKey(bad); err == nil {
			t.Errorf("%q: key %q built; want refused", bad, k)
		}
	}
}

// A replica writes a repository's mirrored/ record once per
// mirroredAgain, again after the write failed or was dropped, and its
// memory of them is bounded.
func TestMirroredRecordOncePerRepository(t *testing.T) {
	var m mirroredRepos
	repo := Repo{Upstream: "docker.io", Path: "team/a"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !m.first(repo, now) || m.first(repo, now.Add(mirroredAgain-time.Second)) {
		t.Fatal("want the first record of a repository written, the next not")
	}
	m.forget(repo) // the write failed
	if !m.first(repo, now) {
		t.Error("a failed write is not tried again")
	}
	if !m.first(repo, now.Add(mirroredAgain)) {
		t.Error("the record is not written again once mirroredAgain passed (gc may have deleted it)")
	}
	for i := range sharedPending + 1 {
		m.first(Repo{Upstream: "docker.io", Path: strings.Repeat("a", i+1)}, now)
	}
	if len(m.seen) > sharedPending {
		t.Errorf("%d repositories remembered, more than %d", len(m.seen), sharedPending)
	}
}

// countedLists counts the listings of prefix, and holds each until gate
// is closed.
type countedLists struct {
	Records
	prefix string
	n      *atomic.Int32
	gate   *chan struct{}
}

func (c countedLists) List(ctx context.Context, prefix string, fn func(string) error) error {
	if prefix == c.prefix {
		c.n.Add(1)
		select {
		case <-*c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.Records.List(ctx, prefix, fn)
}

// Concurrent catalog requests share one listing of the bucket, and its
// answer serves the next catalogFor; a request that ends stops waiting
// for a listing that hangs.
func TestCatalogListsTheBucketOncePerPeriod(t *testing.T) {
	bc := newBucketCluster(t)
	var n atomic.Int32
	gate := make(chan struct{})
	bc.records = func(r Records) Records {
		return countedLists{Records: r, prefix: sharedMirroredDir, n: &n, gate: &gate}
	}
	var skew atomic.Int64
	a := bc.replica(Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	ctx := context.Background()
	x := upRepo("team/x")
	if err := a.putShared(ctx, mustKey(sharedMirroredKey(x)), struct{}{}); err != nil {
		t.Fatal(err)
	}

	// A request that ends while the listing hangs answers without it.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	got, err := a.Catalog(short)
	cancel()
	if err != nil || len(got) != 0 {
		t.Errorf("catalog while the bucket hangs: %v, %v; want this replica's (none)", got, err)
	}

	const clients = 8
	results := make(chan []Repo, clients)
	for range clients {
		go func() {
			repos, err := a.Catalog(ctx)
			if err != nil {
				t.Error(err)
			}
			results <- repos
		}()
	}
	close(gate)
	for range clients {
		if repos := within(t, "a catalog", results); !slices.Equal(repos, []Repo{x}) {
			t.Errorf("catalog: %v, want %v", repos, []Repo{x})
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d concurrent catalogs listed the bucket %d times, want once", clients, got)
	}
	skew.Store(int64(catalogFor))
	if _, err := a.Catalog(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("the bucket listed %d times in all, want again once the listing is %s old", got, catalogFor)
	}
}
