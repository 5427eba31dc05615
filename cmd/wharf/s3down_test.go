package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestS3DownServesLocalHitsRefusesMisses: with the bucket's store
// stopped, an image whose copies are in the data directory still pulls
// whole; a miss, by tag or by digest, is a clean 503 UNAVAILABLE naming
// the store at once, not a fetch from the upstream that could not be kept
// (the upstream sees no blob request, and one manifest request at most).
func TestS3DownServesLocalHitsRefusesMisses(t *testing.T) {
	srv := s3test.Own(t)
	bucket := srv.Bucket(t)
	reg := upstreamtest.NewRegistry(t)
	up := upstreamtest.NewFaulty(t, reg.URL)
	held := upstreamtest.RandomImage(t, 2, 1<<20, upstreamtest.OCIManifest)
	missed := upstreamtest.RandomImage(t, 2, 1<<20, upstreamtest.OCIManifest)
	upstreamtest.Push(t, reg, "team/held:v1", held)
	upstreamtest.Push(t, reg, "team/missed:v1", missed)
	conf := s3ConfigFile(t, srv.Endpoint, bucket, "mirror", srv.User, srv.Key)
	addr, stop := serveLogged(t, newLogSink(), "--upstream", up.URL, "--config", conf, "--data", t.TempDir())
	defer stop()
	want := pullThrough(t, addr, "team/held:v1")
	waitFillsStored(t, addr)

	srv.Stop()
	up.ResetCounts()
	down := time.Now()
	if got := pullThrough(t, addr, "team/held:v1"); got != want {
		t.Fatalf("held image with the store down: %s, want %s", got, want)
	}

	r, err := name.ParseReference(addr+"/team/missed:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Image(r)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusServiceUnavailable ||
		!slices.ContainsFunc(te.Errors, func(d transport.Diagnostic) bool { return d.Code == "UNAVAILABLE" }) {
		t.Fatalf("pull of an image not held, with the store down: %v; want 503 UNAVAILABLE", err)
	}

	layers, err := missed.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/v2/team/missed/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
		len(body.Errors) != 1 || body.Errors[0].Code != "UNAVAILABLE" {
		t.Fatalf("blob not held, with the store down: %d %+v (%v); want 503 UNAVAILABLE", resp.StatusCode, body, err)
	}
	for _, h := range []v1.Hash{d} {
		if n := up.Count(http.MethodGet, h.Hex); n != 0 {
			t.Errorf("the upstream was asked %d times for %s, which could not be kept", n, h)
		}
	}
	// The first miss finds the store down when it stores what the
	// upstream sent; the client's retries, and every miss for the next
	// 5 s, are refused before the upstream is asked.
	// One miss per 5 s (storeDownFor) tries the upstream again.
	if n, most := up.Count(http.MethodGet, "/manifests/"), 1+int(time.Since(down)/(5*time.Second)); n > most {
		t.Errorf("the upstream served %d manifest GETs in the %s the store was down, want at most %d (one per 5 s)",
			n, time.Since(down).Round(time.Millisecond), most)
	}
}
