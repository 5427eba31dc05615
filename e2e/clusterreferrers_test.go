package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// TestClusterReferrersAndCatalogShared: over HTTP, between two wharf
// processes sharing a bucket, an image and a signature pushed through r0
// are what r1's /v2/_catalog and referrers API list at once, and the
// signature deleted through r0 is gone from r1's list; and r1's catalog,
// with access rules, lists only what the viewer may read.
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

	// The catalog still lists only what the viewer may read: r1 again,
	// with rules that let anonymous clients read team/public only.
	public := mustRef(t, r0.Addr+"/team/public:v1")
	if err := remote.Write(public, upstreamtest.RandomImage(t, 1, 64, types.OCIManifestSchema1), client(t)...); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("ci:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := url.Parse(c.Up.URL)
	if err != nil {
		t.Fatal(err)
	}
	r1.extra = []string{"--htpasswd", htpasswd, "--anonymous-pull=true", "--auth-rules", "ci:read:*,anonymous:read:" + up.Host + "/team/public"}
	r1.restart(t, false)
	for _, v := range []struct {
		who  string
		auth []string
		want []string
	}{
		{"anonymous", nil, []string{"team/public"}},
		{"ci", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:secret"))}, []string{"team/public", "team/signed"}},
	} {
		var cat struct{ Repositories []string }
		resp := get(t, "http://"+r1.Addr+"/v2/_catalog", v.auth...)
		if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("r1's catalog for %s: %d, %v", v.who, resp.StatusCode, err)
		}
		if !slices.Equal(cat.Repositories, v.want) {
			t.Errorf("r1's catalog for %s, with rules: %v; want %v", v.who, cat.Repositories, v.want)
		}
	}
}
