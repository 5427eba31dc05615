package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/wharf-mirror/wharf/cache"
)

// tags serves GET /v2/<name>/tags/list with n/last pagination.
func (s *server) tags(w http.ResponseWriter, r *http.Request) error {
	v := vars(r)
	repo, err := s.repoOf(r)
	if err != nil {
		return err
	}
	infoFrom(r.Context()).repo = repo.String()
	n, last, err := pagination(r)
	if err != nil {
		return err
	}
	tags, more, err := s.opts.Store.Tags(r.Context(), repo, n, last)
	if err != nil {
		return err
	}
	if tags == nil {
		tags = []string{}
	}
	if more && len(tags) > 0 {
		setNextLink(w, r, tags[len(tags)-1], n)
	}
	return writeJSON(w, r, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{v["name"], tags})
}

// catalog serves GET /v2/_catalog: the repositories this mirror holds that
// the client may read, as clients name them: the default upstream's by
// path, every other upstream's with its registry prefix.
func (s *server) catalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pagination(r)
	if err != nil {
		return err
	}
	repos, err := s.opts.Store.Catalog(r.Context())
	if err != nil {
		return err
	}
	names := make([]string, 0, len(repos))
	for _, repo := range repos {
		if name := ClientName(s.upstreams, repo); name != "" && s.mayRead(r, repo) {
			names = append(names, name)
		}
	}
	slices.Sort(names) // prefixed names interleave with the default's
	page, more := cache.Page(names, n, last)
	if more && len(page) > 0 {
		setNextLink(w, r, page[len(page)-1], n)
	}
	return writeJSON(w, r, struct {
		Repositories []string `json:"repositories"`
	}{page})
}

// pagination reads n and last; n is -1 when absent.
func pagination(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if s := q.Get("n"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			return 0, "", fmt.Errorf("n=%q: %w", s, errPaginationNumber)
		}
	}
	return n, q.Get("last"), nil
}

func setNextLink(w http.ResponseWriter, r *http.Request, last string, n int) {
	q := url.Values{}
	if n >= 0 {
		q.Set("n", strconv.Itoa(n))
	}
	q.Set("last", last)
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(body)
	return err
}
