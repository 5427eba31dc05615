package inspect_test

import (
	"testing"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
)

// TestStatsCountsSharedContentForEachRepo: the totals count each item
// once; a repository's size is what its tags reach, a blob it shares with
// another counted for each; repositories come largest first.
func TestStatsCountsSharedContentForEachRepo(t *testing.T) {
	c, _, _ := openStore(t)
	shared := randomBytes(1000)
	small := cache.Repo{Upstream: "example.com", Path: "team/small"}
	big := cache.Repo{Upstream: "example.com", Path: "team/big"}
	s1 := putImage(t, c, small, "v1", shared)
	b1 := putImage(t, c, big, "v1", shared, randomBytes(5000))
	b2 := putImage(t, c, big, "v2", randomBytes(300))

	st, err := inspect.StatsOf(c)
	if err != nil {
		t.Fatal(err)
	}
	bytes, items := c.Usage()
	if st.Bytes != bytes || st.Items != items || st.Manifests != 3 || st.Tags != 3 {
		t.Errorf("totals %d bytes, %d items, %d manifests, %d tags; want %d, %d, 3, 3", st.Bytes, st.Items, st.Manifests, st.Tags, bytes, items)
	}
	want := []inspect.RepoUsage{
		{Repo: big.String(), Bytes: b1.size + b2.size, Tags: 2, Pushed: 2},
		{Repo: small.String(), Bytes: s1.size, Tags: 1, Pushed: 1},
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
