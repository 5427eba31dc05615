package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/archive"
	"github.com/wharf-mirror/wharf/warm"
)

// warmCmd fills the store from the upstream with the images a list names,
// through the same read path a pull takes (every digest verified), so that
// wharf export can carry them, or a site starts with them cached.
//
// warm opens the data directory itself, like verify and gc, rather than
// pulling through a running wharf: it is one step on the connected side of
// an air gap (warm, then export, no server to start), it takes serve's own
// configuration so the names it stores are the ones serve looks up, and a
// failure is reported per image with the store's own error.
func warmCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf warm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	platforms := fs.String("platform", "", "platforms to fetch of multi-platform images, e.g. linux/amd64,linux/arm64 (default all); a line's own list wins")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: wharf warm [flags] LIST   (LIST "-" is stdin)

LIST has one image per line, optionally followed by platforms:
  alpine:3.20
  ghcr.io/owner/tool@sha256:…
  nginx:1.27  linux/amd64,linux/arm64
Blank lines and lines starting with # are skipped. Names are read as a
client pulling through wharf names them, under serve's configuration (give
warm the same --config, WHARF_* and flags). wharf serve must be stopped:
warm opens the data directory itself.

Flags:
`)
		sf.PrintDefaults(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("warm takes one list file")
	}
	defPlatforms, err := archive.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	items, err := readWarmList(fs.Arg(0), defPlatforms)
	if err != nil {
		return err
	}
	c, ups, err := sf.open(ctx, stderr, storeUse{fetch: true})
	if err != nil {
		return err
	}
	defer ups.Close()
	defer c.Close()
	return warm.List(ctx, c.Cache, archiveNamer(ups.set), items, stdout, newStatusLine(stderr))
}

// readWarmList reads the list at path ("-" is stdin).
func readWarmList(path string, defPlatforms []ocispec.Platform) ([]archive.ListItem, error) {
	if path == "-" {
		return archive.ReadList(os.Stdin, path, defPlatforms)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image list: %w", err)
	}
	defer f.Close()
	return archive.ReadList(f, path, defPlatforms)
}
