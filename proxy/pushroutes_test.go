package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/push"
)

// pushRecorder is a recorder with the write path's capabilities: it
// records what the router asked for and answers "unknown".
type pushRecorder struct{ recorder }

func (p *pushRecorder) note(kind string, repo cache.Repo, ref string) {
	p.kind, p.repo, p.ref = kind, repo.Path, ref
}

// The write path's store and this recorder both have the capabilities; a
// signature drifting apart is a compile error, not a route gone missing.
var (
	_ Store          = (*push.Writer)(nil)
	_ Uploader       = (*push.Writer)(nil)
	_ ManifestPusher = (*push.Writer)(nil)
	_ ReferrerLister = (*push.Writer)(nil)
	_ Uploader       = (*pushRecorder)(nil)
)

func (p *pushRecorder) StartUpload(_ context.Context, repo cache.Repo, _ string) (push.UploadStatus, error) {
	p.note("start", repo, "")
	return push.UploadStatus{ID: "00000000-0000-0000-0000-000000000000"}, nil
}
func (p *pushRecorder) Upload(_ context.Context, repo cache.Repo, id string) (push.UploadStatus, error) {
	p.note("status", repo, id)
	return push.UploadStatus{}, push.ErrUploadUnknown
}
func (p *pushRecorder) WriteUpload(_ context.Context, repo cache.Repo, id string, c push.Chunk) (push.UploadStatus, error) {
	p.note("patch", repo, id)
	return push.UploadStatus{}, &push.RangeError{Size: 5}
}
func (p *pushRecorder) FinishUpload(_ context.Context, repo cache.Repo, id string, _ push.Chunk, _ digest.Digest) error {
	p.note("put", repo, id)
	return push.ErrUploadUnknown
}
func (p *pushRecorder) CancelUpload(_ context.Context, repo cache.Repo, id string) error {
	p.note("cancel", repo, id)
	return push.ErrUploadUnknown
}
func (p *pushRecorder) PutBlob(_ context.Context, repo cache.Repo, _ string, _ push.Chunk, d digest.Digest) error {
	p.note("monolithic", repo, d.String())
	return cache.ErrDigestInvalid
}
func (p *pushRecorder) Mount(_ context.Context, repo cache.Repo, _ *cache.Repo, _ bool, d digest.Digest) (bool, error) {
	p.note("mount", repo, d.String())
	return true, nil
}
func (p *pushRecorder) PutManifest(_ context.Context, repo cache.Repo, ref, _ string, body io.Reader, _ []string) (*push.PushedManifest, error) {
	p.note("put manifest", repo, ref)
	return nil, cache.ErrManifestBlobUnknown
}
func (p *pushRecorder) DeleteManifest(_ context.Context, repo cache.Repo, d digest.Digest) error {
	p.note("delete manifest", repo, d.String())
	return push.ErrDeleteDisabled
}
func (p *pushRecorder) DeleteTag(_ context.Context, repo cache.Repo, tag string) error {
	p.note("delete tag", repo, tag)
	return cache.ErrNotFound
}
func (p *pushRecorder) DeleteBlob(_ context.Context, repo cache.Repo, d digest.Digest) error {
	p.note("delete blob", repo, d.String())
	return nil
}
func (p *pushRecorder) Referrers(_ context.Context, repo cache.Repo, d digest.Digest, _ string) ([]ocispec.Descriptor, error) {
	p.note("referrers", repo, d.String())
	return nil, nil
}

// TestPushRoutes is the write path's part of the route table, traps
// included: names that contain "blobs" and "uploads", a bad upload id, an
// upload id where a digest belongs.
func TestPushRoutes(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	id := "6f1c9d1e-2b7a-4c55-9a7e-2f3d4c5b6a79"
	cases := []struct {
		method, path    string
		kind, repo, ref string
		status          int
		code            string
	}{
		{"POST", "/v2/a/blobs/uploads/", "start", "library/a", "", 202, ""},
		{"POST", "/v2/a/blobs/uploads/?mount=" + d + "&from=b", "mount", "library/a", d, 201, ""},
		{"POST", "/v2/a/blobs/uploads/?digest=" + d, "monolithic", "library/a", d, 400, "DIGEST_INVALID"},
		{"POST", "/v2/a/blobs/uploads/?digest=nope", "", "", "", 400, "DIGEST_INVALID"},
		{"POST", "/v2/blobs/uploads/blobs/uploads/", "start", "blobs/uploads", "", 202, ""},
		{"GET", "/v2/a/b/blobs/uploads/" + id, "status", "a/b", id, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"PATCH", "/v2/a/blobs/uploads/" + id, "patch", "library/a", id, 416, "BLOB_UPLOAD_INVALID"},
		{"PUT", "/v2/a/blobs/uploads/" + id + "?digest=" + d, "put", "library/a", id, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"PUT", "/v2/a/blobs/uploads/" + id, "", "", "", 400, "DIGEST_INVALID"},
		{"DELETE", "/v2/a/blobs/uploads/" + id, "cancel", "library/a", id, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"PATCH", "/v2/a/blobs/uploads/not_an_id", "", "", "", 404, "NOT_FOUND"},
		{"PUT", "/v2/a/manifests/v1", "put manifest", "library/a", "v1", 400, "MANIFEST_BLOB_UNKNOWN"},
		{"PUT", "/v2/a/manifests/sha256:bad", "", "", "", 400, "DIGEST_INVALID"},
		{"DELETE", "/v2/a/manifests/" + d, "delete manifest", "library/a", d, 405, "UNSUPPORTED"},
		{"DELETE", "/v2/a/manifests/v1", "delete tag", "library/a", "v1", 404, "MANIFEST_UNKNOWN"},
		{"DELETE", "/v2/a/blobs/" + d, "delete blob", "library/a", d, 202, ""},
		{"GET", "/v2/a/referrers/" + d, "referrers", "library/a", d, 200, ""},
		{"GET", "/v2/a/referrers/sha256:short", "", "", "", 400, "DIGEST_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			rec := &pushRecorder{}
			h, err := New(Options{Store: rec, Upstream: hub{}, Auth: &AuthOptions{AnonymousPush: true}})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			req := httptest.NewRequest(c.method, c.path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
			h.ServeHTTP(w, req)
			if w.Code != c.status {
				t.Errorf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if rec.kind != c.kind || rec.repo != c.repo || rec.ref != c.ref {
				t.Errorf("store asked for %s %q %q, want %s %q %q", rec.kind, rec.repo, rec.ref, c.kind, c.repo, c.ref)
			}
			if c.code != "" {
				var body errorBody
				json.Unmarshal(w.Body.Bytes(), &body)
				if len(body.Errors) == 0 || body.Errors[0].Code != c.code {
					t.Errorf("body %s, want code %s", w.Body, c.code)
				}
			}
			if c.status == 416 && (w.Header().Get("Range") != "0-4" || w.Header().Get("Location") == "") {
				t.Errorf("416 without the upload's Range and Location: %v", w.Header())
			}
		})
	}
}
