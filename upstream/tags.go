package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharf-mirror/wharf/upstream/transport"
)

// maxTagsBody bounds a tags page (Docker Hub pages hold at most 10000 tags,
// about half a megabyte).
const maxTagsBody = 16 << 20

// Tags fetches one page of /v2/<repo>/tags/list: at most n tags (n <= 0:
// the upstream's default page) after last (""; from the start). more
// reports whether the upstream announced a next page (a Link header with
// rel="next"); the next call passes the last tag of this page.
func (c *Client) Tags(ctx context.Context, repo string, n int, last string) (tags []string, more bool, err error) {
	repo = c.Repository(repo)
	op := "GET tags " + repo
	if err := c.checkRepo(op, repo); err != nil {
		return nil, false, err
	}
	u := c.endpoint(repo, "tags", "list")
	q := u.Query()
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	if last != "" {
		q.Set("last", last)
	}
	u.RawQuery = q.Encode()
	resp, err := c.send(ctx, http.MethodGet, transport.KindTags, op, u, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTagsBody))
	c.metrics.UpstreamRead(c.name, int64(len(body)))
	if err != nil {
		return nil, false, c.failure(c.transportError(ctx, op, err))
	}
	var page struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, false, c.failure(&Error{Upstream: c.name, Op: op, Status: resp.StatusCode,
			Message: "tags list: " + err.Error(), Err: ErrUnavailable})
	}
	return page.Tags, hasNextLink(resp.Header.Values("Link")), nil
}

// hasNextLink reports whether a Link header (RFC 8288) has rel="next":
//
//	</v2/foo/tags/list?last=b&n=2>; rel="next"
func hasNextLink(values []string) bool {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			_, params, _ := strings.Cut(link, ">")
			for _, p := range strings.Split(params, ";") {
				name, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return true
					}
				}
			}
		}
	}
	return false
}
