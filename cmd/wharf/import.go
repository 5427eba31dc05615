package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/proxy"
)

// importCmd takes an OCI image layout (a directory or a tar) or a docker
// save tarball into the store, verifying every digest, so that a wharf
// with no upstream serves the images. They are stored as a push would
// store them: pinned (the store holds the only copy), with local tags (a
// pull finds them without asking an upstream).
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	repo := fs.String("repo", "", "repository for images an OCI layout names by tag only (ref.name \"v1\"), e.g. myteam/app")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: wharf import [flags] PATH...

PATH is an OCI image layout (a directory or a tar, as wharf export writes),
or a docker save tarball (any docker version). Give import the serving
wharf's configuration (the same --config, WHARF_* and flags): names are read
as serve reads them, under its upstreams, so "docker.io/library/alpine:3"
lands where a pull of alpine:3 looks. An image on a registry it does not
mirror is skipped with a warning. wharf serve must be stopped.

Flags:
`)
		sf.PrintDefaults(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import takes at least one path")
	}
	for _, p := range fs.Args() { // refuse an unreadable path before creating a store
		src, err := openSource(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		src.close()
	}
	cfg, err := sf.load(stderr)
	if err != nil {
		return err
	}
	ups, err := newUpstreams(cfg, nil, quietLogger(stderr))
	if err != nil {
		return err
	}
	defer ups.Close()
	c, err := openDataDir(cfg.Storage.Dir, stderr)
	if err != nil {
		return err
	}
	defer c.Close()

	im := &importer{ctx: ctx, c: c, ups: ups.set, repo: *repo, out: stdout, warn: stderr}
	start := time.Now()
	// Check every archive whole before storing anything (see dryRun).
	check := &importer{ctx: ctx, c: c, ups: ups.set, repo: *repo, out: io.Discard, warn: io.Discard, dry: newDryRun()}
	for _, p := range fs.Args() {
		if err := check.importPath(p); err != nil {
			return fmt.Errorf("%s: %w (nothing was imported)", p, err)
		}
	}
	if check.tags == 0 {
		return nothingToImport(check.skipped, check.foreign)
	}
	for _, p := range fs.Args() {
		if err := im.importPath(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	fmt.Fprintf(stdout, "imported %d tags in %s: %d blobs new (%s), %d already stored",
		im.tags, time.Since(start).Round(time.Millisecond), im.newBlobs, human(im.bytes), im.oldBlobs)
	if im.skipped > 0 {
		fmt.Fprintf(stdout, "; %d images skipped", im.skipped)
	}
	fmt.Fprintln(stdout)
	return nil
}

// importer carries one import's store, naming and counts.
type importer struct {
	ctx  context.Context
	c    *cache.Cache
	ups  proxy.Upstreams // names are read as serve reads them (proxy.ParseImage)
	repo string
	out  io.Writer
	warn io.Writer // stderr on the pass that stores, io.Discard on the check
	dry  *dryRun   // set on the first pass, which checks and stores nothing

	tags, newBlobs, oldBlobs, skipped int
	foreign                           int // of skipped, those on registries this wharf does not mirror
	bytes                             int64
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

// blob stores one blob from the source unless the store has it, checking
// the digest (and size when known) as the bytes pass.
func (im *importer) blob(src source, name string, d digest.Digest, size int64) error {
	if _, ok := im.c.HasContent(d); ok {
		im.oldBlobs++
		if im.dry != nil {
			return nil
		}
		return im.c.ImportBlob(im.ctx, d, size, nil) // not read: it pins what is stored
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
	im.newBlobs++
	im.bytes += size
	return nil
}

// tag stores the manifest body (which must hash to want, when set) and
// points ref's tag at it, reporting it.
func (im *importer) tag(ref proxy.Image, mediaType string, want digest.Digest, body []byte) error {
	if im.dry != nil {
		im.tags++ // what the second pass will import
		return im.dry.manifest(im.c, mediaType, want, body)
	}
	desc, err := im.c.ImportManifest(ref.Repo, ref.Tag, mediaType, want, body)
	if err != nil {
		return err
	}
	im.tags++
	fmt.Fprintf(im.out, "imported %s  %s\n", ref, desc.Digest)
	return nil
}

// putBlob stores the bytes r yields as d, or on the first pass checks them.
func (im *importer) putBlob(d digest.Digest, size int64, r io.Reader) error {
	if im.dry != nil {
		return im.dry.blob(d, size, r)
	}
	return im.c.ImportBlob(im.ctx, d, size, r)
}

// putChild stores an index's child manifest, untagged, or on the first
// pass checks it.
func (im *importer) putChild(repo cache.Repo, mediaType string, want digest.Digest, body []byte) error {
	if im.dry != nil {
		return im.dry.manifest(im.c, mediaType, want, body)
	}
	_, err := im.c.ImportManifest(repo, "", mediaType, want, body)
	return err
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
