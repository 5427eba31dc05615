package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/config"
)

// dataStore is the store a command works on: the cache, whose index is in
// the data directory, over the content store the configuration names.
type dataStore struct {
	*cache.Cache
	shared *s3.Store // the S3 content store, closed after the cache; nil for the disk store, which the cache owns
}

// Close closes the cache, then the content store under it.
func (s *dataStore) Close() error {
	err := s.Cache.Close()
	if s.shared != nil {
		err = errors.Join(err, s.shared.Close())
	}
	return err
}

// openStore opens the store cfg names. serve and every command that
// opens a store (warm, export, import, verify, gc, du) go through it, so
// that each finds the content where serve keeps it: in the data
// directory, or in the bucket of storage.s3 (the index, and the staging
// of content, stay in the data directory). opts are the command's own
// cache options, Logger set; Dir and Store are filled in here. The S3
// store is opened first, so that a store that cannot be reached stops
// the command before anything else starts.
func openStore(ctx context.Context, cfg config.Config, opts cache.Options) (*dataStore, error) {
	opts.Dir = cfg.Storage.Dir
	var shared *s3.Store
	if cfg.Storage.S3.On() {
		var err error
		if shared, err = openS3(ctx, cfg, opts.Logger); err != nil {
			return nil, err
		}
		opts.Store = shared
	}
	c, err := cache.Open(opts)
	if err != nil {
		if shared != nil {
			shared.Close()
		}
		return nil, dataDirError(cfg.Storage.Dir, err)
	}
	return &dataStore{Cache: c, shared: shared}, nil
}

// openS3 opens the S3 store of storage.s3, staging content in the data
// directory. s3.Open checks that the bucket answers to the credentials,
// and its errors name the setting at fault; neither key is in them.
func openS3(ctx context.Context, cfg config.Config, log logrus.FieldLogger) (*s3.Store, error) {
	c := cfg.Storage.S3
	st, swept, err := s3.Open(ctx, s3.Options{
		Endpoint:           c.Endpoint,
		Bucket:             c.Bucket,
		Region:             c.Region,
		Prefix:             c.Prefix,
		PathStyle:          c.PathStyleOn(),
		CAFile:             c.CAFile,
		AccessKey:          c.AccessKey,
		SecretKey:          c.SecretKey.Value(),
		StagingDir:         filepath.Join(cfg.Storage.Dir, "s3-staging"),
		PartSize:           int64(c.PartSize),
		Timeout:            c.Timeout.Std(),
		AbandonedUploadAge: c.AbandonedUploadAge.Std(),
	})
	if err != nil {
		return nil, fmt.Errorf("storage.s3, content at %s: %w", c.Location(), err)
	}
	if swept.Staged > 0 || swept.Uploads > 0 {
		log.WithFields(logrus.Fields{"staged": swept.Staged, "uploads": swept.Uploads}).
			Info("swept staged files and aborted abandoned multipart uploads from an earlier run")
	}
	return st, nil
}

// contentLocation says where the content lives, for the start-up log:
// the data directory, or "s3://bucket/prefix at endpoint" (no secrets).
func contentLocation(cfg config.Config) string {
	if cfg.Storage.S3.On() {
		return cfg.Storage.S3.Location()
	}
	return cfg.Storage.Dir
}

// s3Warning is the start-up warning about an S3 endpoint reached over
// plain HTTP off this machine, or "": requests are signed, not encrypted,
// so the content crosses the network for anyone on the path to read.
func s3Warning(cfg config.Config) string {
	s := cfg.Storage.S3
	u, err := url.Parse(s.Endpoint)
	if !s.On() || err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("storage.s3.endpoint %s is plain http://: the content and every request cross the network unencrypted; use https:// off a trusted network", s.Endpoint)
}

// badgerLocked is how Badger says another process holds the index's
// directory lock. Its error wraps the flock failure with %+v, not %w, so
// the text is all there is to recognise it by.
const badgerLocked = "Cannot acquire directory lock"

// dataDirError explains a failure to open the data directory. Every
// command that opens the store goes through it, so each names the usual
// cause the same way: the index allows one process at a time, and the
// other one is most often a wharf serve (or warm, import, gc…) still
// running on the same --data.
func dataDirError(dir string, err error) error {
	if strings.Contains(err.Error(), badgerLocked) {
		return fmt.Errorf("data directory %s is in use: another wharf (serve, warm, import, export or an admin command) is running on it; "+
			"stop that one, or give this one its own --data (storage.dir, WHARF_DATA): %w", dir, err)
	}
	return fmt.Errorf("open %s (is another wharf running on it?): %w", dir, err)
}
