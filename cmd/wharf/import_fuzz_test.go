package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/proxy"
)

// Fuzzed archives are entries packed in one []byte: entries separated by
// 0x1e, each a type byte ('l' symlink, 'h' hard link, 'd' directory,
// anything else a regular file), its name up to 0x1f, then its body (a
// link's target).
const entrySep, nameSep = 0x1e, 0x1f

func packEntries(es []tarEntry) []byte {
	var b bytes.Buffer
	for i, e := range es {
		if i > 0 {
			b.WriteByte(entrySep)
		}
		typ := byte('f')
		switch e.typ {
		case tar.TypeSymlink:
			typ = 'l'
		case tar.TypeLink:
			typ = 'h'
		case tar.TypeDir:
			typ = 'd'
		}
		b.WriteByte(typ)
		b.WriteString(e.name)
		b.WriteByte(nameSep)
		if e.link != "" {
			b.WriteString(e.link)
		} else {
			b.Write(e.body)
		}
	}
	return b.Bytes()
}

func unpackEntries(data []byte) []tarEntry {
	var out []tarEntry
	for _, raw := range bytes.Split(data, []byte{entrySep}) {
		if len(raw) == 0 {
			continue
		}
		name, rest, _ := bytes.Cut(raw[1:], []byte{nameSep})
		e := tarEntry{typ: tar.TypeReg, name: string(name), body: rest}
		switch raw[0] {
		case 'l':
			e = tarEntry{typ: tar.TypeSymlink, name: string(name), link: string(rest)}
		case 'h':
			e = tarEntry{typ: tar.TypeLink, name: string(name), link: string(rest)}
		case 'd':
			e = tarEntry{typ: tar.TypeDir, name: string(name)}
		}
		out = append(out, e)
	}
	return out
}

// fuzzNamer is Docker Hub's naming rule, as the serving wharf applies it.
type fuzzNamer struct{}

func (fuzzNamer) Name() string { return "docker.io" }
func (fuzzNamer) Repository(p string) string {
	if strings.Contains(p, "/") {
		return p
	}
	return "library/" + p
}

// FuzzImport imports tar archives built from fuzzed entries (seeded with
// an OCI layout, the docker save fixture and hostile variants of both)
// into one store, as wharf import does: a checking pass, then the import.
// Nothing panics; an archive the checking pass refuses leaves the store
// as it was; and one it accepts imports without error (the check is
// faithful to the import).
func FuzzImport(f *testing.F) {
	l := newTestLayout("docker.io/library/fuzz:v1", []byte("a layer"))
	layer := blobPath(l.layer)
	seeds := [][]tarEntry{
		l.entries,
		fixtureEntries(f),
		without(l.entries, layer, tarEntry{typ: tar.TypeSymlink, name: layer, link: "../../../etc/passwd"}),
		without(l.entries, layer, tarEntry{typ: tar.TypeLink, name: layer, link: "/etc/passwd"}),
		without(l.entries, layer, tarEntry{typ: tar.TypeSymlink, name: layer, link: "../../" + blobPath(l.config)}),
		append(l.entries, reg("/abs", nil), reg("../up", nil)),
		without(l.entries, layer),
		without(l.entries, layer, reg(layer, []byte("a layeR"))),
	}
	for _, s := range seeds {
		f.Add(packEntries(s), uint16(0))
	}
	f.Add(packEntries(l.entries), uint16(700))

	dir := f.TempDir()
	c, err := cache.Open(cache.Options{Dir: filepath.Join(dir, "store")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	archive := filepath.Join(dir, "in.tar")
	ctx := context.Background()
	ups, err := proxy.NewUpstreamSet(fuzzNamer{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		b := tarBytes(unpackEntries(data))
		if int(cut) < len(b) {
			b = b[:len(b)-int(cut)]
		}
		if err := os.WriteFile(archive, b, 0o644); err != nil {
			t.Fatal(err)
		}
		bytes0, items0 := c.Usage()
		tags0, _ := c.TaggedImages()
		check := &importer{ctx: ctx, c: c, ups: ups, out: io.Discard, warn: io.Discard, dry: newDryRun()}
		if err := check.importPath(archive); err != nil {
			bytes1, items1 := c.Usage()
			tags1, _ := c.TaggedImages()
			if bytes1 != bytes0 || items1 != items0 || len(tags1) != len(tags0) {
				t.Fatalf("a refused archive changed the store: %d/%d bytes, %d/%d items, %d/%d tags (%v)",
					bytes0, bytes1, items0, items1, len(tags0), len(tags1), err)
			}
			return
		}
		im := &importer{ctx: ctx, c: c, ups: ups, out: io.Discard, warn: io.Discard}
		if err := im.importPath(archive); err != nil {
			t.Fatalf("the check passed, the import failed: %v", err)
		}
	})
}
