package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wharf:", err)
		os.Exit(1)
	}
}

const usage = `wharf — a caching pull-through mirror for container registries

Usage:
  wharf serve [flags]   run the mirror (wharf serve --help lists the flags)
  wharf bench pull|push load-test a registry or mirror (wharf bench help)
  wharf verify          re-hash every cached item (wharf serve stopped)
  wharf gc [--dry-run]  remove content no tag reaches (wharf serve stopped)
  wharf du [--json]     what the cache holds, top repositories, hit ratio
  wharf warm LIST       fill the cache with the images a list names (wharf serve stopped)
  wharf export --output PATH|- IMAGE...|--all
                        write cached images as an OCI layout or a docker save tarball
  wharf import PATH...  take an OCI layout or docker save tarball into the cache
  wharf healthcheck [URL]  exit 0 if wharf's /healthz answers 200 (container probes)
  wharf version         print the version
  wharf help            show this text

verify, gc, du, warm, export and import take serve's configuration as serve
does (--config, WHARF_* and every serve flag): give them what serve is given.
`

// run dispatches a subcommand. It owns no globals, so tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "verify":
		return verify(ctx, args[1:], stdout, stderr)
	case "gc":
		return gc(ctx, args[1:], stdout, stderr)
	case "du", "stats":
		return du(ctx, args[1:], stdout, stderr)
	case "warm":
		return warmCmd(ctx, args[1:], stdout, stderr)
	case "export":
		return export(ctx, args[1:], stdout, stderr)
	case "import":
		return importCmd(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "wharf", version)
		return nil
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
