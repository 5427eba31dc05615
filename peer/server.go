package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/metrics"
)

// Store is what Server consumes of *cache.Cache: its read path, so that a
// peer's miss joins the one fill or fetch this replica runs for it.
type Store interface {
	Blob(ctx context.Context, repo cache.Repo, d digest.Digest) (*cache.Blob, error)
	StatBlob(ctx context.Context, repo cache.Repo, d digest.Digest) (int64, error)
	Manifest(ctx context.Context, repo cache.Repo, ref string, accept []string) (*cache.Manifest, error)
	Tags(ctx context.Context, repo cache.Repo, n int, last string) ([]string, bool, error)
	// NotePushed: another replica announced a push into repo.
	NotePushed(repo cache.Repo)
}

// ServerOptions configure a Server.
type ServerOptions struct {
	Store   Store
	Secret  string // the cluster secret (one per line: any is accepted); required
	Metrics *metrics.Metrics
	Logger  logrus.FieldLogger
	Now     func() time.Time // clock for Age; default time.Now
}

// Server is the peer listener's handler: the health check at
// cluster.HealthPath and the read routes under Prefix, all behind the
// cluster secret. Clients never reach it: it has a port of its own.
type Server struct {
	opts ServerOptions
	mux  *http.ServeMux
}

// NewServer builds the peer listener's handler.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("peer: ServerOptions.Store is required")
	}
	if cluster.SendSecret(opts.Secret) == "" {
		return nil, errors.New("peer: ServerOptions.Secret is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.Handle(cluster.HealthPath, cluster.HealthHandler(opts.Secret))
	s.mux.Handle(Prefix, cluster.Authenticate(opts.Secret, http.HandlerFunc(s.serve)))
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// serve answers one authenticated peer request. It is served with the
// registry as the origin (cache.DirectOrigin): a request a peer sent is
// never sent on to another peer, whatever this replica thinks of who owns
// the key, so that replicas whose views differ for a moment cannot loop.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pushedPath {
		s.pushed(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := cache.DirectOrigin(r.Context())
	var err error
	var kind string
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, blobsPath):
		kind, err = "blob", s.blob(ctx, w, r, strings.TrimPrefix(p, blobsPath))
	case strings.HasPrefix(p, manifestsPath):
		kind, err = "manifest", s.manifest(ctx, w, r, strings.TrimPrefix(p, manifestsPath))
	case p == tagsPath && r.Method == http.MethodGet:
		kind, err = "tags", s.tags(ctx, w, r)
	default:
		http.NotFound(w, r)
		return
	}
	s.opts.Metrics.PeerServed(kind)
	if err != nil {
		s.opts.Logger.WithError(err).WithField("path", r.URL.Path).Debug("peer request failed")
		writeError(w, err)
	}
}

// blob serves a blob, a Range "bytes=<n>-" honoured (a peer resuming a
// fill). A blob still filling is streamed as it arrives; a fill that fails
// after the headers went out aborts the connection, so the asker's own
// digest check fails and it resumes elsewhere.
func (s *Server) blob(ctx context.Context, w http.ResponseWriter, r *http.Request, ds string) error {
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	repo, err := parseRepo(r.URL.Query())
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	if r.Method == http.MethodHead {
		size, err := s.opts.Store.StatBlob(ctx, repo, d)
		if err != nil {
			return err
		}
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		return nil
	}
	b, err := s.opts.Store.Blob(ctx, repo, d)
	if err != nil {
		return err
	}
	defer b.Close()
	if b.File != nil {
		http.ServeContent(w, r, "", b.ModTime, b.File)
		return nil
	}
	start, status := int64(0), http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" {
		start, err = openRange(rng)
		if err != nil {
			return err
		}
		if b.Size >= 0 && start >= b.Size {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", b.Size))
			http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return nil
		}
		status = http.StatusPartialContent
		if b.Size >= 0 {
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, b.Size-1, b.Size))
		} else {
			h.Set("Content-Range", fmt.Sprintf("bytes %d-*/*", start))
		}
	}
	if b.Size >= 0 {
		h.Set("Content-Length", strconv.FormatInt(b.Size-start, 10))
	}
	w.WriteHeader(status)
	if _, err := io.Copy(flushWriter{w}, b.Fill.Reader(ctx, start)); err != nil {
		s.opts.Logger.WithError(err).WithField("digest", d).Debug("peer blob stream ended early")
		panic(http.ErrAbortHandler)
	}
	return nil
}

// openRange reads the one form of Range a peer sends: "bytes=<n>-".
func openRange(h string) (int64, error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	first, rest, ok2 := strings.Cut(spec, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	if !ok || !ok2 || rest != "" || err != nil || n < 0 {
		return 0, fmt.Errorf("%w: range %.64q", errInvalid, h)
	}
	return n, nil
}

// flushWriter flushes after every write, so that a peer gets a growing
// fill's bytes as the registry sends them.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// manifest serves a manifest by tag or digest, as the cache answers the
// Accept values the peer passed on. For a tag it sends Age: the seconds
// since the tag's record was checked against the registry, so the
// asker's record expires with this one.
func (s *Server) manifest(ctx context.Context, w http.ResponseWriter, r *http.Request, ref string) error {
	ref, err := parseRef(ref)
	if err != nil {
		return err
	}
	repo, err := parseRepo(r.URL.Query())
	if err != nil {
		return err
	}
	m, err := s.opts.Store.Manifest(ctx, repo, ref, r.Header.Values("Accept"))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.Descriptor.MediaType)
	h.Set("Docker-Content-Digest", m.Descriptor.Digest.String())
	h.Set("Content-Length", strconv.Itoa(len(m.Body)))
	if !m.Checked.IsZero() {
		age := max(s.opts.Now().Sub(m.Checked), 0)
		h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Body)
	}
	return nil
}

// tagList is the tag list's body.
type tagList struct {
	Tags []string `json:"tags"`
	More bool     `json:"more"`
}

func (s *Server) tags(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	repo, err := parseRepo(q)
	if err != nil {
		return err
	}
	n, last, err := parseTagsQuery(q)
	if err != nil {
		return err
	}
	tags, more, err := s.opts.Store.Tags(ctx, repo, n, last)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(tagList{Tags: tags, More: more})
}
