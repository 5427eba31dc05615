package index

import (
	"reflect"
	"sort"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func referrer(name string) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example." + name,
		Digest:       digest.FromString(name),
		Size:         int64(len(name)),
		Annotations:  map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
	}
}

// TestReferrersListBySubject: a subject's referrers in one repository,
// whole descriptors in digest order; neither another subject's nor
// another repository's.
func TestReferrersListBySubject(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	const repo = "docker.io/site/app"
	subject, other := digest.FromString("image"), digest.FromString("other image")
	sig, sbom, attest := referrer("signature"), referrer("sbom"), referrer("attestation")
	puts := []struct {
		repo    string
		subject digest.Digest
		desc    ocispec.Descriptor
	}{
		{repo, subject, sig},
		{repo, subject, sbom},
		{repo, subject, attest},
		{repo, other, sig}, // one manifest may refer to two subjects over time
		{repo + "/sub", subject, referrer("sub")},
		{repo + "x", subject, referrer("x")},
	}
	for _, p := range puts {
		if err := x.PutReferrer(p.repo, p.subject, p.desc); err != nil {
			t.Fatal(err)
		}
	}
	want := []ocispec.Descriptor{sig, sbom, attest}
	sort.Slice(want, func(i, j int) bool { return want[i].Digest < want[j].Digest })
	if got, err := x.Referrers(repo, subject); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Referrers: %+v, %v; want %+v", got, err, want)
	}
	if got, err := x.Referrers(repo, other); err != nil || !reflect.DeepEqual(got, []ocispec.Descriptor{sig}) {
		t.Errorf("Referrers of the other subject: %+v, %v; want the signature alone", got, err)
	}

	if err := x.DeleteReferrer(repo, subject, sig.Digest); err != nil {
		t.Fatal(err)
	}
	got, err := x.Referrers(repo, subject)
	if err != nil || len(got) != 2 {
		t.Errorf("Referrers after a delete: %+v, %v; want two", got, err)
	}
	for _, d := range got {
		if d.Digest == sig.Digest {
			t.Error("the deleted referrer is still listed")
		}
	}
	if got, _ := x.Referrers(repo, other); len(got) != 1 {
		t.Errorf("deleting under one subject took it from another: %+v", got)
	}
}

// TestReferrersOfNothingIsAnEmptyList: the referrers API answers an index
// with "manifests": [] for a subject without referrers, never null.
func TestReferrersOfNothingIsAnEmptyList(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	got, err := x.Referrers("docker.io/a", digest.FromString("lonely"))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Referrers: %#v, %v; want an empty, non-nil list", got, err)
	}
}
