package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/wharf-mirror/wharf/archive"
	"github.com/wharf-mirror/wharf/oci"
)

// export writes cached images for an air gap (see archive.Export).
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
	if f := archive.Format(*format); f != archive.OCI && f != archive.Docker {
		return fmt.Errorf("--format %q: want oci or docker", *format)
	}
	plat, err := oci.ParsePlatform(*platform)
	if err != nil {
		return err
	}
	c, ups, err := sf.open(ctx, stderr, storeUse{mustExist: true})
	if err != nil {
		return err
	}
	defer ups.Close()
	defer c.Close()

	report := stdout
	if *output == "-" {
		report = stderr // stdout is the archive
	}
	start := time.Now()
	n, err := archive.Export(ctx, c.Cache, archive.ExportOptions{
		Images: fs.Args(), All: *all, Name: archiveNamer(ups.set),
		Format: archive.Format(*format), Platform: plat, Output: *output, Stdout: stdout, Report: report,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(report, "wrote %d images, %d files, %s to %s as %s in %s\n",
		n.Images, n.Files, human(n.Bytes), *output, *format, time.Since(start).Round(time.Millisecond))
	return nil
}
