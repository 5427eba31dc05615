package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
)

// ExportStore is what an export reads of a store, asking no upstream:
// the tags it holds, and stored manifests and content.
type ExportStore interface {
	Resolve(repo cache.Repo, tag string) (cache.Tagged, error)
	TaggedImages() ([]cache.Tagged, error)
	Repositories() ([]cache.Repo, error) // for a hint when a name is not found

	StoredManifest(d digest.Digest) (*cache.Manifest, error)
	HasContent(d digest.Digest) (int64, bool)
	// OpenContent opens a blob; the export re-hashes it as it copies.
	OpenContent(d digest.Digest) (*cache.Blob, error)
}

// Format is what an export writes.
type Format string

const (
	// OCI is an OCI image layout: a directory, or a tar when the output
	// ends in .tar or is "-".
	OCI Format = "oci"
	// Docker is a tarball docker load takes: an OCI layout with docker
	// save's manifest.json beside it, one platform per image.
	Docker Format = "docker"
)

// ExportOptions say what to export, and where.
type ExportOptions struct {
	Images []string // names, read by Name
	All    bool     // every tagged image in the store, before Images
	Name   Namer

	Format Format
	// Platform is the image docker format writes of a multi-platform one.
	Platform ocispec.Platform
	// Output is a path, or "-" for Stdout.
	Output string
	Stdout io.Writer
	// Report gets a line per image exported.
	Report io.Writer
}

// Exported counts what an export wrote.
type Exported struct {
	Images, Files int
	Bytes         int64
}

// Export writes images of st to an OCI image layout (a directory or a
// tar) or to a tarball docker load accepts, to carry them across an air
// gap. Every image is found and walked before the first byte is written,
// so a missing blob refuses the export rather than leaving half of it;
// content is streamed from the store's files and re-hashed on the way,
// so a damaged file stops the export instead of travelling.
func Export(ctx context.Context, st ExportStore, opts ExportOptions) (Exported, error) {
	selected, err := selectImages(st, opts)
	if err != nil {
		return Exported{}, err
	}
	docker := opts.Format == Docker
	var plans []*exportImage
	for _, t := range selected {
		p, err := planExport(st, t, docker, opts.Platform)
		if err != nil {
			return Exported{}, fmt.Errorf("%s: %w", t, err)
		}
		plans = append(plans, p)
	}
	s, err := openSink(opts.Output, docker, opts.Stdout)
	if err != nil {
		return Exported{}, err
	}
	n, err := writeExport(ctx, st, s, plans, docker)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Exported{}, err
	}
	for _, p := range plans {
		note := ""
		if p.missing > 0 {
			note = fmt.Sprintf("  (%d of its index's platforms are not in the store and were left out)", p.missing)
		}
		fmt.Fprintf(opts.Report, "exported %s  %s%s\n", p.name(), p.top.Digest, note)
	}
	n.Images = len(plans)
	return n, nil
}

// selectImages finds what opts names in the store.
func selectImages(st ExportStore, opts ExportOptions) ([]cache.Tagged, error) {
	var selected []cache.Tagged
	if opts.All {
		all, err := st.TaggedImages()
		if err != nil {
			return nil, err
		}
		selected = all
	}
	for _, a := range opts.Images {
		ref, err := opts.Name(a)
		if err != nil {
			return nil, err
		}
		t, err := resolveStored(st, ref)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w%s", a, ref.Repo, err, storedElsewhere(st, ref.Repo))
		}
		selected = append(selected, t)
	}
	if len(selected) == 0 {
		return nil, errors.New("the store holds no tagged image")
	}
	return selected, nil
}

// resolveStored finds ref in the store, by digest or by tag, without an
// upstream.
func resolveStored(st ExportStore, ref Name) (cache.Tagged, error) {
	if ref.Digest != "" {
		m, err := st.StoredManifest(ref.Digest)
		if err != nil {
			return cache.Tagged{}, err
		}
		return cache.Tagged{Repo: ref.Repo, Tag: ref.Tag, Descriptor: m.Descriptor}, nil
	}
	return st.Resolve(ref.Repo, ref.Tag)
}

// storedElsewhere is a hint for a repository the store lacks but holds
// under another upstream, or with or without Docker Hub's library/: the
// store was filled under another configuration than the one given.
func storedElsewhere(st ExportStore, want cache.Repo) string {
	repos, err := st.Repositories()
	if err != nil {
		return ""
	}
	bare := strings.TrimPrefix(want.Path, "library/")
	var found []string
	for _, r := range repos {
		if r != want && strings.TrimPrefix(r.Path, "library/") == bare {
			found = append(found, r.String())
		}
	}
	if len(found) == 0 {
		return ""
	}
	return "; the store holds " + strings.Join(found, ", ") + ": give export the configuration it was filled with " +
		"(the same config file, WHARF_* and flags as warm and serve)"
}

// openSink opens the output: docker format and OCI paths ending in .tar
// (or -) are tar streams, other OCI paths a layout directory.
func openSink(output string, docker bool, stdout io.Writer) (sink, error) {
	if output == "-" {
		return newTarSink(stdout, nil), nil
	}
	if !docker && !strings.HasSuffix(output, ".tar") {
		return newDirSink(output)
	}
	f, err := os.Create(output)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	return newTarSink(f, f), nil
}
