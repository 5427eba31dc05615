package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
)

// ImportStore is what an import writes into a store: verified content,
// pinned (the store holds the only copy), and manifests with local tags
// (a pull finds them without asking an upstream), as a push stores them.
// The import stages and verifies; the store's doors take only what has
// passed (*cache.Cache is one).
type ImportStore interface {
	HasContent(d digest.Digest) (int64, bool)
	// TempFile creates a file to stage a blob in for Ingest.
	TempFile() (*os.File, error)
	// Ingest makes f, holding size bytes verified to hash to d, the
	// stored content d; on failure f is left to the caller.
	Ingest(ctx context.Context, f *os.File, d digest.Digest, size int64, pinned bool) error
	// Pin keeps stored content from eviction, as if imported.
	Pin(d digest.Digest) error
	// IngestManifest stores body, which must hash to d, and points repo's
	// tag at it (tag "" for none: an index's child); the import has
	// judged it (checkManifest) first.
	IngestManifest(repo cache.Repo, tag, mediaType string, d digest.Digest, body []byte) (ocispec.Descriptor, error)
}

// ImportOptions say how to read an import's names, and where to report.
type ImportOptions struct {
	Name Namer
	// Repo is the repository for images an OCI layout names by a bare
	// tag (ref.name "v1", as skopeo and buildkit write it).
	Repo string
	Out  io.Writer // a line per image imported or skipped
	Warn io.Writer // a line per image on a registry the store does not serve
}

// Imported counts what an import stored.
type Imported struct {
	Tags, NewBlobs, OldBlobs, Skipped int
	Bytes                             int64 // of the new blobs
}

// CheckPaths opens each path as an import would, to refuse an unreadable
// or compressed one before a store is opened (or created).
func CheckPaths(paths []string) error {
	for _, p := range paths {
		src, err := openSource(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		src.close()
	}
	return nil
}

// Import takes OCI image layouts (directories or tars) and docker save
// tarballs into st, verifying every digest, so that a wharf with no
// upstream serves the images. It reads the archives twice: a first pass
// checks everything and stores nothing (see dryRun), so an archive
// refused for anything it contains leaves the store as it was; then the
// second stores them, checking again as the bytes go in. An import that
// would store no image at all is an error.
func Import(ctx context.Context, st ImportStore, paths []string, opts ImportOptions) (Imported, error) {
	check := &importer{ctx: ctx, st: st, name: opts.Name, repo: opts.Repo, out: io.Discard, warn: io.Discard, dry: newDryRun()}
	for _, p := range paths {
		if err := check.importPath(p); err != nil {
			return Imported{}, fmt.Errorf("%s: %w (nothing was imported)", p, err)
		}
	}
	if check.n.Tags == 0 {
		return Imported{}, nothingToImport(check.n.Skipped, check.foreign)
	}
	im := &importer{ctx: ctx, st: st, name: opts.Name, repo: opts.Repo, out: opts.Out, warn: opts.Warn}
	for _, p := range paths {
		if err := im.importPath(p); err != nil {
			return im.n, fmt.Errorf("%s: %w", p, err)
		}
	}
	return im.n, nil
}

// importer carries one pass of an import: its store, naming and counts.
type importer struct {
	ctx  context.Context
	st   ImportStore
	name Namer
	repo string
	out  io.Writer
	warn io.Writer // Warn on the pass that stores, io.Discard on the check
	dry  *dryRun   // set on the first pass, which checks and stores nothing

	n       Imported
	foreign int // of n.Skipped, those on registries the store does not serve
}

// importPath reads an OCI layout when there is one (docker 25 and later
// write both, and the layout keeps the manifests' digests), otherwise
// docker save's manifest.json.
func (im *importer) importPath(p string) error {
	src, err := openSource(p)
	if err != nil {
		return err
	}
	defer src.close()
	if rc, _, err := src.open(ocispec.ImageIndexFile); err == nil {
		rc.Close()
		return im.importLayout(src)
	}
	if rc, _, err := src.open(dockerManifestFile); err == nil {
		rc.Close()
		return im.importDockerSave(src)
	}
	return fmt.Errorf("neither an OCI image layout (index.json) nor a docker save tarball (manifest.json)")
}

// image reads an archive's name for an image as serve reads it, under
// the Namer the import is given (this wharf's upstreams, not the
// exporter's). A name on a registry the store does not serve would be
// stored where serve never looks: it is nil, with a warning naming the
// registry and the setting to add.
func (im *importer) image(name string) (*Name, error) {
	img, err := im.name(name)
	var unserved *NotServedError
	if errors.As(err, &unserved) {
		fmt.Fprintf(im.warn, "warning: skipped %s, which serve would never find: %v\n", name, unserved.Reason)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &img, nil
}

// blob stores one blob from the source unless the store has it, checking
// the digest (and size when known) as the bytes pass.
func (im *importer) blob(src source, name string, d digest.Digest, size int64) error {
	if _, ok := im.st.HasContent(d); ok {
		im.n.OldBlobs++
		if im.dry != nil {
			return nil
		}
		return im.st.Pin(d)
	}
	rc, n, err := src.open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s is not in the archive", d)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	if size < 0 {
		size = n
	}
	if n != size { // refused before reading: a header may claim a terabyte
		return fmt.Errorf("blob %s is %d bytes in the archive, the manifest says %d: %w", d, n, size, cache.ErrSizeInvalid)
	}
	if err := im.putBlob(d, size, rc); err != nil {
		return err
	}
	im.n.NewBlobs++
	im.n.Bytes += size
	return nil
}

// tag stores the manifest body (which must hash to want, when set) and
// points ref's tag at it, reporting it.
func (im *importer) tag(ref Name, mediaType string, want digest.Digest, body []byte) error {
	if im.dry != nil {
		im.n.Tags++ // what the second pass will import
		return im.dry.manifest(im.st, ref.Tag, mediaType, want, body)
	}
	desc, err := im.putManifest(ref.Repo, ref.Tag, mediaType, want, body)
	if err != nil {
		return err
	}
	im.n.Tags++
	fmt.Fprintf(im.out, "imported %s  %s\n", ref, desc.Digest)
	return nil
}

// putBlob stores the bytes r yields as d, or on the first pass checks
// them. Content stored already is pinned, and r not read.
func (im *importer) putBlob(d digest.Digest, size int64, r io.Reader) error {
	if im.dry != nil {
		return im.dry.blob(im.ctx, d, size, r)
	}
	if _, ok := im.st.HasContent(d); ok {
		return im.st.Pin(d)
	}
	f, err := im.st.TempFile()
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := copyVerified(im.ctx, f, d, size, r)
	if err == nil {
		err = im.st.Ingest(im.ctx, f, d, n, true)
	}
	if err != nil {
		os.Remove(f.Name()) // nothing staged outlives a failed import
		return fmt.Errorf("import %s: %w", d, err)
	}
	return nil
}

// putChild stores an index's child manifest, untagged, or on the first
// pass checks it.
func (im *importer) putChild(repo cache.Repo, mediaType string, want digest.Digest, body []byte) error {
	if im.dry != nil {
		return im.dry.manifest(im.st, "", mediaType, want, body)
	}
	_, err := im.putManifest(repo, "", mediaType, want, body)
	return err
}

// putManifest stores body, judged as the first pass judged it, once
// every blob it references is stored (blobs go in first, so a tag never
// points at an incomplete image).
func (im *importer) putManifest(repo cache.Repo, tag, mediaType string, want digest.Digest, body []byte) (ocispec.Descriptor, error) {
	d, err := checkManifest(tag, mediaType, want, body, im.st.HasContent)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return im.st.IngestManifest(repo, tag, mediaType, d, body)
}

// skip counts an image not imported; foreign is one on a registry the
// store does not serve (warned already by image).
func (im *importer) skip(foreign bool) {
	im.n.Skipped++
	if foreign {
		im.foreign++
	}
}

// nothingToImport is the error of an import that would store no image: an
// exit status of 0 would let a script carry on with an empty mirror.
func nothingToImport(skipped, foreign int) error {
	if foreign == skipped && skipped > 0 {
		return fmt.Errorf("nothing imported: all %d images are on registries this wharf does not mirror (see the warnings above); "+
			"give import the configuration serve runs with (the same config file, WHARF_* and flags)", skipped)
	}
	if skipped > 0 {
		return fmt.Errorf("nothing imported: all %d images were skipped, their archive names none "+
			"(an OCI layout whose ref.name is a bare tag such as \"v1\": give the repository with --repo, e.g. --repo myteam/app; "+
			"a docker save of an untagged image: tag it and save it again)", skipped)
	}
	return errors.New("nothing imported: the archives list no images")
}
