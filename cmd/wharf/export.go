package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/proxy"
)

// export writes cached images to an OCI image layout (a directory or a
// tar) or to a tarball docker load accepts, to carry them across an air
// gap. Content is streamed from the store's files and re-hashed on the
// way, so a damaged file stops the export instead of travelling.
func export(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	format := fs.String("format", "oci", `"oci" (an OCI image layout: a directory, or a tar when --output ends in .tar or is -) or "docker" (a docker save tarball)`)
	output := fs.String("output", "", "where to write: a path, or - for stdout")
	all := fs.Bool("all", false, "export every tagged image in the store")
	platform := fs.String("platform", "linux/"+runtime.GOARCH, "the platform of multi-platform images to write in docker format (docker load takes one)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: wharf export [flags] --output PATH|- (IMAGE... | --all)\n\nwharf serve must be stopped: export opens the data directory itself.\n\nFlags:\n")
		sf.PrintDefaults(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output == "" || (fs.NArg() == 0) == !*all {
		fs.Usage()
		return errors.New("export needs --output and either images or --all")
	}
	if *format != "oci" && *format != "docker" {
		return fmt.Errorf("--format %q: want oci or docker", *format)
	}
	plat, err := cache.ParsePlatform(*platform)
	if err != nil {
		return err
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
	if _, err := os.Stat(cfg.Storage.Dir); err != nil {
		return fmt.Errorf("data directory: %w", err) // rather than create an empty store
	}
	c, err := openDataDir(cfg.Storage.Dir, stderr)
	if err != nil {
		return err
	}
	defer c.Close()

	var selected []cache.Tagged
	if *all {
		if selected, err = c.TaggedImages(); err != nil {
			return err
		}
	}
	for _, a := range fs.Args() {
		ref, err := proxy.ParseImage(ups.set, a)
		if err != nil {
			return err
		}
		t, err := resolveStored(c, ref)
		if err != nil {
			return fmt.Errorf("%s (%s): %w%s", a, ref.Repo, err, storedElsewhere(c, ref.Repo))
		}
		selected = append(selected, t)
	}
	if len(selected) == 0 {
		return errors.New("the store holds no tagged image")
	}
	docker := *format == "docker"
	var plans []*exportImage
	for _, t := range selected {
		p, err := planExport(c, t, docker, plat)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		plans = append(plans, p)
	}

	report := stdout
	if *output == "-" {
		report = stderr // stdout is the archive
	}
	s, err := openSink(*output, docker, stdout)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := writeExport(ctx, c, s, plans, docker)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, p := range plans {
		note := ""
		if p.missing > 0 {
			note = fmt.Sprintf("  (%d of its index's platforms are not in the store and were left out)", p.missing)
		}
		fmt.Fprintf(report, "exported %s  %s%s\n", p.name(), p.top.Digest, note)
	}
	fmt.Fprintf(report, "wrote %d images, %d files, %s to %s as %s in %s\n",
		len(plans), n.files, human(n.bytes), *output, *format, time.Since(start).Round(time.Millisecond))
	return nil
}

// resolveStored finds ref in the store, by digest or by tag, without an
// upstream.
func resolveStored(c *cache.Cache, ref proxy.Image) (cache.Tagged, error) {
	if ref.Digest != "" {
		m, err := c.StoredManifest(ref.Digest)
		if err != nil {
			return cache.Tagged{}, err
		}
		return cache.Tagged{Repo: ref.Repo, Tag: ref.Tag, Descriptor: m.Descriptor}, nil
	}
	return c.Resolve(ref.Repo, ref.Tag)
}

// storedElsewhere is a hint for a repository the store lacks but holds
// under another upstream, or with or without Docker Hub's library/: the
// store was filled under another configuration than the one given.
func storedElsewhere(c *cache.Cache, want cache.Repo) string {
	repos, err := c.Repositories()
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
