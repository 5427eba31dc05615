package upstream_test

import (
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

const (
	mtDocker     = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCI        = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex   = "application/vnd.oci.image.index.v1+json"
)

// acceptAll is what docker and containerd send, give or take.
var acceptAll = []string{mtDocker, mtDockerList, mtOCI, mtOCIIndex}

// pushed is a registry holding one of each manifest kind, by tag.
type pushed struct {
	reg                             *upstreamtest.Registry
	docker, oci, ociIndex, dockList ocispec.Descriptor
	dockListAMD64                   v1.Hash
}

func pushAll(t *testing.T) pushed {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	p := pushed{reg: reg}
	p.docker = upstreamtest.Push(t, reg, "img/docker:v1", upstreamtest.RandomImage(t, 2, 512, upstreamtest.DockerManifest))
	p.oci = upstreamtest.Push(t, reg, "img/oci:v1", upstreamtest.RandomImage(t, 1, 512, upstreamtest.OCIManifest))
	p.ociIndex = upstreamtest.PushIndex(t, reg, "img/index:v1", upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex))
	list := upstreamtest.RandomIndex(t, 2, upstreamtest.DockerManifestList)
	p.dockList = upstreamtest.PushIndex(t, reg, "img/list:v1", list)
	im, err := list.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if m.Platform.Architecture == "amd64" {
			p.dockListAMD64 = m.Digest
		}
	}
	return p
}

func TestGetAndHeadManifest(t *testing.T) {
	p := pushAll(t)
	c := newClient(t, p.reg.URL, nil)
	tests := []struct {
		name, repo string
		want       ocispec.Descriptor
	}{
		{"docker schema2", "img/docker", p.docker},
		{"oci image", "img/oci", p.oci},
		{"oci index", "img/index", p.ociIndex},
		{"docker manifest list", "img/list", p.dockList},
	}
	for _, tt := range tests {
		for _, ref := range []string{"v1", tt.want.Digest.String()} {
			t.Run(tt.name+"/"+ref, func(t *testing.T) {
				m, err := c.GetManifest(t.Context(), tt.repo, ref, acceptAll)
				if err != nil {
					t.Fatalf("GetManifest: %v", err)
				}
				if m.Descriptor.MediaType != tt.want.MediaType || m.Descriptor.Digest != tt.want.Digest || m.Descriptor.Size != tt.want.Size {
					t.Errorf("GetManifest descriptor = %+v, want %+v", m.Descriptor, tt.want)
				}
				if got := digest.FromBytes(m.Body); got != tt.want.Digest {
					t.Errorf("body hashes to %s, want %s", got, tt.want.Digest)
				}
				d, err := c.HeadManifest(t.Context(), tt.repo, ref, acceptAll)
				if err != nil {
					t.Fatalf("HeadManifest: %v", err)
				}
				if d.MediaType != tt.want.MediaType || d.Digest != tt.want.Digest || d.Size != tt.want.Size {
					t.Errorf("HeadManifest = %+v, want %+v", d, tt.want)
				}
			})
		}
	}
}

// TestAcceptNegotiation pins down what distribution does with an Accept
// header that leaves out the manifest's type, so that wharf passes Accept
// through and lets the upstream decide, as a client talking to it directly
// would see.
func TestAcceptNegotiation(t *testing.T) {
	p := pushAll(t)
	c := newClient(t, p.reg.URL, nil)
	tests := []struct {
		name, repo, ref string
		accept          []string
		wantMediaType   string
		wantDigest      digest.Digest
		wantErr         error
		wantCode        string
	}{
		// An OCI index asked for as a schema2 manifest: distribution v3
		// sends the index anyway (its Accept check only knows OCI image
		// manifests and Docker lists), so the caller must look at the
		// media type it got rather than assume the one it asked for.
		{name: "oci index, schema2 accepted", repo: "img/index", ref: "v1", accept: []string{mtDocker},
			wantMediaType: mtOCIIndex, wantDigest: p.ociIndex.Digest},
		// An OCI image asked for as schema2: 404 MANIFEST_UNKNOWN.
		{name: "oci image, schema2 accepted", repo: "img/oci", ref: "v1", accept: []string{mtDocker},
			wantErr: upstream.ErrNotFound, wantCode: "MANIFEST_UNKNOWN"},
		// A Docker manifest list asked for by tag as schema2: distribution
		// answers with the linux/amd64 image, as for old docker clients.
		{name: "docker list by tag, schema2 accepted", repo: "img/list", ref: "v1", accept: []string{mtDocker},
			wantMediaType: mtDocker, wantDigest: digest.Digest(p.dockListAMD64.String())},
		// By digest it answers with the list itself.
		{name: "docker list by digest, schema2 accepted", repo: "img/list", ref: p.dockList.Digest.String(), accept: []string{mtDocker},
			wantMediaType: mtDockerList, wantDigest: p.dockList.Digest},
		// No Accept at all: a schema2 manifest comes back as it is.
		{name: "docker schema2, no accept", repo: "img/docker", ref: "v1",
			wantMediaType: mtDocker, wantDigest: p.docker.Digest},
		{name: "oci index, index accepted", repo: "img/index", ref: "v1", accept: []string{mtOCIIndex},
			wantMediaType: mtOCIIndex, wantDigest: p.ociIndex.Digest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.GetManifest(t.Context(), tt.repo, tt.ref, tt.accept)
			if tt.wantErr != nil {
				var ue *upstream.Error
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &ue) || ue.Code != tt.wantCode {
					t.Fatalf("GetManifest error = %v, want %v with code %s", err, tt.wantErr, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetManifest: %v", err)
			}
			if m.Descriptor.MediaType != tt.wantMediaType || m.Descriptor.Digest != tt.wantDigest {
				t.Errorf("got %s %s, want %s %s", m.Descriptor.MediaType, m.Descriptor.Digest, tt.wantMediaType, tt.wantDigest)
			}
		})
	}
}

func TestManifestNotFound(t *testing.T) {
	p := pushAll(t)
	c := newClient(t, p.reg.URL, nil)
	unknown := digest.FromString("nothing").String()
	tests := []struct{ repo, ref, code string }{
		{"img/docker", "nope", "MANIFEST_UNKNOWN"},
		{"img/docker", unknown, "MANIFEST_UNKNOWN"},
		{"no/such/repo", "v1", "MANIFEST_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.repo+":"+tt.ref, func(t *testing.T) {
			_, err := c.GetManifest(t.Context(), tt.repo, tt.ref, acceptAll)
			var ue *upstream.Error
			if !errors.Is(err, upstream.ErrNotFound) || !errors.As(err, &ue) || ue.Status != 404 || ue.Code != tt.code {
				t.Errorf("GetManifest error = %v, want ErrNotFound 404 %s", err, tt.code)
			}
			if _, err := c.HeadManifest(t.Context(), tt.repo, tt.ref, acceptAll); !errors.Is(err, upstream.ErrNotFound) {
				t.Errorf("HeadManifest error = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil) // never dialled
	tests := []struct{ name, repo, ref string }{
		{"upper case repo", "Library/Alpine", "latest"},
		{"dot-dot repo", "../v2/x", "latest"},
		{"empty repo", "", "latest"},
		{"bad tag", "alpine", "-bad"},
		{"bad digest", "alpine", "sha256:xyz"},
		{"unknown algorithm", "alpine", "md5:d41d8cd98f00b204e9800998ecf8427e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.GetManifest(t.Context(), tt.repo, tt.ref, nil); !errors.Is(err, upstream.ErrInvalid) {
				t.Errorf("GetManifest error = %v, want ErrInvalid", err)
			}
		})
	}
}
