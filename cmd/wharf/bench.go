package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	loadgen "github.com/wharf-mirror/wharf/cmd/wharf/internal/bench"
	"github.com/wharf-mirror/wharf/config"
)

const benchUsage = `Usage:
  wharf bench pull --registry URL [flags] IMAGE...
  wharf bench push --registry URL --repo REPO [flags]
  wharf bench storm --registry URL [flags] IMAGE...

Load-test a registry or a mirror (wharf, or any other) through the registry
API, as many docker daemons would: no container engine in the way.

pull: each client resolves an IMAGE (repo:tag or repo@digest, the registry's
host in front or not) with the daemon's Accept headers, follows an index to
the --platform manifest, fetches the config and layers --parallel at a time,
verifies every digest and size, and discards the bytes. Clients take the
IMAGEs in turn.

push: each client generates --layers random layers of --layer-size bytes,
uploads them (monolithically, or in --chunked PATCHes) and puts a manifest
tagged <tag-prefix><client>-<n>.

storm: mixed load, to find what breaks rather than to measure speed. Each
client pulls the IMAGEs in turn (one written repo:tag@digest is resolved by
its tag, which must name the digest); every --push-every-th operation pushes
a small random image to --push-repo; every --delete-every-th pulls the
client's oldest push back by digest, deletes it (tag, manifest, blobs) and
checks that its manifest answers 404. Every request is
classified: ok, v2_error (a non-2xx with a v2 error body of known codes,
500 excepted) and abort (a body cut before its end) are clean; wrong_bytes
(a complete 2xx whose bytes are not the digest's), not_v2, http_500, hang
(no end within --hang-after), network, lost (a 404 for a pushed image),
resurrected (a 200 for a deleted one) and bad_manifest are not. At the end
of --duration clients finish the operations under way. The run exits 1 if
any request was unclean.

A run stops after --pulls/--pushes operations in all, or after --duration,
whichever comes first (neither: one operation per client). It prints
operations and bytes per second, latency percentiles by request kind and
errors by kind, as text or --json, and exits 1 if any operation failed.
A live progress line goes to stderr when it is a terminal.

Flags may be written -name or --name, before or after the IMAGEs.
`

// bench runs `wharf bench pull|push`.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return errors.New("bench: say pull, push or storm")
	}
	switch args[0] {
	case "pull":
		return benchPull(ctx, args[1:], stdout, stderr)
	case "push":
		return benchPush(ctx, args[1:], stdout, stderr)
	case "storm":
		return benchStorm(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	fmt.Fprint(stderr, benchUsage)
	return fmt.Errorf("bench: unknown command %q", args[0])
}

// benchCommon declares the flags pulls and pushes share.
type benchCommon struct {
	o            loadgen.Common
	json         bool
	passwordFile string
}

func (b *benchCommon) flags(fs *flag.FlagSet, plural string) *int {
	fs.StringVar(&b.o.Registry, "registry", "", "base URL of the registry under test: http://host:port or https://host:port (required)")
	fs.IntVar(&b.o.Clients, "clients", 1, "simulated clients working at once")
	ops := fs.Int(plural, 0, plural+" to make in all, shared by the clients")
	fs.DurationVar(&b.o.Duration, "duration", 0, "stop after this long (e.g. 30s); operations cut off count neither as done nor failed")
	fs.IntVar(&b.o.Parallel, "parallel", 3, "blobs one client moves at once (the docker daemon pulls 3 at a time)")
	fs.BoolVar(&b.json, "json", false, "print the result as JSON")
	fs.BoolVar(&b.o.Insecure, "insecure", false, "skip TLS certificate verification")
	fs.StringVar(&b.o.Username, "username", "", "user for Basic challenges and token requests; empty is anonymous")
	fs.StringVar(&b.passwordFile, "password-file", "", "file holding the password; trailing newlines are trimmed")
	return ops
}

// finish fills what the flags leave to code, after parsing.
func (b *benchCommon) finish(ops int, stderr io.Writer) error {
	if b.o.Registry == "" {
		return errors.New("--registry is required")
	}
	b.o.Ops = ops
	if ops == 0 && b.o.Duration == 0 {
		b.o.Ops = b.o.Clients
	}
	if b.passwordFile != "" {
		p, err := os.ReadFile(b.passwordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		b.o.Password = strings.TrimRight(string(p), "\r\n")
	}
	b.o.UserAgent = "wharf-bench/" + version
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.o.Progress = f
	}
	return nil
}

func (b *benchCommon) report(r *loadgen.Result, stdout io.Writer) error {
	if err := b.write(r, r, stdout); err != nil {
		return err
	}
	if r.Failed > 0 {
		return fmt.Errorf("bench: %d of %d %s failed", r.Failed, r.Failed+r.Ops, r.OpsName())
	}
	return nil
}

// parseImages parses the flags and returns the IMAGEs, at least one.
func (b *benchCommon) parseImages(fs *flag.FlagSet, args []string, ops int, stderr io.Writer) ([]string, error) {
	images, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if err := b.finish(ops, stderr); err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, errors.New("give at least one IMAGE to pull")
	}
	return images, nil
}

// write prints v as JSON with --json, else t as text.
func (b *benchCommon) write(v any, t interface{ WriteText(io.Writer) error }, stdout io.Writer) error {
	if b.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return t.WriteText(stdout)
}

func benchPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var b benchCommon
	var o loadgen.PullOptions
	fs := newBenchFlags("pull", stderr)
	ops := b.flags(fs, "pulls")
	fs.StringVar(&o.Platform, "platform", "linux/amd64", "platform picked from an index: os/arch[/variant]")
	fs.BoolVar(&o.ManifestsOnly, "manifests-only", false, "resolve the IMAGEs, fetch no blobs: measures manifest requests per second")
	fs.BoolVar(&o.NoVerify, "no-verify", false, "skip hashing (sizes are still checked), to measure a server's ceiling without the client's hashing")
	images, err := b.parseImages(fs, args, *ops, stderr)
	if err != nil {
		return err
	}
	o.Common, o.Images = b.o, images
	r, err := loadgen.Pull(ctx, o)
	if err != nil {
		return err
	}
	return b.report(r, stdout)
}

func benchPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var b benchCommon
	var o loadgen.PushOptions
	fs := newBenchFlags("push", stderr)
	ops := b.flags(fs, "pushes")
	size, chunk := config.ByteSize(16<<20), config.ByteSize(0)
	fs.StringVar(&o.Repo, "repo", "", "repository to push to (required)")
	fs.IntVar(&o.Layers, "layers", 1, "random layers per pushed image")
	fs.Var(&size, "layer-size", "bytes per layer (e.g. 64MiB)")
	fs.Var(&chunk, "chunked", "upload in PATCHes of this size (e.g. 8MiB); 0 uploads monolithically, in one PUT")
	fs.StringVar(&o.TagPrefix, "tag-prefix", "", "tags are <prefix><client>-<n>; default bench-<random>-")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	if err := b.finish(*ops, stderr); err != nil {
		return err
	}
	o.Common, o.LayerSize, o.Chunk = b.o, int64(size), int64(chunk)
	r, err := loadgen.Push(ctx, o)
	if err != nil {
		return err
	}
	return b.report(r, stdout)
}

func benchStorm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var b benchCommon
	var o loadgen.StormOptions
	fs := newBenchFlags("storm", stderr)
	ops := b.flags(fs, "ops")
	size := config.ByteSize(4 << 10)
	fs.StringVar(&o.Platform, "platform", "linux/amd64", "platform picked from an index: os/arch[/variant]")
	fs.StringVar(&o.PushRepo, "push-repo", "", "repository pushes and deletes work on (required with --push-every)")
	fs.IntVar(&o.PushEvery, "push-every", 0, "every K-th operation of a client is a push; 0 none")
	fs.IntVar(&o.DeleteEvery, "delete-every", 0, "every K-th operation of a client deletes its oldest push; 0 none; at most --push-every keeps pushed content bounded")
	fs.IntVar(&o.PushLayers, "push-layers", 2, "random layers per pushed image")
	fs.Var(&size, "push-layer-size", "bytes per pushed layer (e.g. 4KiB)")
	fs.DurationVar(&o.HangAfter, "hang-after", 90*time.Second, "a request (its body included) taking longer is a hang")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the pushed layers; 0 random")
	images, err := b.parseImages(fs, args, *ops, stderr)
	if err != nil {
		return err
	}
	o.Common, o.Images, o.PushLayerSize = b.o, images, int64(size)
	r, err := loadgen.Storm(ctx, o)
	if err != nil {
		return err
	}
	if err := b.write(r, r, stdout); err != nil {
		return err
	}
	if r.Unclean > 0 {
		return fmt.Errorf("bench: %d unclean outcomes of %d requests", r.Unclean, r.Requests)
	}
	return nil
}

func newBenchFlags(verb string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wharf bench "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage+"\nFlags of "+verb+":\n")
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses flags wherever they are among the positional
// arguments, which the flag package alone stops at: the issue's own
// example puts --clients after the IMAGEs. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// The flag package swallows a "--" and stops there: what follows is
		// positional even if it looks like a flag.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
