package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
)

// The fixture was made with the docker CLI (engine 20.10, so the format
// before 25: <config hex>.json, <id>/layer.tar uncompressed):
//
//	tar -cf rootfs.tar etc hello.txt
//	docker import --change 'CMD ["/hello.txt"]' rootfs.tar wharf-fixture:v1
//	docker save -o testdata/docker-save.tar wharf-fixture:v1
const (
	fixture        = "testdata/docker-save.tar"
	fixtureImageID = "sha256:c8864888b7b4b2aa4391e42ecfa3ef478bb1ca8dcaaf589bbcd0c8839196daf9"
)

// hubNamer reads names as a wharf whose one upstream is Docker Hub:
// docker's own normalisation (library/ for official images, "latest"
// when neither tag nor digest is given); any other registry is not
// served. The real rules (upstreams, prefixes) are proxy's, tested there
// and through cmd/wharf.
func hubNamer(s string) (Name, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Name{}, fmt.Errorf("image %q: %w", s, err)
	}
	if reg := reference.Domain(named); reg != "docker.io" {
		why := fmt.Errorf("registry %s is not an upstream of this wharf", reg)
		return Name{}, &NotServedError{Err: fmt.Errorf("image %q: %w", s, why), Reason: why}
	}
	n := Name{Repo: cache.Repo{Upstream: "docker.io", Path: reference.Path(named)}}
	if t, ok := named.(reference.Tagged); ok {
		n.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		n.Digest = d.Digest()
	}
	if n.Tag == "" && n.Digest == "" {
		n.Tag = "latest"
	}
	return n, nil
}

// openStore opens a store in dir, closed when the test ends.
func openStore(t testing.TB, dir string) *cache.Cache {
	t.Helper()
	c, err := cache.Open(cache.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// importPaths imports paths into c as wharf import does (the paths
// checked before the store is touched), with repo for bare tags; it
// returns what the import reported, warnings included.
func importPaths(c *cache.Cache, repo string, paths ...string) (Imported, string, error) {
	var out strings.Builder
	if err := CheckPaths(paths); err != nil {
		return Imported{}, "", err
	}
	n, err := Import(context.Background(), c, paths, ImportOptions{Name: hubNamer, Repo: repo, Out: &out, Warn: &out})
	return n, out.String(), err
}

// tarEntry is one member of an archive a test or a fuzz target builds,
// hostile ones included.
type tarEntry struct {
	typ  byte // tar.TypeReg, TypeSymlink, TypeLink or TypeDir
	name string
	link string // a link's target
	body []byte
	// size, when above len(body), is what the header claims: the archive
	// then ends inside this member's data (a truncated or lying archive).
	size int64
}

// tarBytes writes entries as a tar. A member whose size claims more than
// its body ends the archive there, unfinished.
func tarBytes(entries []tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.typ == tar.TypeXHeader {
			buf.Write(paxRecord(e.name, e.body))
			continue
		}
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o644, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = max(e.size, int64(len(e.body)))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return buf.Bytes() // the fuzzed header cannot be written: the archive ends here
		}
		tw.Write(e.body)
		if hdr.Size > int64(len(e.body)) {
			return buf.Bytes()
		}
	}
	tw.Close()
	return buf.Bytes()
}

// paxRecord is a PAX extended header of one record, key=value, whatever
// its length (tar.Writer refuses to write hostile ones).
func paxRecord(key string, value []byte) []byte {
	rec := " " + key + "=" + string(value) + "\n"
	n := len(rec) // the record's length counts its own digits
	for m := 0; m != n; {
		m, n = n, len(rec)+len(fmt.Sprint(n))
	}
	rec = fmt.Sprint(n) + rec
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeader", Size: int64(len(rec)), Format: tar.FormatUSTAR})
	b := hdr.Bytes()[:512]
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(append([]byte{}, b...), rec...)
	return append(out, make([]byte, (512-len(rec)%512)%512)...)
}

func writeTarFile(t testing.TB, path string, entries []tarEntry) {
	t.Helper()
	if err := os.WriteFile(path, tarBytes(entries), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reg is a regular member.
func reg(name string, body []byte) tarEntry {
	return tarEntry{typ: tar.TypeReg, name: name, body: body}
}

// testLayout is a small valid OCI image layout: one image, tagged name, of
// one layer, as entries of a tar; its digests for tests to aim at.
type testLayout struct {
	entries                  []tarEntry
	manifest, config, layer  digest.Digest
	manifestBody, configBody []byte
}

func newTestLayout(name string, layer []byte) testLayout {
	l := testLayout{layer: digest.FromBytes(layer)}
	l.configBody, _ = json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{l.layer}}})
	l.config = digest.FromBytes(l.configBody)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: l.config, Size: int64(len(l.configBody))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: l.layer, Size: int64(len(layer))}}}
	m.SchemaVersion = 2
	l.manifestBody, _ = json.Marshal(m)
	l.manifest = digest.FromBytes(l.manifestBody)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageManifest, Digest: l.manifest, Size: int64(len(l.manifestBody)),
		Annotations: map[string]string{annotationImageName: name, annotationRefName: name}}}}
	idx.SchemaVersion = 2
	index, _ := json.Marshal(idx)
	l.entries = []tarEntry{
		reg(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		reg(ocispec.ImageIndexFile, index),
		reg(blobPath(l.config), l.configBody),
		reg(blobPath(l.layer), layer),
		reg(blobPath(l.manifest), l.manifestBody),
	}
	return l
}

// without returns entries less the one named name, and with others added.
func without(entries []tarEntry, name string, add ...tarEntry) []tarEntry {
	var out []tarEntry
	for _, e := range entries {
		if e.name != name {
			out = append(out, e)
		}
	}
	return append(out, add...)
}

// fixtureEntries reads the docker save fixture as entries.
func fixtureEntries(t testing.TB) []tarEntry {
	t.Helper()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tarEntry
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, tarEntry{typ: hdr.Typeflag, name: hdr.Name, link: hdr.Linkname, body: body})
	}
}
