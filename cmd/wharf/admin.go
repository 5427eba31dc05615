package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/inspect"
)

// The store's maintenance commands. Each opens the data directory on its
// own (and the S3 store, when serve's configuration names one), so wharf
// serve must be stopped first (the index allows one process).

// adminFlags parses the command's own flags (set by extra) and serve's
// whole configuration (storeFlags), and returns that configuration.
func adminFlags(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (config.Config, error) {
	fs := flag.NewFlagSet("wharf "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wharf %s [flags]\n\nwharf serve must be stopped: %s opens the data directory itself.\n\nFlags:\n", name, name)
		sf.PrintDefaults(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := sf.load(stderr)
	if err != nil {
		return config.Config{}, err
	}
	if _, err := os.Stat(cfg.Storage.Dir); err != nil {
		return config.Config{}, fmt.Errorf("data directory: %w", err)
	}
	return cfg, nil
}

// withStore parses a maintenance command's flags, opens its store, runs fn
// on it and closes it.
func withStore(ctx context.Context, name string, args []string, stderr io.Writer, extra func(*flag.FlagSet), fn func(c *cache.Cache, dir string) error) error {
	cfg, err := adminFlags(name, args, stderr, extra)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, cfg, cache.Options{Logger: quietLogger(stderr)}, readThrough)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s.Cache, cfg.Storage.Dir)
}

// verify re-hashes every stored item.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var repair bool
	flags := func(fs *flag.FlagSet) {
		fs.BoolVar(&repair, "repair", false, "move corrupt items to quarantine/ so they are fetched again")
	}
	return withStore(ctx, "verify", args, stderr, flags, func(c *cache.Cache, dir string) error {
		return verifyStore(ctx, c, dir, repair, stdout, stderr)
	})
}

func verifyStore(ctx context.Context, c *cache.Cache, dir string, repair bool, stdout, stderr io.Writer) error {
	bar := newProgress(stderr)
	o := inspect.VerifyOptions{Progress: bar.update}
	if repair {
		o.Quarantine = filepath.Join(dir, "quarantine")
	}
	rep, err := inspect.Verify(ctx, c, o)
	bar.done()
	if err != nil {
		return err
	}
	for _, x := range rep.Corrupt {
		fmt.Fprintf(stdout, "CORRUPT %s: %s\n", x.Digest, x.Reason)
	}
	fmt.Fprintf(stdout, "checked %d items, %s; %d corrupt", rep.Checked, human(rep.Bytes), len(rep.Corrupt))
	if repair {
		fmt.Fprintf(stdout, ", %d quarantined", rep.Quarantined)
	}
	fmt.Fprintln(stdout)
	if len(rep.Corrupt) > 0 && !repair {
		return errors.New("corrupt items found (run with --repair to quarantine them)")
	}
	return nil
}

// du prints what the store holds.
func du(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var top int
	var asJSON bool
	flags := func(fs *flag.FlagSet) {
		fs.IntVar(&top, "top", 10, "how many repositories to list")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	return withStore(ctx, "du", args, stderr, flags, func(c *cache.Cache, _ string) error {
		return printUsage(c, top, asJSON, stdout)
	})
}

func printUsage(c *cache.Cache, top int, asJSON bool, stdout io.Writer) error {
	st, err := inspect.StatsOf(c)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			inspect.Stats
			HitRatio float64
		}{st, st.HitRatio()})
	}
	fmt.Fprintf(stdout, "size %s in %d items (%d manifests), %d tags in %d repositories\n",
		human(st.Bytes), st.Items, st.Manifests, st.Tags, len(st.Repos))
	fmt.Fprintf(stdout, "pulls %d, cache hits %d, hit ratio %.1f%%\n\n", st.Pulls, st.Hits, 100*st.HitRatio())
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOP BY SIZE\tSIZE\tTAGS\tPULLS\tHITS")
	for i, r := range st.Repos {
		if i == top {
			break
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", r.Repo, human(r.Bytes), r.Tags, r.Pulls, r.Hits)
	}
	w.Flush()
	byHits := append([]inspect.RepoUsage(nil), st.Repos...)
	sortByHits(byHits)
	fmt.Fprintln(stdout)
	w = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOP BY HITS\tHITS\tPULLS\tSIZE")
	for i, r := range byHits {
		if i == top {
			break
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", r.Repo, r.Hits, r.Pulls, human(r.Bytes))
	}
	return w.Flush()
}

func sortByHits(rs []inspect.RepoUsage) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Hits > rs[j-1].Hits; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// holdings is the store as the status page reads it: its running totals,
// and what wharf du prints (computed by package inspect, which the page
// calls at most once per its cache period).
type holdings struct{ *cache.Cache }

func (h holdings) Stats() (inspect.Stats, error) { return inspect.StatsOf(h.Cache) }
