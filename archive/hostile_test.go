package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/inspect"
)

// importAllocLimit bounds what one refused import may allocate: a
// header claiming a terabyte must cost nothing.
const importAllocLimit = 128 << 20

// TestImportRefusesHostileArchives hands Import archives built to
// escape, to lie about sizes, or to leave a store half-written. Each is
// refused with an error that says why; the store (which already holds an
// image) is exactly as before, and verify finds it sound; nothing appears
// outside it; and memory stays bounded whatever the headers claim.
func TestImportRefusesHostileArchives(t *testing.T) {
	root := t.TempDir()
	store, archives := filepath.Join(root, "store"), filepath.Join(root, "archives")
	os.Mkdir(archives, 0o755)
	c := openStore(t, store)
	if _, out, err := importPaths(c, "", fixture); err != nil {
		t.Fatalf("import the fixture: %v\n%s", err, out)
	}
	before := storeState(t, c, store)

	l := newTestLayout("docker.io/library/hostile:v1", bytes.Repeat([]byte("layer "), 1000))
	layerName := blobPath(l.layer)
	tampered := append([]byte{}, l.entries[3].body...)
	tampered[10] ^= 1
	second := newTestLayout("docker.io/library/hostile:v2", []byte("another layer"))
	var idx struct {
		SchemaVersion int               `json:"schemaVersion"`
		Manifests     []json.RawMessage `json:"manifests"`
	}
	json.Unmarshal(l.entries[1].body, &idx)
	json.Unmarshal(second.entries[1].body, &struct{ Manifests *[]json.RawMessage }{&idx.Manifests})
	twoIndex, _ := json.Marshal(idx)
	twoImages := append(without(l.entries, "index.json", reg("index.json", twoIndex), reg(blobPath(second.config), second.configBody),
		reg(blobPath(second.manifest), second.manifestBody)), reg(blobPath(second.layer), []byte("another layeR")))
	save := fixtureEntries(t)
	saveWith := func(config string, layers ...string) []tarEntry {
		m, _ := json.Marshal([]map[string]any{{"Config": config, "RepoTags": []string{"hostile:v1"}, "Layers": layers}})
		return without(save, "manifest.json", reg("manifest.json", m))
	}
	var saveCfg, saveLayer string
	var saveCfgBody []byte
	for _, e := range save {
		switch {
		case strings.HasSuffix(e.name, ".json") && !strings.Contains(e.name, "/") && e.name != "manifest.json":
			saveCfg, saveCfgBody = e.name, e.body
		case strings.HasSuffix(e.name, "/layer.tar"):
			saveLayer = e.name
		}
	}

	cases := []struct {
		name    string
		entries []tarEntry
		sparse  *tarEntry // a last member of this claimed size, the archive made that long with a hole
		cut     int       // bytes cut from the end of the archive
		want    string
	}{
		{name: "absolute path", entries: append(l.entries, reg("/etc/wharf-escape", []byte("x"))), want: "leaves the archive"},
		{name: "dot-dot", entries: append(l.entries, reg("blobs/../../wharf-escape", []byte("x"))), want: "leaves the archive"},
		{name: "symlink out", entries: without(l.entries, layerName, tarEntry{typ: tar.TypeSymlink, name: layerName, link: "../../../../etc/passwd"}), want: "leaves the archive"},
		{name: "absolute symlink", entries: without(l.entries, layerName, tarEntry{typ: tar.TypeSymlink, name: layerName, link: "/etc/passwd"}), want: "not in the archive"},
		{name: "hard link out", entries: without(l.entries, layerName, tarEntry{typ: tar.TypeLink, name: layerName, link: "../../etc/passwd"}), want: "leaves the archive"},
		{name: "absolute hard link", entries: without(l.entries, layerName, tarEntry{typ: tar.TypeLink, name: layerName, link: "/etc/passwd"}), want: "leaves the archive"},
		{name: "symlink loop", entries: without(l.entries, layerName, tarEntry{typ: tar.TypeSymlink, name: layerName, link: l.layer.Encoded()}), want: "too many links"},
		{name: "1 TiB header, archive ends", entries: append(l.entries, tarEntry{typ: tar.TypeReg, name: "big", size: 1 << 40}), want: "unexpected EOF"},
		{name: "1 TiB layer", entries: without(l.entries, layerName), sparse: &tarEntry{typ: tar.TypeReg, name: layerName, size: 1 << 40}, want: "1099511627776 bytes in the archive"},
		{name: "1 TiB index.json", entries: without(l.entries, "index.json"), sparse: &tarEntry{typ: tar.TypeReg, name: "index.json", size: 1 << 40}, want: "over the"},
		{name: "1 TiB docker layer", entries: without(save, saveLayer), sparse: &tarEntry{typ: tar.TypeReg, name: saveLayer, size: 1 << 40}, want: "1099511627776"},
		{name: "very long name", entries: append([]tarEntry{{typ: tar.TypeXHeader, name: "path", body: []byte(strings.Repeat("n/", 1<<20))}}, l.entries...), want: "header field too long"},
		{name: "truncated", entries: l.entries, cut: 1300, want: "unexpected EOF"},
		{name: "blob bytes not its name", entries: without(l.entries, layerName, reg(layerName, tampered)), want: "digest invalid"},
		{name: "second image tampered", entries: twoImages, want: "digest invalid"},
		{name: "index names a missing manifest", entries: without(l.entries, blobPath(l.manifest)), want: "does not exist"},
		{name: "manifest names a missing blob", entries: without(l.entries, layerName), want: "not in the archive"},
		{name: "docker config not its image ID", entries: without(save, saveCfg, reg(saveCfg, append(bytes.Clone(saveCfgBody), ' '))), want: "digest invalid"},
		{name: "manifest.json config escapes", entries: saveWith("../../etc/passwd", saveLayer), want: "leaves the archive"},
		{name: "manifest.json layer absolute", entries: saveWith(saveCfg, "/etc/passwd"), want: "leaves the archive"},
		{name: "manifest.json layer escapes", entries: saveWith(saveCfg, "x/../../../etc/passwd"), want: "leaves the archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(archives, strings.ReplaceAll(tc.name, " ", "_")+".tar")
			b := tarBytes(tc.entries)
			if tc.cut > 0 {
				b = b[:len(b)-tc.cut]
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.sparse != nil {
				appendSparse(t, p, *tc.sparse)
			}
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			_, out, err := importPaths(c, "", p)
			runtime.ReadMemStats(&m1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("import: %v, want an error saying %q\n%s", err, tc.want, out)
			}
			if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > importAllocLimit {
				t.Errorf("the import allocated %d MiB", alloc>>20)
			}
			if after := storeState(t, c, store); !reflect.DeepEqual(after, before) {
				t.Errorf("the store changed:\nbefore %v\nafter  %v", before, after)
			}
			if got := dirNames(t, root); !reflect.DeepEqual(got, []string{"archives", "store"}) {
				t.Errorf("written outside the store: %v", got)
			}
			os.Remove(p)
			if got := dirNames(t, archives); len(got) != 0 {
				t.Errorf("written beside the archive: %v", got)
			}
		})
	}
	if rep, err := inspect.Verify(context.Background(), c, inspect.VerifyOptions{}); err != nil || rep.Checked == 0 || len(rep.Corrupt) != 0 {
		t.Errorf("verify after the hostile imports: %+v, %v", rep, err)
	}
}

// appendSparse adds a member of e.size bytes at the end of the archive at
// path without writing them: the file gets a hole, read as zeros, which
// also end the archive.
func appendSparse(t *testing.T, path string, e tarEntry) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)-1024] // drop the end-of-archive blocks
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Typeflag: e.typ, Name: e.name, Size: e.size, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	b = append(b, hdr.Bytes()...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(b))+e.size+1024); err != nil {
		t.Skipf("the file system holds no sparse file of %d bytes: %v", e.size, err)
	}
}

// storeState is what c, the store in dir, holds, as a client and an
// operator see it: its tags and their digests, its content files and
// their sizes, its totals, and what is left in tmp/ and uploads/.
func storeState(t *testing.T, c *cache.Cache, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && !fi.IsDir() && !strings.HasPrefix(rel, "index"+string(filepath.Separator)) {
			state["file "+rel] = fmt.Sprint(fi.Size(), " bytes")
		}
		return nil
	})
	tags, err := c.TaggedImages()
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tags {
		state["tag "+tg.String()] = tg.Descriptor.Digest.String()
	}
	st, err := inspect.StatsOf(c)
	if err != nil {
		t.Fatal(err)
	}
	state["totals"] = fmt.Sprintf("%d bytes, %d items, %d manifests, %d tags", st.Bytes, st.Items, st.Manifests, st.Tags)
	return state
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}
