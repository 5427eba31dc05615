package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/archive"
	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/proxy"
)

// storeFlags are serve's whole configuration on a store command's flag
// set: the same YAML file, WHARF_* variables and flags (a setting that
// means nothing to the command is accepted and ignored). Sharing it is
// the point: the repository names these commands read and write must be
// the ones the serving wharf computes (its upstreams, prefixes and naming
// rules), or what they store would never be found; with it, the air-gap
// recipe is one config file on both sides.
type storeFlags struct {
	*config.Flags
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	s.Flags = config.RegisterFlags(fs)
}

// load reads serve's configuration with these flags applied.
func (s *storeFlags) load(stderr io.Writer) (config.Config, error) {
	return s.Load(os.LookupEnv, stderr)
}

// storeUse is what a command needs of the store it opens.
type storeUse struct {
	// fetch: misses are filled from the upstreams, as serve fills them
	// (warm); otherwise the upstreams only name repositories, and the
	// store is opened with no upstream (export, import).
	fetch bool
	// mustExist: the data directory must exist already (export would
	// otherwise create an empty store to find nothing in).
	mustExist bool
}

// open loads serve's configuration and opens its upstreams and its store
// (openStore: the one way every command opens one) for use.
func (s *storeFlags) open(ctx context.Context, stderr io.Writer, use storeUse) (*dataStore, *upstreams, error) {
	cfg, err := s.load(stderr)
	if err != nil {
		return nil, nil, err
	}
	if use.mustExist {
		if _, err := os.Stat(cfg.Storage.Dir); err != nil {
			return nil, nil, fmt.Errorf("data directory: %w", err)
		}
	}
	log := quietLogger(stderr)
	ups, err := newUpstreams(cfg, nil, log)
	if err != nil {
		return nil, nil, err
	}
	opts := cache.Options{Logger: log}
	if use.fetch {
		opts.Origins, opts.TagTTL = ups.origins, cfg.Upstream.TagTTL.Std()
	}
	c, err := openStore(ctx, cfg, opts, readThrough)
	if err != nil {
		ups.Close()
		return nil, nil, err
	}
	return c, ups, nil
}

// quietLogger logs warnings and worse to w, for the store commands.
func quietLogger(w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	log.SetLevel(logrus.WarnLevel)
	return log
}

// archiveNamer reads the names an export is given and an archive holds as
// serve reads them, under ups.
func archiveNamer(ups proxy.Upstreams) archive.Namer {
	return func(s string) (archive.Name, error) {
		img, err := proxy.ParseImage(ups, s)
		var unknown *proxy.UnknownRegistryError
		if errors.As(err, &unknown) {
			return archive.Name{}, &archive.NotServedError{Err: err, Reason: unknown}
		}
		return img, err
	}
}
