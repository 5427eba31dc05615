package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Pull runs pull clients as o says and reports what they saw.
func Pull(ctx context.Context, o PullOptions) (*Result, error) {
	base, err := o.validate()
	if len(o.Images) == 0 {
		err = errors.Join(err, errors.New("no image to pull"))
	}
	if o.Platform == "" {
		o.Platform = "linux/amd64"
	}
	plat, perr := parsePlatform(o.Platform)
	images := make([]image, 0, len(o.Images))
	errs := []error{err, perr}
	for _, s := range o.Images {
		img, err := parseImage(s, hostOf(base))
		errs = append(errs, err)
		images = append(images, img)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return drive(ctx, "pull", &o.Common, base, false, func(c *client) func(context.Context, int) error {
		return newPuller(c, &o, images, plat).pull
	})
}

// Push runs push clients as o says and reports what they saw.
func Push(ctx context.Context, o PushOptions) (*Result, error) {
	base, err := o.validate()
	errs := []error{err}
	if o.Repo == "" {
		errs = append(errs, errors.New("no repository to push to"))
	} else if _, err := parseImage(o.Repo, ""); err != nil {
		errs = append(errs, fmt.Errorf("repo: %w", err))
	}
	if o.Layers < 1 || o.LayerSize < 1 {
		errs = append(errs, fmt.Errorf("layers %d of %d bytes: want at least one layer of at least one byte", o.Layers, o.LayerSize))
	}
	if o.Chunk < 0 {
		errs = append(errs, fmt.Errorf("chunk size %d: must not be negative", o.Chunk))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = binary.LittleEndian.Uint64(r[:])
	}
	if o.TagPrefix == "" {
		o.TagPrefix = "bench-" + hex.EncodeToString(r[:3]) + "-"
	}
	return drive(ctx, "push", &o.Common, base, false, func(c *client) func(context.Context, int) error {
		return newPusher(c, &o).push
	})
}

// hostOf is the host[:port] of the registry, as it appears at the start of
// an image reference; "" when the URL did not parse.
func hostOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}

// drive starts o.Clients clients, each running its op in a loop until o.Ops
// operations have been taken (from a counter the clients share) or
// o.Duration has passed, and merges their records. Operations under way
// at the end of o.Duration are cut off, unless finish says to let them
// end (they are then bounded by ctx and the requests' own deadlines).
func drive(ctx context.Context, op string, o *Common, base *url.URL, finish bool, newOp func(*client) func(context.Context, int) error) (*Result, error) {
	ctr := &counters{}
	clients := make([]*client, o.Clients)
	for i := range clients {
		c, err := newClient(i, base, o, ctr)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if o.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.Duration)
	}
	defer cancel()
	opCtx := runCtx
	if finish {
		opCtx = ctx
	}

	start := time.Now()
	stopProgress := startProgress(o.Progress, op, start, ctr)
	var taken atomic.Int64
	var wg sync.WaitGroup
	for _, c := range clients {
		do := newOp(c)
		wg.Go(func() {
			for n := 0; ; n++ {
				if o.Ops > 0 && taken.Add(1) > int64(o.Ops) {
					return
				}
				if runCtx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := do(opCtx, n)
				if err != nil && opCtx.Err() != nil {
					return // cut off by the deadline or by the caller
				}
				if err != nil {
					c.rec.fail(err)
					ctr.failed.Add(1)
					continue
				}
				c.rec.observe(op, time.Since(t0))
				ctr.ops.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	return merge(op, o, elapsed, ctr, clients), nil
}
