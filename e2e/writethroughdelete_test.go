package e2e

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
	"github.com/wharf-mirror/wharf/writethrough"
)

// TestWriteThroughDeletes: with write-through on, a DELETE of a pushed tag
// reaches the upstream through the queue. While it waits, wharf does not
// serve the tag the upstream still has. A push and then a delete of the
// same tag, queued while the upstream fails and kept across a restart,
// reach the upstream in that order: it ends with the pushed manifest and
// without the tag.
func TestWriteThroughDeletes(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	opts := pushOpts{dir: t.TempDir(), writeThrough: &writethrough.Options{
		Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}}
	w := startPusher(t, faulty.URL, opts)
	const ref = "site/del:v1"
	pending := func() float64 { return testutil.ToFloat64(w.Metrics.WriteThroughPending) }

	t.Run("a pending delete hides what the upstream still has", func(t *testing.T) {
		img := upstreamtest.RandomImage(t, 1, 4096, types.OCIManifestSchema1)
		if err := remote.Write(mustParse(t, w.Host+"/"+ref), img, client(t)...); err != nil {
			t.Fatal(err)
		}
		waitUpstream(t, reg.Host+"/"+ref, img)
		faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			if r.Method == http.MethodDelete {
				return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
			}
			return upstreamtest.Fault{}
		})
		if resp := do(t, http.MethodDelete, w.URL+"/v2/site/del/manifests/v1"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE tag: %d", resp.StatusCode)
		}
		if _, err := remote.Head(mustParse(t, reg.Host+"/"+ref), client(t)...); err != nil {
			t.Fatalf("the upstream lost the tag before its delete could run: %v", err)
		}
		resp := get(t, w.URL+"/v2/site/del/manifests/v1", "Accept", string(types.OCIManifestSchema1))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("deleted tag while its upstream delete is pending: %d, want 404", resp.StatusCode)
		}
		tags, err := remote.List(mustParse(t, w.Host+"/site/del").Context(), client(t)...)
		if err == nil && len(tags) > 0 {
			t.Errorf("tags list while the delete is pending: %q", tags)
		}
		faulty.SetFault(nil)
		waitFor(t, "an empty queue", func() bool { return pending() == 0 })
		if _, err := remote.Head(mustParse(t, reg.Host+"/"+ref), client(t)...); !isStatus(err, http.StatusNotFound) {
			t.Errorf("the upstream after the delete ran: %v, want 404", err)
		}
		if n := testutil.ToFloat64(w.Metrics.WriteThroughDeleted); n != 1 {
			t.Errorf("wharf_writethrough_deleted_total %v, want 1", n)
		}
	})

	t.Run("a push then a delete, across an outage and a restart", func(t *testing.T) {
		// The upstream takes deletes but nothing else: a delete that
		// overtook the failing push would run at once.
		faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			if r.Method == http.MethodDelete {
				return upstreamtest.Fault{}
			}
			return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
		})
		img := upstreamtest.RandomImage(t, 1, 4096, types.OCIManifestSchema1)
		if err := remote.Write(mustParse(t, w.Host+"/"+ref), img, client(t)...); err != nil {
			t.Fatalf("push while the upstream is down: %v", err)
		}
		if resp := do(t, http.MethodDelete, w.URL+"/v2/site/del/manifests/v1"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE tag: %d", resp.StatusCode)
		}
		// Every pass of the worker tries what is due: by the push's fourth
		// failure, a delete free to overtake it would have run.
		waitFor(t, "failed attempts", func() bool {
			return testutil.ToFloat64(w.Metrics.WriteThroughFailures.WithLabelValues("unavailable")) >= 4
		})
		if n := pending(); n != 2 {
			t.Errorf("pending %v, want 2 (the push, then the delete waiting for it)", n)
		}
		w.stop()
		w = startPusher(t, faulty.URL, opts)
		if n := pending(); n != 2 {
			t.Errorf("pending after restart %v, want 2", n)
		}
		faulty.SetFault(nil)
		waitFor(t, "an empty queue", func() bool { return pending() == 0 })
		d, _ := img.Digest()
		if _, err := remote.Head(mustParse(t, reg.Host+"/site/del@"+d.String()), client(t)...); err != nil {
			t.Errorf("the pushed manifest never reached the upstream: %v", err)
		}
		if _, err := remote.Head(mustParse(t, reg.Host+"/"+ref), client(t)...); !isStatus(err, http.StatusNotFound) {
			t.Errorf("the upstream's tag after a push and a delete: %v, want 404", err)
		}
		if resp := get(t, w.URL+"/v2/site/del/manifests/v1"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("wharf's tag after a push and a delete: %d, want 404", resp.StatusCode)
		}
	})
}

func isStatus(err error, status int) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == status
}

// TestWriteThroughSyncDelete: in synchronous mode a DELETE returns once
// the upstream has deleted too; with the upstream down it is done here,
// fails with 502, and stays queued.
func TestWriteThroughSyncDelete(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	w := startPusher(t, faulty.URL, pushOpts{writeThrough: &writethrough.Options{
		Sync: true, Backoff: time.Hour,
	}})
	for _, tag := range []string{"v1", "v2"} {
		img := upstreamtest.RandomImage(t, 1, 4096, types.OCIManifestSchema1)
		if err := remote.Write(mustParse(t, w.Host+"/site/sync:"+tag), img, client(t)...); err != nil {
			t.Fatal(err)
		}
	}
	if resp := do(t, http.MethodDelete, w.URL+"/v2/site/sync/manifests/v1"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if _, err := remote.Head(mustParse(t, reg.Host+"/site/sync:v1"), client(t)...); !isStatus(err, http.StatusNotFound) {
		t.Errorf("the upstream when the DELETE returned: %v, want 404", err)
	}
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		return upstreamtest.Fault{Status: http.StatusServiceUnavailable}
	})
	if resp := do(t, http.MethodDelete, w.URL+"/v2/site/sync/manifests/v2"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("DELETE with the upstream down: %d, want 502", resp.StatusCode)
	}
	if n := testutil.ToFloat64(w.Metrics.WriteThroughPending); n != 1 {
		t.Errorf("pending %v, want 1", n)
	}
	if resp := do(t, http.MethodHead, w.URL+"/v2/site/sync/manifests/v2"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the tag whose upstream delete failed: %d, want 404 (deleted here)", resp.StatusCode)
	}
}

// TestWriteThroughDeleteWithTokenAuth: the upstream wants a token with
// "delete" scope for a delete (distribution's token auth, as Docker Hub's);
// deletes and pushes to one repository both keep working.
func TestWriteThroughDeleteWithTokenAuth(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.WithTokenAuth("wharf", "secret"))
	w := startPusher(t, reg.URL, pushOpts{user: "wharf", pass: "secret",
		writeThrough: &writethrough.Options{Sync: true},
	})
	up := append(client(t), remote.WithAuth(&authn.Basic{Username: "wharf", Password: "secret"}))
	for _, tag := range []string{"v1", "v2"} {
		if err := remote.Write(mustParse(t, w.Host+"/site/tok:"+tag), upstreamtest.RandomImage(t, 1, 2048, types.OCIManifestSchema1), client(t)...); err != nil {
			t.Fatal(err)
		}
		if resp := do(t, http.MethodDelete, w.URL+"/v2/site/tok/manifests/"+tag); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE %s: %d", tag, resp.StatusCode)
		}
		if _, err := remote.Head(mustParse(t, reg.Host+"/site/tok:"+tag), up...); !isStatus(err, http.StatusNotFound) {
			t.Errorf("the upstream's %s after the DELETE returned: %v, want 404", tag, err)
		}
	}
}
