package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/wharf-mirror/wharf/archive"
)

// importCmd takes OCI image layouts and docker save tarballs into the
// store (see archive.Import).
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
	if err := archive.CheckPaths(fs.Args()); err != nil { // before a store is created
		return err
	}
	c, ups, err := sf.open(ctx, stderr, storeUse{})
	if err != nil {
		return err
	}
	defer ups.Close()
	defer c.Close()

	start := time.Now()
	n, err := archive.Import(ctx, c.Cache, fs.Args(), archive.ImportOptions{Name: archiveNamer(ups.set), Repo: *repo, Out: stdout, Warn: stderr})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d tags in %s: %d blobs new (%s), %d already stored",
		n.Tags, time.Since(start).Round(time.Millisecond), n.NewBlobs, human(n.Bytes), n.OldBlobs)
	if n.Skipped > 0 {
		fmt.Fprintf(stdout, "; %d images skipped", n.Skipped)
	}
	fmt.Fprintln(stdout)
	return nil
}
