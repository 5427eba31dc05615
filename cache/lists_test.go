package cache

import (
	"slices"
	"testing"
)

// Page is the pagination of every tag list wharf answers from what it holds
// (the upstream's own pages pass through untouched): the distribution-spec's
// n and last, with last not necessarily one of the entries.
func TestPage(t *testing.T) {
	sorted := []string{"1.0", "1.1", "2.0", "latest"}
	for _, tc := range []struct {
		name string
		n    int
		last string
		want []string
		more bool
	}{
		{"all", -1, "", sorted, false},
		{"n larger than the list", 10, "", sorted, false},
		{"n equal to the list", 4, "", sorted, false},
		{"first page", 2, "", []string{"1.0", "1.1"}, true},
		{"next page after an entry", 2, "1.1", []string{"2.0", "latest"}, false},
		{"last names no entry: starts after where it would sort", 1, "1.5", []string{"2.0"}, true},
		{"last before every entry", -1, "0", sorted, false},
		{"last is the final entry", 5, "latest", []string{}, false},
		{"last after every entry", -1, "zzz", []string{}, false},
		{"n zero", 0, "", []string{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, more := Page(sorted, tc.n, tc.last)
			if !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("Page(n=%d, last=%q) = %v, %v; want %v, %v", tc.n, tc.last, got, more, tc.want, tc.more)
			}
		})
	}
	if _, more := Page(nil, 0, ""); more {
		t.Error("an empty list has no more entries, even asked for none")
	}
}
