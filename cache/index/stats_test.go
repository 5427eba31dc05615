package index

import (
	"reflect"
	"testing"
)

// TestStatsAccumulate: each batch adds to what is stored, per
// repository, and the totals survive a restart (for `wharf du`).
func TestStatsAccumulate(t *testing.T) {
	const a, b = "docker.io/library/alpine", "ghcr.io/site/app"
	tests := []struct {
		name    string
		batches []map[string]RepoStats
		want    map[string]RepoStats
	}{
		{"none", nil, map[string]RepoStats{}},
		{"one batch", []map[string]RepoStats{{a: {Pulls: 3, Hits: 1}}}, map[string]RepoStats{a: {Pulls: 3, Hits: 1}}},
		{
			"batches add up",
			[]map[string]RepoStats{{a: {Pulls: 3, Hits: 1}}, {a: {Pulls: 2, Hits: 2}, b: {Pulls: 1}}, {}, {a: {Pulls: 1, Hits: 1}}},
			map[string]RepoStats{a: {Pulls: 6, Hits: 4}, b: {Pulls: 1}},
		},
		{"zero delta creates the row", []map[string]RepoStats{{b: {}}}, map[string]RepoStats{b: {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			x := mustOpen(t, dir)
			for _, batch := range tt.batches {
				if err := x.AddStats(batch); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := x.Stats(); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Stats: %+v, %v; want %+v", got, err, tt.want)
			}
			x = reopen(t, x, dir)
			if got, err := x.Stats(); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Stats after reopen: %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
