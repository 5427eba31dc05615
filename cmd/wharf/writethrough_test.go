package main

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestServeWritesThrough: serve wires write-through from its flags. In
// synchronous mode the push returns once the upstream has the image, and
// serve stops with the worker (TestMain's goleak checks it is gone).
func TestServeWritesThrough(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	addr, stop := serveFor(t, reg.URL, t.TempDir(), "--write-through=true", "--write-through-sync=true", "--anonymous-push=true")
	img := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)
	ref, _ := name.ParseReference(addr+"/team/pushed:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	upRef, _ := name.ParseReference(reg.Ref("team/pushed:v1"), name.Insecure)
	desc, err := remote.Head(upRef)
	if err != nil {
		t.Fatalf("the upstream has no team/pushed:v1 once the push returned: %v", err)
	}
	if desc.Digest != want {
		t.Errorf("upstream has %s, pushed %s", desc.Digest, want)
	}
	stop()
}
