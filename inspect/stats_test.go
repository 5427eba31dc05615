package inspect_test

import (
	"context"
	"testing"

	"github.com/wharf-mirror/wharf/inspect"
	"github.com/wharf-mirror/wharf/warm"
)

// TestStatsCountsSharedContentForEachRepo: the totals count each item
// once; a repository's size is what its tags reach, a blob it shares with
// another counted for each; repositories come largest first, with their
// tags and their pulls, of which the hits the cache answered.
func TestStatsCountsSharedContentForEachRepo(t *testing.T) {
	mr := newMirror(t)
	c := mr.c
	shared := layer(t, 1000)
	s1 := mr.pull(t, "team/small", "v1", shared)
	b1 := mr.pull(t, "team/big", "v1", shared, layer(t, 5000))
	b2 := mr.pull(t, "team/big", "v2", layer(t, 300))
	if _, err := warm.Image(context.Background(), c, mr.repo("team/small"), "v1", nil, nil); err != nil { // a hit
		t.Fatal(err)
	}

	st, err := inspect.StatsOf(c)
	if err != nil {
		t.Fatal(err)
	}
	bytes, items := c.Usage()
	if st.Bytes != bytes || st.Items != items || st.Manifests != 3 || st.Tags != 3 || st.Pulls != 4 || st.Hits != 1 || st.HitRatio() != 0.25 {
		t.Errorf("totals %d bytes, %d items, %d manifests, %d tags, %d pulls, %d hits; want %d, %d, 3, 3, 4, 1",
			st.Bytes, st.Items, st.Manifests, st.Tags, st.Pulls, st.Hits, bytes, items)
	}
	want := []inspect.RepoUsage{
		{Repo: mr.repo("team/big").String(), Bytes: b1.size + b2.size, Tags: 2, Pulls: 2},
		{Repo: mr.repo("team/small").String(), Bytes: s1.size, Tags: 1, Pulls: 2, Hits: 1},
	}
	if len(st.Repos) != len(want) {
		t.Fatalf("repos %+v, want %+v", st.Repos, want)
	}
	for i := range want {
		if st.Repos[i] != want[i] {
			t.Errorf("repo %d: %+v, want %+v", i, st.Repos[i], want[i])
		}
	}
	if st.Bytes >= st.Repos[0].Bytes+st.Repos[1].Bytes {
		t.Errorf("the shared layer is counted once in the total: %d, repos %d + %d", st.Bytes, st.Repos[0].Bytes, st.Repos[1].Bytes)
	}
}

func TestHitRatio(t *testing.T) {
	for _, tc := range []struct {
		pulls, hits int64
		want        float64
	}{{0, 0, 0}, {4, 1, 0.25}, {3, 3, 1}} {
		if got := (inspect.Stats{Pulls: tc.pulls, Hits: tc.hits}).HitRatio(); got != tc.want {
			t.Errorf("%d hits of %d pulls: ratio %v, want %v", tc.hits, tc.pulls, got, tc.want)
		}
	}
}
