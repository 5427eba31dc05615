package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// stormImages pushes one image of each kind to reg and returns them as
// repo:tag@digest, which a storm resolves by tag and checks.
func stormImages(t *testing.T, reg *upstreamtest.Registry) []string {
	t.Helper()
	return []string{
		"s/docker:v1@" + upstreamtest.Push(t, reg, "s/docker:v1", upstreamtest.RandomImage(t, 2, 8<<10, upstreamtest.DockerManifest)).Digest.String(),
		"s/oci:v1@" + upstreamtest.Push(t, reg, "s/oci:v1", upstreamtest.RandomImage(t, 1, 64<<10, upstreamtest.OCIManifest)).Digest.String(),
		"s/index:v1@" + upstreamtest.PushIndex(t, reg, "s/index:v1", upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex)).Digest.String(),
	}
}

// Against the reference registry a storm is all clean: every kind of
// operation happens, every request is ok.
func TestStormAgainstARegistryIsClean(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	r, err := Storm(t.Context(), StormOptions{
		Common: Common{Registry: reg.URL, Clients: 3, Ops: 36},
		Images: stormImages(t, reg), PushRepo: "s/pushed", PushEvery: 3, DeleteEvery: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Unclean != 0 || r.Outcomes[ClassV2] != 0 || r.Outcomes[ClassAbort] != 0 {
		t.Fatalf("outcomes %v %v, examples %v", r.Outcomes, r.OutcomeDetails, r.UncleanExamples)
	}
	for _, k := range []string{"pull", "push", "delete"} {
		if c := r.OpsByKind[k]; c.Done == 0 || c.Failed != 0 {
			t.Errorf("%s: %+v, want some done and none failed", k, c)
		}
	}
	if r.Outcomes[ClassOK] != r.Requests {
		t.Errorf("%d ok of %d requests", r.Outcomes[ClassOK], r.Requests)
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "0 unclean") {
		t.Errorf("text: %v\n%s", err, text.String())
	}
}

// Each misbehaviour of a server lands in its class: the storm's verdict
// is only as good as this.
func TestStormClassifiesWhatAServerDoes(t *testing.T) {
	blobGet := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
	}
	pushedByDigest := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/s/pushed/manifests/sha256:")
	}
	deletes := func(r *http.Request) bool { return r.Method == http.MethodDelete }
	tests := []struct {
		name   string
		fault  func(*http.Request) upstreamtest.Fault
		push   bool
		want   string // class
		detail string
	}{
		{"wrong bytes", only(blobGet, upstreamtest.Fault{Corrupt: true}), false, ClassWrongBytes, "blob"},
		{"body cut", only(blobGet, upstreamtest.Fault{TruncateAfter: 100}), false, ClassAbort, "blob"},
		{"v2 error", only(blobGet, upstreamtest.Fault{Status: 503}), false, ClassV2, "503 UNAVAILABLE"},
		{"500", only(blobGet, upstreamtest.Fault{Status: 500}), false, Class500, "blob"},
		{"hang", only(blobGet, upstreamtest.Fault{Stall: time.Minute}), false, ClassHang, "blob"},
		{"lost", only(pushedByDigest, upstreamtest.Fault{Status: 404}), true, ClassLost, "manifest"},
		{"resurrected", only(deletes, upstreamtest.Fault{Status: 202}), true, ClassResurrected, "deleted-manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := upstreamtest.NewRegistry(t)
			images := stormImages(t, reg)
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			faulty.SetFault(tt.fault)
			o := StormOptions{Common: Common{Registry: faulty.URL, Clients: 1, Ops: 4, HangAfter: 2 * time.Second}, Images: images[:1]}
			if tt.push {
				o.PushRepo, o.PushEvery, o.DeleteEvery = "s/pushed", 2, 2
				o.Ops = 4 // pull, push, delete (slot 0 of 2, once there is a push), push
			}
			r, err := Storm(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcomes[tt.want] == 0 || r.OutcomeDetails[tt.want+" "+tt.detail] == 0 {
				t.Fatalf("outcomes %v, details %v; want %s %s", r.Outcomes, r.OutcomeDetails, tt.want, tt.detail)
			}
			if got := r.Unclean > 0; got != !Clean(tt.want) {
				t.Errorf("unclean %d for a %s", r.Unclean, tt.want)
			}
		})
	}
}

// only applies f to the requests match picks.
func only(match func(*http.Request) bool, f upstreamtest.Fault) func(*http.Request) upstreamtest.Fault {
	return func(r *http.Request) upstreamtest.Fault {
		if match(r) {
			return f
		}
		return upstreamtest.Fault{}
	}
}

// The classes of errors that need no server to make.
func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	status := func(code int, body string) error {
		return fmt.Errorf("wrapped: %w", &StatusError{Method: "GET", URL: "u", Status: code, Body: body})
	}
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		class  string
		detail string
		count  bool
	}{
		{"ok", t.Context(), nil, ClassOK, "", true},
		{"v2", t.Context(), status(429, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`), ClassV2, "429 TOOMANYREQUESTS", true},
		{"unknown code", t.Context(), status(502, `{"errors":[{"code":"OOPS"}]}`), ClassNotV2, "blob 502", true},
		{"no errors", t.Context(), status(502, `{"errors":[]}`), ClassNotV2, "blob 502", true},
		{"plain text", t.Context(), status(502, "Bad Gateway"), ClassNotV2, "blob 502", true},
		{"500 with a v2 body", t.Context(), status(500, `{"errors":[{"code":"UNKNOWN"}]}`), Class500, "blob", true},
		{"cut", t.Context(), fmt.Errorf("%w: %w", ErrCut, io.ErrUnexpectedEOF), ClassAbort, "blob", true},
		{"wrong digest", t.Context(), fmt.Errorf("x: %w", ErrDigestMismatch), ClassWrongBytes, "blob", true},
		{"wrong size", t.Context(), fmt.Errorf("x: %w", ErrSizeMismatch), ClassWrongBytes, "blob", true},
		{"hang", t.Context(), fmt.Errorf("%w: %w", ErrHang, context.DeadlineExceeded), ClassHang, "blob", true},
		{"lost 404", withMustExist(t.Context()), status(404, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`), ClassLost, "blob", true},
		{"refused", t.Context(), errors.New("dial tcp: connection refused"), ClassNetwork, "blob", true},
		{"cut by the caller", canceled, fmt.Errorf("%w: %w", ErrCut, context.Canceled), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, detail, count := classify(tt.ctx, "blob", tt.err)
			if class != tt.class || detail != tt.detail || count != tt.count {
				t.Errorf("classify = %q %q %v, want %q %q %v", class, detail, count, tt.class, tt.detail, tt.count)
			}
		})
	}
}
