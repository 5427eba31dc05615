package peer

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wharf-mirror/wharf/cache"
)

// A replica that takes the first push into a repository tells every
// other live replica before it acknowledges the push, so that they read
// the repository's pushed tags through from then on (cache's
// sharedrepos.go); a replica it does not reach learns it from its next
// listing of the bucket.

// announceTimeout bounds the announcement to each peer: a push waits on
// it, and a peer that does not answer in time learns within the listing
// period anyway.
const announceTimeout = 2 * time.Second

var _ cache.Announcer = (*Client)(nil)

// AnnouncePushed tells every live peer, in parallel, that repo has pushed
// tags, and returns once each has answered or timed out
// (cache.Announcer). A peer that fails is logged, not marked down: the
// health check judges it.
func (c *Client) AnnouncePushed(ctx context.Context, repo cache.Repo) {
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range c.opts.Cluster.Members() {
		if m.Self || !m.Up {
			continue
		}
		wg.Go(func() {
			if err := c.announce(ctx, m.Addr, repo); err != nil {
				c.opts.Metrics.PeerRequest("announce_failed")
				c.opts.Logger.WithError(err).WithField("peer", m.Addr).WithField("repo", repo.String()).
					Warn("peer: announcing a push; it learns it from its next listing")
			}
		})
	}
	wg.Wait()
}

func (c *Client) announce(ctx context.Context, peer string, repo cache.Repo) error {
	u := url.URL{Scheme: "http", Host: peer, Path: pushedPath, RawQuery: repoQuery(repo.Upstream, repo.Path).Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.send)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("announce a push into %s to %s: status %d", repo, peer, resp.StatusCode)
	}
	return nil
}

// pushed takes another replica's announcement of a push into a
// repository.
func (s *Server) pushed(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	repo, err := parseRepo(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	s.opts.Store.NotePushed(repo)
	w.WriteHeader(http.StatusNoContent)
}
