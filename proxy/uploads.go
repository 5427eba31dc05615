package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/push"
)

// startUpload serves POST /v2/<name>/blobs/uploads/: a cross-repository
// mount (?mount=, with or without from=), a monolithic upload (?digest=
// with the blob as the body), or a new session.
func (s *server) startUpload(w http.ResponseWriter, r *http.Request) error {
	v := vars(r)
	repo, err := s.repoOf(r)
	if err != nil {
		return err
	}
	infoFrom(r.Context()).repo = repo.String()
	up := s.opts.Store.(Uploader)
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		// A mount that cannot be done (a bad digest, a blob not here) is
		// an ordinary upload, as the spec says.
		if d, err := digest.Parse(m); err == nil {
			// A client that may read every repository may mount a
			// blob pushed anywhere without saying where from.
			ok, err := up.Mount(r.Context(), repo, s.mountSource(r), s.auth.readsAll(infoFrom(r.Context()).user), d)
			if err != nil {
				return err
			}
			if ok {
				return blobCreated(w, v["name"], d)
			}
		}
	}
	if ds, ok := q["digest"]; ok {
		d, err := digest.Parse(first(ds))
		if err != nil {
			return errDigest(first(ds), err)
		}
		if err := up.PutBlob(r.Context(), repo, uploadClient(r), chunkOf(r, -1, -1), d); err != nil {
			return err
		}
		return blobCreated(w, v["name"], d)
	}
	st, err := up.StartUpload(r.Context(), repo, uploadClient(r))
	if err != nil {
		return err
	}
	setUploadHeaders(w, v["name"], st)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// uploadClient names who opens an upload session, for the store's cap per
// client: the user, or for a client without credentials its address. Not
// one bucket for every anonymous client: without --htpasswd every client
// is anonymous, and a whole site's CI would share one client's cap. An
// attacker with many addresses still meets the global cap. Behind a
// reverse proxy, anonymous clients share the proxy's address (forwarding
// headers are not trusted: any client can write them).
func uploadClient(r *http.Request) string {
	if u := infoFrom(r.Context()).user; u != "" {
		return "user:" + u
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "anonymous@" + host
}

// uploadStatus serves GET /v2/<name>/blobs/uploads/<id>.
func (s *server) uploadStatus(w http.ResponseWriter, r *http.Request) error {
	v := vars(r)
	repo, err := s.repoOf(r)
	if err != nil {
		return err
	}
	infoFrom(r.Context()).repo = repo.String()
	st, err := s.opts.Store.(Uploader).Upload(r.Context(), repo, v["uuid"])
	if err != nil {
		return err
	}
	setUploadHeaders(w, v["name"], st)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// patchUpload serves PATCH /v2/<name>/blobs/uploads/<id>: a chunk, placed
// by Content-Range (which must continue the upload), or streamed whole.
func (s *server) patchUpload(w http.ResponseWriter, r *http.Request) error {
	v := vars(r)
	repo, err := s.repoOf(r)
	if err != nil {
		return err
	}
	infoFrom(r.Context()).repo = repo.String()
	start, end, err := contentRange(r.Header.Get("Content-Range"))
	if err != nil {
		return err
	}
	st, err := s.opts.Store.(Uploader).WriteUpload(r.Context(), repo, v["uuid"], chunkOf(r, start, end))
	if err != nil {
		return s.uploadError(w, r, err)
	}
	setUploadHeaders(w, v["name"], st)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// putUpload serves PUT /v2/<name>/blobs/uploads/<id>?digest=: the last
// chunk (possibly none) and the end of the upload.
func (s *server) putUpload(w http.ResponseWriter, r *http.Request) error {
	v := vars(r)
	repo, err := s.repoOf(r)
	if err != nil {
		return err
	}
	infoFrom(r.Context()).repo = repo.String()
	raw := r.URL.Query().Get("digest")
	d, err := digest.Parse(raw)
	if err != nil {
		return errDigest(raw, err)
	}
	start, end, err := contentRange(r.Header.Get("Content-Range"))
	if err != nil {
		return err
	}
	up := s.opts.Store.(Uploader)
	if err := up.FinishUpload(r.Context(), repo, v["uuid"], chunkOf(r, start, end), d); err != nil {
		return s.uploadError(w, r, err)
	}
	return blobCreated(w, v["name"], d)
}

// cancelUpload serves DELETE /v2/<name>/blobs/uploads/<id>.
func (s *server) cancelUpload(w http.ResponseWriter, r *http.Request) error {
	v := vars(r)
	repo, err := s.repoOf(r)
	if err != nil {
		return err
	}
	infoFrom(r.Context()).repo = repo.String()
	if err := s.opts.Store.(Uploader).CancelUpload(r.Context(), repo, v["uuid"]); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadError adds to a chunk refused for its place the headers a client
// needs to continue: where the upload is, and what it holds.
func (s *server) uploadError(w http.ResponseWriter, r *http.Request, err error) error {
	var re *push.RangeError
	if errors.As(err, &re) {
		setUploadHeaders(w, vars(r)["name"], push.UploadStatus{ID: vars(r)["uuid"], Size: re.Size})
		w.Header().Del("Content-Length")
	}
	return err
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) error {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// chunkOf describes r's body for the store.
func chunkOf(r *http.Request, start, end int64) push.Chunk {
	return push.Chunk{Body: r.Body, Length: r.ContentLength, Start: start, End: end}
}

// contentRange reads a chunk's Content-Range: "<start>-<end>" as the
// distribution spec writes it, also with a "bytes " or "bytes=" prefix and
// an optional "/<total>". -1, -1 when absent.
func contentRange(v string) (start, end int64, err error) {
	if v == "" {
		return -1, -1, nil
	}
	s := strings.TrimSpace(v)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes"), "=")
	s = strings.TrimSpace(s)
	s, _, _ = strings.Cut(s, "/")
	a, b, ok := strings.Cut(s, "-")
	if ok {
		start, err = strconv.ParseInt(a, 10, 64)
	}
	if ok && err == nil {
		end, err = strconv.ParseInt(b, 10, 64)
	}
	if !ok || err != nil || start < 0 || end < start-1 {
		return 0, 0, fmt.Errorf("Content-Range %q: %w", v, push.ErrUploadInvalid)
	}
	return start, end, nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
