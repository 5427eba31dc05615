package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/push"
)

// The write path's capabilities. A Store that has them (push.Writer)
// gets the push, delete and referrers routes; one that has not serves
// reads only, and those requests get 404 or 405 as before.

// Uploader accepts blob uploads. client names who opens a session (see
// uploadClient), for the store's caps on sessions open per client.
type Uploader interface {
	StartUpload(ctx context.Context, repo cache.Repo, client string) (push.UploadStatus, error)
	Upload(ctx context.Context, repo cache.Repo, id string) (push.UploadStatus, error)
	WriteUpload(ctx context.Context, repo cache.Repo, id string, c push.Chunk) (push.UploadStatus, error)
	FinishUpload(ctx context.Context, repo cache.Repo, id string, c push.Chunk, d digest.Digest) error
	CancelUpload(ctx context.Context, repo cache.Repo, id string) error
	PutBlob(ctx context.Context, repo cache.Repo, client string, c push.Chunk, d digest.Digest) error
	Mount(ctx context.Context, repo cache.Repo, from *cache.Repo, anyPushed bool, d digest.Digest) (bool, error)
}

// ManifestPusher accepts manifests and deletes.
type ManifestPusher interface {
	PutManifest(ctx context.Context, repo cache.Repo, ref, mediaType string, body io.Reader, tags []string) (*push.PushedManifest, error)
	DeleteManifest(ctx context.Context, repo cache.Repo, d digest.Digest) error
	DeleteTag(ctx context.Context, repo cache.Repo, tag string) error
	DeleteBlob(ctx context.Context, repo cache.Repo, d digest.Digest) error
}

// ReferrerLister answers the OCI 1.1 referrers API.
type ReferrerLister interface {
	Referrers(ctx context.Context, repo cache.Repo, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error)
}

// putManifest serves PUT /v2/<name>/manifests/<tag|digest>.
func (s *server) putManifest(w http.ResponseWriter, r *http.Request) error {
	repo, ref, err := s.target(r, "reference")
	if err != nil {
		return err
	}
	v := vars(r)
	if r.ContentLength > oci.MaxManifestSize {
		return fmt.Errorf("manifest of %d bytes: %w", r.ContentLength, cache.ErrTooLarge)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("Content-Type %q: %w", r.Header.Get("Content-Type"), cache.ErrManifestInvalid)
	}
	tags := r.URL.Query()["tag"]
	m, err := s.opts.Store.(ManifestPusher).PutManifest(r.Context(), repo, ref, mt, r.Body, tags)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+v["name"]+"/manifests/"+m.Descriptor.Digest.String())
	h.Set("Docker-Content-Digest", m.Descriptor.Digest.String())
	if m.Subject != "" {
		h.Set("OCI-Subject", m.Subject.String())
	}
	if len(tags) > 0 {
		h.Set("OCI-Tag", strings.Join(tags, ","))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteManifest serves DELETE /v2/<name>/manifests/<digest|tag>.
func (s *server) deleteManifest(w http.ResponseWriter, r *http.Request) error {
	repo, ref, err := s.target(r, "reference")
	if err != nil {
		return err
	}
	p := s.opts.Store.(ManifestPusher)
	if d, perr := digest.Parse(ref); perr == nil {
		err = p.DeleteManifest(r.Context(), repo, d)
	} else {
		err = p.DeleteTag(r.Context(), repo, ref)
	}
	if err != nil {
		return err
	}
	return accepted(w)
}

// deleteBlob serves DELETE /v2/<name>/blobs/<digest>.
func (s *server) deleteBlob(w http.ResponseWriter, r *http.Request) error {
	repo, d, err := s.digestTarget(r)
	if err != nil {
		return err
	}
	if err := s.opts.Store.(ManifestPusher).DeleteBlob(r.Context(), repo, d); err != nil {
		return err
	}
	return accepted(w)
}

func accepted(w http.ResponseWriter) error {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// referrers serves GET /v2/<name>/referrers/<digest>: an OCI index of the
// manifests whose subject is the digest, filtered by ?artifactType=.
func (s *server) referrers(w http.ResponseWriter, r *http.Request) error {
	repo, d, err := s.digestTarget(r)
	if err != nil {
		return err
	}
	at := r.URL.Query().Get("artifactType")
	list, err := s.opts.Store.(ReferrerLister).Referrers(r.Context(), repo, d, at)
	if err != nil {
		return err
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if list == nil {
		list = []ocispec.Descriptor{}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: list}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode referrers: %w", err)
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, err = w.Write(body)
	return err
}

// uploadLocation is where a client continues an upload.
func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// setUploadHeaders tells the client where a session stands: Range is the
// span received, inclusive, "0-0" for none (as distribution answers).
func setUploadHeaders(w http.ResponseWriter, name string, st push.UploadStatus) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, st.ID))
	h.Set("Docker-Upload-UUID", st.ID)
	h.Set("Range", "0-"+strconv.FormatInt(max(st.Size-1, 0), 10))
	h.Set("Content-Length", "0")
}
