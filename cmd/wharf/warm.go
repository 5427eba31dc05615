package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/proxy"
)

// warm fills the store from the upstream with the images a list names,
// through the same read path a pull takes (every digest verified), so that
// wharf export can carry them, or a site starts with them cached.
//
// warm opens the data directory itself, like verify and gc, rather than
// pulling through a running wharf: it is one step on the connected side of
// an air gap (warm, then export, no server to start), it takes serve's own
// configuration so the names it stores are the ones serve looks up, and a
// failure is reported per image with the store's own error.
func warm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	defPlatforms, err := parsePlatforms(*platforms)
	if err != nil {
		return err
	}
	items, err := readWarmList(fs.Arg(0), defPlatforms)
	if err != nil {
		return err
	}
	cfg, err := sf.load(stderr)
	if err != nil {
		return err
	}
	log := quietLogger(stderr)
	// Every configured upstream, as serve has them: images on any of them
	// can be warmed, under the names serve looks them up by.
	ups, err := newUpstreams(cfg, nil, log)
	if err != nil {
		return err
	}
	defer ups.Close()
	c, err := cache.Open(cache.Options{
		Dir: cfg.Storage.Dir, Origins: ups.origins, TagTTL: cfg.Upstream.TagTTL.Std(), Logger: log,
	})
	if err != nil {
		return dataDirError(cfg.Storage.Dir, err)
	}
	defer c.Close()

	line := newStatusLine(stderr)
	var total cache.WarmReport
	var failed []string
	start := time.Now()
	for i, it := range items {
		ref, err := proxy.ParseImage(ups.set, it.image)
		if err == nil {
			var bytes atomic.Int64
			show := func(n int64) {
				line.show("[%d/%d] %s  %s", i+1, len(items), it.image, human(bytes.Add(n)))
			}
			show(0)
			var rep cache.WarmReport
			rep, err = c.Warm(ctx, ref.Repo, ref.Ref(), it.platforms, show)
			total.Manifests += rep.Manifests
			total.Blobs += rep.Blobs
			total.Fetched += rep.Fetched
			total.Bytes += rep.Bytes
			if err == nil {
				line.clear()
				fmt.Fprintf(stdout, "ok      %s  %s  %d blobs, %d fetched (%s)\n", it.image, rep.Descriptor.Digest, rep.Blobs, rep.Fetched, human(rep.Bytes))
			}
		}
		if err != nil {
			line.clear()
			fmt.Fprintf(stdout, "FAILED  %s: %v\n", it.image, err)
			failed = append(failed, it.image)
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stdout, "warmed %d of %d images in %s: %d manifests, %d blobs, %d fetched (%s)",
		len(items)-len(failed), len(items), time.Since(start).Round(time.Millisecond),
		total.Manifests, total.Blobs, total.Fetched, human(total.Bytes))
	if len(failed) > 0 {
		fmt.Fprintf(stdout, "; %d failed", len(failed))
	}
	fmt.Fprintln(stdout)
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images failed: %s", len(failed), len(items), strings.Join(failed, ", "))
	}
	return ctx.Err()
}

// warmItem is one line of the list.
type warmItem struct {
	image     string
	platforms []ocispec.Platform
}

func readWarmList(path string, defPlatforms []ocispec.Platform) ([]warmItem, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("image list: %w", err)
		}
		defer f.Close()
		r = f
	}
	var items []warmItem
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		it := warmItem{image: fields[0], platforms: defPlatforms}
		switch {
		case len(fields) == 2:
			ps, err := parsePlatforms(fields[1])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			it.platforms = ps
		case len(fields) > 2:
			return nil, fmt.Errorf("%s:%d: want IMAGE [PLATFORM,...], got %d fields", path, n, len(fields))
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("image list: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("image list %s names no image", path)
	}
	return items, nil
}

// parsePlatforms reads "linux/amd64,linux/arm64/v8" ("" is none: all).
func parsePlatforms(s string) ([]ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	var out []ocispec.Platform
	for _, part := range strings.Split(s, ",") {
		p, err := cache.ParsePlatform(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// statusLine redraws one line on a terminal, at most ten times a second,
// and stays silent otherwise (a log file gets the summary lines only).
type statusLine struct {
	p    *progress
	mu   sync.Mutex // show is called from the fetching goroutines
	last time.Time
}

func newStatusLine(w io.Writer) *statusLine {
	return &statusLine{p: newProgress(w)}
}

func (s *statusLine) show(format string, args ...any) {
	if !s.p.tty {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.last) < 100*time.Millisecond {
		return
	}
	s.last = time.Now()
	fmt.Fprintf(s.p.w, "\r\033[K"+format, args...)
}

func (s *statusLine) clear() {
	if s.p.tty {
		fmt.Fprint(s.p.w, "\r\033[K")
	}
}
