package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// A storm is mixed load, to find what breaks under it rather than to
// measure speed: every client loops over pulls of the given images, and
// every PushEvery-th of its operations is a push of a small random image,
// every DeleteEvery-th a delete of its oldest push: the image is pulled
// back by digest first (it must be there, whatever eviction did since it
// was pushed), then its tag, manifest and blobs are deleted, and a GET of
// the manifest must answer 404. Every request's outcome is classified
// (outcome.go).
//
// At the end of Duration clients start no new operation but finish the
// ones under way, each request bounded by HangAfter, so that no outcome
// goes uncounted.

// StormOptions configure Storm.
type StormOptions struct {
	Common
	// Images are pulled in turn, as by Pull; one written
	// "repo:tag@digest" is resolved by its tag, and the tag must name
	// the digest (else the bytes are counted as wrong).
	Images   []string
	Platform string
	// PushRepo is the repository pushes and deletes work on.
	PushRepo string
	// PushEvery and DeleteEvery: one in PushEvery operations of a client
	// pushes (the 2nd, then every PushEvery-th), one in DeleteEvery
	// deletes its oldest push (the 3rd, then every DeleteEvery-th; a push
	// wins when both fall on one operation). 0 never. DeleteEvery at most
	// PushEvery keeps the pushed, never evicted, content bounded.
	PushEvery, DeleteEvery int
	// PushLayers and PushLayerSize shape the pushed images: default 2
	// layers of 4 KiB.
	PushLayers    int
	PushLayerSize int64
	// Seed makes the pushed layers reproducible; 0 picks one at random.
	Seed uint64
}

// stormBufSize is the read buffer of a storm client's blob transfers:
// a storm runs a thousand clients, and their buffers should not be the
// load generator's whole memory.
const stormBufSize = 32 << 10

// defaultHangAfter is HangAfter in a storm when not given: three times a
// fill's default stall timeout (30 s), so a blob whose upstream stalls
// and resumes is slow, not hung.
const defaultHangAfter = 90 * time.Second

// Storm runs storm clients as o says and reports every outcome.
func Storm(ctx context.Context, o StormOptions) (*StormResult, error) {
	if o.HangAfter == 0 {
		o.HangAfter = defaultHangAfter
	}
	base, err := o.validate()
	errs := []error{err}
	if len(o.Images) == 0 {
		errs = append(errs, errors.New("no image to pull"))
	}
	if o.Platform == "" {
		o.Platform = "linux/amd64"
	}
	plat, err := parsePlatform(o.Platform)
	errs = append(errs, err)
	images := make([]image, 0, len(o.Images))
	for _, s := range o.Images {
		img, err := parseImage(s, hostOf(base))
		errs = append(errs, err)
		images = append(images, img)
	}
	if o.PushEvery < 0 || o.DeleteEvery < 0 {
		errs = append(errs, errors.New("push-every and delete-every must not be negative"))
	}
	if o.PushEvery > 0 || o.DeleteEvery > 0 {
		if _, err := parseImage(o.PushRepo, ""); o.PushRepo == "" || err != nil {
			errs = append(errs, fmt.Errorf("push repo %q: pushes and deletes need a repository", o.PushRepo))
		}
	}
	if o.DeleteEvery > 0 && o.PushEvery == 0 {
		errs = append(errs, errors.New("deletes remove this run's pushes: give push-every too"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.PushLayers == 0 {
		o.PushLayers = 2
	}
	if o.PushLayerSize == 0 {
		o.PushLayerSize = 4 << 10
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = binary.LittleEndian.Uint64(r[:])
	}
	pullOpts := &PullOptions{Common: o.Common, Images: o.Images, Platform: o.Platform}
	pushOpts := &PushOptions{Common: o.Common, Repo: o.PushRepo, Layers: o.PushLayers, LayerSize: o.PushLayerSize,
		TagPrefix: "storm-" + hex.EncodeToString(r[:3]) + "-", Seed: o.Seed}

	var stormers []*stormer
	res, err := drive(ctx, "storm", &o.Common, base, true, func(c *client) func(context.Context, int) error {
		c.tally, c.bufLen = newTally(), stormBufSize
		s := &stormer{o: &o, puller: newPuller(c, pullOpts, images, plat), pusher: newPusher(c, pushOpts),
			ops: map[string]*OpCount{}}
		s.puller.resolveTags = true
		s.pusher.bufs = s.puller.bufs // one operation at a time: one set of buffers
		stormers = append(stormers, s)
		return s.op
	})
	if err != nil {
		return nil, err
	}
	return mergeStorm(res, stormers), nil
}

// stormer is one storm client.
type stormer struct {
	o       *StormOptions
	puller  *puller
	pusher  *pusher
	pushed  []pushed // not deleted yet, oldest first
	deletes int
	ops     map[string]*OpCount
}

// op runs operation n of the client and counts it by kind.
func (s *stormer) op(ctx context.Context, n int) error {
	kind, run := s.choose(n)
	err := run(ctx)
	if ctx.Err() == nil {
		c := s.ops[kind]
		if c == nil {
			c = &OpCount{}
			s.ops[kind] = c
		}
		if err != nil {
			c.Failed++
		} else {
			c.Done++
		}
	}
	return err
}

// choose picks operation n's kind. A client's second operation is its
// first push and its third its first delete: under a heavy storm a client
// makes only a few operations, and each kind must happen.
func (s *stormer) choose(n int) (string, func(context.Context) error) {
	p, d := s.o.PushEvery, s.o.DeleteEvery
	switch {
	case p > 0 && n%p == 1%p:
		return "push", func(ctx context.Context) error { return s.push(ctx, n) }
	case d > 0 && n%d == 2%d && len(s.pushed) > 0:
		return "delete", s.deleteOldest
	}
	return "pull", func(ctx context.Context) error { return s.puller.pull(ctx, n) }
}

func (s *stormer) push(ctx context.Context, n int) error {
	rec, err := s.pusher.pushImage(ctx, n)
	if err != nil {
		return err
	}
	s.pushed = append(s.pushed, rec)
	return nil
}

// deleteOldest pulls the client's oldest push back by digest (a 404 is
// ErrLost: pushed content is never evicted), deletes its tag (every other
// time; deleting the manifest removes it anyway), its manifest and its
// blobs, then checks that the manifest is gone.
func (s *stormer) deleteOldest(ctx context.Context) error {
	rec := s.pushed[0]
	s.pushed = s.pushed[1:]
	if err := s.puller.pullImage(withMustExist(ctx), image{repo: s.o.PushRepo, digest: rec.manifest}); err != nil {
		return err
	}
	c := s.puller.client
	del := func(what string) error {
		_, err := c.call(ctx, "delete", http.MethodDelete, c.url("/v2/"+s.o.PushRepo+"/"+what), nil, nil, 0, http.StatusAccepted)
		return err
	}
	if s.deletes++; s.deletes%2 == 1 {
		if err := del("manifests/" + rec.tag); err != nil {
			return err
		}
	}
	if err := del("manifests/" + rec.manifest.String()); err != nil {
		return err
	}
	for _, b := range rec.blobs {
		if err := del("blobs/" + b.String()); err != nil {
			return err
		}
	}
	return s.checkGone(ctx, rec)
}

// checkGone asks for a deleted manifest: 404 is the answer, a 2xx is
// ErrResurrected.
func (s *stormer) checkGone(ctx context.Context, rec pushed) (err error) {
	c := s.puller.client
	defer func() { c.settle(ctx, "deleted-manifest", err) }()
	resp, err := c.do(ctx, http.MethodGet, c.url("/v2/"+s.o.PushRepo+"/manifests/"+rec.manifest.String()),
		http.Header{"Accept": manifestAccept}, nil, 0)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 == 2 {
		resp.Body.Close()
		return fmt.Errorf("%w: GET %s@%s after its DELETE: %s", ErrResurrected, s.o.PushRepo, rec.manifest, resp.Status)
	}
	if err := expect(resp, http.StatusNotFound); err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
