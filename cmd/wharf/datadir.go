package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cache/disk"
	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/tier"
	"github.com/wharf-mirror/wharf/cache/upload"
	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/metrics"
)

// dataStore is the store a command works on: the cache, whose index is in
// the data directory, over the content store the configuration names.
type dataStore struct {
	*cache.Cache
	// With storage.s3: the tier over the data directory's copies and the
	// bucket, and the S3 store under it; each is closed after the one
	// above it. nil for the disk store alone, which the cache owns.
	tier   *tier.Store
	shared *s3.Store
	lock   *os.File // the data directory's lock, released last
}

// Close closes the cache, then the tier (stopping its promotions), then
// the S3 store: each after everything that uses it.
func (s *dataStore) Close() error {
	var err error
	if s.Cache != nil { // nil when cache.Open failed
		err = s.Cache.Close()
	}
	if s.tier != nil {
		err = errors.Join(err, s.tier.Close())
	}
	if s.shared != nil {
		err = errors.Join(err, s.shared.Close())
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close()) // closing the file releases its flock
	}
	return err
}

// lockDataDir takes the data directory's lock (<dir>/wharf.lock, flock,
// released when the file is closed or the process ends) before anything
// in the directory is opened: every store sweeps its staging area when
// it opens (tmp/), and a second wharf (a verify beside a
// running serve) must be refused before it sweeps the running one's
// fills in progress. Badger's own lock on index/ comes too late for
// that: the stores open before the cache.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "wharf.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, dataDirError(dir, fmt.Errorf("wharf.lock: %w", errLocked))
		}
		return nil, fmt.Errorf("data directory %s: lock: %w", dir, err)
	}
	return f, nil
}

// localCopies says whether content read from the bucket is copied into
// the data directory (the tier's promotions). serve copies, so that the
// next hit is a local file; a command that runs once and exits does not:
// verify and export read everything once, and would only fill the data
// directory with copies no later read uses (and Close would cancel most
// of them anyway).
type localCopies bool

const (
	copyOnRead  localCopies = true
	readThrough localCopies = false
)

// openStore opens the store cfg names. serve and every command that
// opens a store (warm, export, import, verify, gc, du) go through it, so
// that each finds the content where serve keeps it: in the data
// directory, or, with storage.s3, in the bucket behind a tier whose hot
// copies are in the data directory (capped by storage.maxSize; the index
// and the staging of content stay there too). opts are the command's own
// cache options, Logger set; Dir and Store are filled in here, and with
// storage.s3 opts.MaxSize caps the bucket (contentCap). The S3 store is
// opened first, so that a store that cannot be reached stops the command
// before anything else starts.
func openStore(ctx context.Context, cfg config.Config, opts cache.Options, copies localCopies) (*dataStore, error) {
	opts.Dir = cfg.Storage.Dir
	lock, err := lockDataDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &dataStore{lock: lock}
	if cfg.Storage.S3.On() {
		if s.shared, err = openS3(ctx, cfg, opts.Logger, opts.Metrics); err != nil {
			s.Close()
			return nil, err
		}
		if s.tier, err = openTier(ctx, cfg, opts, s.shared, copies); err != nil {
			s.Close()
			return nil, err
		}
		opts.Store = s.tier
		// Upload sessions in the bucket: a push's requests may reach any replica.
		opts.SharedUploads = upload.Shared{Records: s.shared.Records(), Chunks: s.shared.Chunks()}
		// The replicas on the bucket share their tags and links there;
		// an empty index is rebuilt from them.
		opts.Records = s.shared.Records()
	}
	c, err := cache.Open(opts)
	if err != nil {
		s.Close()
		return nil, dataDirError(cfg.Storage.Dir, err)
	}
	s.Cache = c
	return s, nil
}

// openTier opens the data directory's content as the local tier and puts
// it in front of shared, capped by storage.maxSize.
func openTier(ctx context.Context, cfg config.Config, opts cache.Options, shared *s3.Store, copies localCopies) (*tier.Store, error) {
	local, swept, err := disk.Open(cfg.Storage.Dir)
	if err != nil {
		return nil, dataDirError(cfg.Storage.Dir, err)
	}
	if swept > 0 {
		opts.Logger.WithField("files", swept).Info("swept unfinished fills from an earlier run")
	}
	topts := tier.Options{
		LocalMaxSize: int64(cfg.Storage.MaxSize),
		Metrics:      opts.Metrics,
		Logger:       opts.Logger.WithField("component", "tier"),
	}
	if copies == readThrough {
		topts.Promotions = tier.NoPromotions
	}
	t, err := tier.New(ctx, local, shared, topts)
	if err != nil {
		return nil, fmt.Errorf("data directory %s, the local copies of the bucket's content: %w", cfg.Storage.Dir, err)
	}
	return t, nil
}

// contentCap is the cap the cache evicts under: storage.maxSize for the
// data directory, storage.s3.maxSize for the bucket (storage.maxSize then
// caps the tier's local copies, which the tier evicts on its own).
func contentCap(cfg config.Config) int64 {
	if cfg.Storage.S3.On() {
		return int64(cfg.Storage.S3.MaxSize)
	}
	return int64(cfg.Storage.MaxSize)
}

// capFields are the caps for the start-up log: the one cap, or with
// storage.s3 the data directory's and the bucket's; 0 is none.
func capFields(cfg config.Config) logrus.Fields {
	if cfg.Storage.S3.On() {
		return logrus.Fields{"localMaxSize": cfg.Storage.MaxSize.String(), "s3MaxSize": cfg.Storage.S3.MaxSize.String()}
	}
	return logrus.Fields{"maxSize": cfg.Storage.MaxSize.String()}
}

// openS3 opens the S3 store of storage.s3, staging content in the data
// directory. s3.Open checks that the bucket answers to the credentials,
// and its errors name the setting at fault; neither key is in them.
func openS3(ctx context.Context, cfg config.Config, log logrus.FieldLogger, m *metrics.Metrics) (*s3.Store, error) {
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
		SessionToken:       c.SessionToken.Value(),
		IAMRole:            c.IAMRoleOn(),
		PartSize:           int64(c.PartSize),
		Timeout:            c.Timeout.Std(),
		AbandonedUploadAge: c.AbandonedUploadAge.Std(),
		Metrics:            m,
	})
	if err != nil {
		return nil, fmt.Errorf("storage.s3, content at %s: %w", c.Location(), err)
	}
	if swept.Uploads > 0 {
		log.WithField("uploads", swept.Uploads).Info("aborted abandoned multipart uploads from an earlier run")
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

// roleVariables are the variables with which AWS hands a process its
// role's credentials (IRSA, ECS, EKS Pod Identity).
var roleVariables = []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"}

// s3RoleWarning is the start-up warning about credentials the
// environment offers and the section leaves unused (lookup is
// os.LookupEnv): a role, or a session token without its keys, while the
// store is reached without keys and without storage.s3.iamRole, so
// anonymously, which is hardly what was meant; or AWS's keys, while
// iamRole takes the role's. "" when there is nothing to say.
func s3RoleWarning(cfg config.Config, lookup func(string) (string, bool)) string {
	s := cfg.Storage.S3
	if !s.On() || s.AccessKey != "" {
		return ""
	}
	if s.IAMRoleOn() {
		if id, _ := lookup("AWS_ACCESS_KEY_ID"); id != "" {
			return "storage.s3.iamRole is on, so the role's credentials sign requests to the store, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment are not used"
		}
		return ""
	}
	for _, v := range roleVariables {
		if val, _ := lookup(v); val != "" {
			return fmt.Sprintf("storage.s3 names no keys and storage.s3.iamRole is off, so requests to the store are anonymous, though %s gives this process a role: set storage.s3.iamRole to use it", v)
		}
	}
	if token, _ := lookup("AWS_SESSION_TOKEN"); token != "" {
		return "AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, so it is not used and requests to the store are anonymous"
	}
	return ""
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

// errLocked: another process holds the data directory's lock.
var errLocked = errors.New("held by another process")

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
	if errors.Is(err, errLocked) || strings.Contains(err.Error(), badgerLocked) {
		return fmt.Errorf("data directory %s is in use: another wharf (serve, warm, import, export or an admin command) is running on it; "+
			"stop that one, or give this one its own --data (storage.dir, WHARF_DATA): %w", dir, err)
	}
	return fmt.Errorf("open %s (is another wharf running on it?): %w", dir, err)
}
