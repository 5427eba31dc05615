package upstream_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func TestTagsPagination(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 256, upstreamtest.OCIManifest)
	all := []string{"a", "b", "c", "d", "e"}
	for _, tag := range all {
		upstreamtest.Push(t, reg, "tagged/repo:"+tag, img)
	}
	c := newClient(t, reg.URL, nil)

	t.Run("all at once", func(t *testing.T) {
		tags, more, err := c.Tags(t.Context(), "tagged/repo", 0, "")
		if err != nil || more || !slices.Equal(tags, all) {
			t.Errorf("Tags = %v, %v, %v; want %v, false", tags, more, err, all)
		}
	})
	t.Run("pages of 2", func(t *testing.T) {
		var got []string
		last := ""
		for page := 0; ; page++ {
			tags, more, err := c.Tags(t.Context(), "tagged/repo", 2, last)
			if err != nil {
				t.Fatalf("Tags page %d: %v", page, err)
			}
			if len(tags) > 2 {
				t.Fatalf("page %d has %d tags, want at most 2", page, len(tags))
			}
			got = append(got, tags...)
			if !more {
				break
			}
			if page > len(all) {
				t.Fatal("the upstream keeps announcing more pages")
			}
			last = tags[len(tags)-1]
		}
		if !slices.Equal(got, all) {
			t.Errorf("pages gave %v, want %v", got, all)
		}
	})
	t.Run("after the last", func(t *testing.T) {
		tags, more, err := c.Tags(t.Context(), "tagged/repo", 2, "e")
		if err != nil || more || len(tags) != 0 {
			t.Errorf("Tags after e = %v, %v, %v; want none", tags, more, err)
		}
	})
	t.Run("unknown repository", func(t *testing.T) {
		_, _, err := c.Tags(t.Context(), "no/such", 0, "")
		var ue *upstream.Error
		if !errors.Is(err, upstream.ErrNotFound) || !errors.As(err, &ue) || ue.Code != "NAME_UNKNOWN" {
			t.Errorf("Tags error = %v, want ErrNotFound NAME_UNKNOWN", err)
		}
	})
}
