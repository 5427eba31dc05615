package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestClusterReferrersAndCatalogShared: over HTTP, between two wharf
// processes sharing a bucket, an image and a signature pushed through r0
// are what r1's /v2/_catalog and referrers API list at once, and the
// signature deleted through r0 is gone from r1's list.
func TestClusterReferrersAndCatalogShared(t *testing.T) {
	c := startCluster(t, clusterOpts{replicas: 2, extra: []string{"--anonymous-push"}})
	r0, r1 := c.Replicas[0], c.Replicas[1]
	img := upstreamtest.RandomImage(t, 1, 1024, types.OCIManifestSchema1)
	subjRef := mustRef(t, r0.Addr+"/team/signed:v1")
	if err := remote.Write(subjRef, img, client(t)...); err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(subjRef, client(t)...)
	if err != nil {
		t.Fatal(err)
	}
	art := mutate.Subject(mutate.ConfigMediaType(upstreamtest.RandomImage(t, 1, 64, types.OCIManifestSchema1), "application/vnd.example.sig"), *desc).(v1.Image)
	artDigest, _ := art.Digest()
	artRef := mustRef(t, r0.Addr+"/team/signed@"+artDigest.String())
	if err := remote.Write(artRef, art, client(t)...); err != nil {
		t.Fatal(err)
	}

	var cat struct{ Repositories []string }
	resp := get(t, "http://"+r1.Addr+"/v2/_catalog")
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("r1's catalog: %d, %v", resp.StatusCode, err)
	}
	if !slices.Contains(cat.Repositories, "team/signed") {
		t.Errorf("r1's catalog %v lacks team/signed, pushed through r0", cat.Repositories)
	}
	referrers := func() []v1.Descriptor {
		t.Helper()
		idx, err := remote.Referrers(mustRef(t, r1.Addr+"/team/signed@"+desc.Digest.String()).Context().Digest(desc.Digest.String()), client(t)...)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		return im.Manifests
	}
	if got := referrers(); len(got) != 1 || got[0].Digest != artDigest || got[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("r1's referrers of %s: %+v; want %s", desc.Digest, got, artDigest)
	}
	if _, err := remote.Get(mustRef(t, r1.Addr+"/team/signed@"+artDigest.String()), client(t)...); err != nil {
		t.Errorf("r1, the signature it lists: %v", err)
	}
	if err := remote.Delete(artRef, client(t)...); err != nil {
		t.Fatal(err)
	}
	if got := referrers(); len(got) != 0 {
		t.Errorf("r1's referrers after the delete through r0: %+v", got)
	}
}
