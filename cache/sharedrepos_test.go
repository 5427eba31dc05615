package cache

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/records"
)

// announcer records the repositories it is told of.
type announcer struct {
	mu    sync.Mutex
	repos []Repo
}

func (a *announcer) AnnouncePushed(_ context.Context, repo Repo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.repos = append(a.repos, repo)
}

// listingAfterRepoRecord is Records whose Put of a repos/ record runs
// the replica's listing of repos/ as soon as it is written: its
// background listing landing between the push's records.
type listingAfterRepoRecord struct {
	Records
	c *Cache
}

func (l *listingAfterRepoRecord) Put(ctx context.Context, key string, data []byte, cond records.Cond) (string, error) {
	v, err := l.Records.Put(ctx, key, data, cond)
	if err == nil && strings.HasPrefix(key, sharedReposDir) {
		if err := l.c.listPushedRepos(ctx); err != nil {
			return "", err
		}
	}
	return v, err
}

// TestFirstPushAnnouncedWhenTheListingFindsItsRecord: the first push of
// a tag into a repository is announced to the peers even when this
// replica's own listing found the push's repos/ record before the tag
// was written.
func TestFirstPushAnnouncedWhenTheListingFindsItsRecord(t *testing.T) {
	bc := newBucketCluster(t)
	var wrap *listingAfterRepoRecord
	bc.records = func(r Records) Records {
		wrap = &listingAfterRepoRecord{Records: r}
		return wrap
	}
	ann := &announcer{}
	r := bc.replica(Options{Announcer: ann})
	wrap.c = r.Cache
	config, layer := randomBytes(100), randomBytes(4096)
	for _, b := range [][]byte{config, layer} {
		d := digest.FromBytes(b)
		if err := r.putBytes(context.Background(), d, b); err != nil {
			t.Fatal(err)
		}
		if err := r.recordContent(d, int64(len(b)), "", nil, true); err != nil {
			t.Fatal(err)
		}
	}
	m, p := pushedManifest(t, config, layer)
	if err := r.PushManifest(context.Background(), pushRepo, m, p, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	ann.mu.Lock()
	defer ann.mu.Unlock()
	if len(ann.repos) != 1 || ann.repos[0] != pushRepo {
		t.Errorf("announced %v, want %v once", ann.repos, pushRepo)
	}
}
