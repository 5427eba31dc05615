package proxy

import (
	"net/http"
	"strconv"
	"strings"
)

// manifest serves GET and HEAD /v2/<name>/manifests/<tag|digest>.
func (s *server) manifest(w http.ResponseWriter, r *http.Request) error {
	repo, ref, err := s.target(r, "reference")
	if err != nil {
		return err
	}
	info := infoFrom(r.Context())
	m, err := s.opts.Store.Manifest(r.Context(), repo, ref, r.Header.Values("Accept"))
	if err != nil {
		return err
	}
	info.source = "cache"
	if m.Fetched {
		info.source = "upstream"
	}
	switch {
	case s.opts.Prefetch == nil:
	case r.Method == http.MethodHead:
		// Remembered before the answer, for the GET that may follow it at
		// once; a digest poller's HEAD alone prefetches nothing.
		s.opts.Prefetch.Arm(repo, m)
	default:
		defer func() {
			// After the answer, sent: Image reads the manifest, which
			// the client need not wait for.
			_ = http.NewResponseController(w).Flush() // a client gone: nothing to tell it
			s.opts.Prefetch.Image(repo, m)
		}()
	}
	etag := `"` + m.Descriptor.Digest.String() + `"`
	h := w.Header()
	h.Set("Docker-Content-Digest", m.Descriptor.Digest.String())
	h.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", m.Descriptor.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err = w.Write(m.Body)
	return err
}

// etagMatches implements If-None-Match's weak comparison for a list of tags.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func errDigest(ref string, err error) error {
	return &wrapped{msg: quoted(ref) + ": " + err.Error(), err: errDigestInvalid}
}

// wrapped carries a detailed message while matching a sentinel.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }
