package main

import (
	"errors"
	"flag"
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

// quietLogger logs warnings and worse to w, for the store commands.
func quietLogger(w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	log.SetLevel(logrus.WarnLevel)
	return log
}

// openDataDir opens a stopped wharf's store with no upstream, for export,
// import and the maintenance commands (the index allows one process at a
// time).
func openDataDir(dir string, stderr io.Writer) (*cache.Cache, error) {
	c, err := cache.Open(cache.Options{Dir: dir, Logger: quietLogger(stderr)})
	if err != nil {
		return nil, dataDirError(dir, err)
	}
	return c, nil
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
