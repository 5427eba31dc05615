package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/cache"
	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/metrics"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream"
)

// Cluster is what Origin consumes of *cluster.Cluster.
type Cluster interface {
	Rank(key string) []cluster.Member
	MarkFailed(peer string)
	Members() []cluster.Member
}

// Options configure the Origins of one replica (they share a client).
type Options struct {
	Cluster Cluster
	Secret  string // the cluster secret (one per line: the first is sent); required
	// HeaderTimeout bounds the wait for a peer's response headers; past
	// it the peer is failed and the next replica asked. The owner answers
	// once the registry has, so it is the registry's own timeout and a
	// little more. Default 30s.
	HeaderTimeout time.Duration
	// Transport reaches the peers. Default: a clone of
	// http.DefaultTransport without a proxy (peers are reached directly),
	// closed by Client.Close.
	Transport http.RoundTripper
	Metrics   *metrics.Metrics
	Logger    logrus.FieldLogger
	Now       func() time.Time // clock for Age; default time.Now
}

// Client is the HTTP side every Origin of a replica shares.
type Client struct {
	opts  Options
	send  string // the secret sent: the first of opts.Secret's
	http  *http.Client
	owned *http.Transport
}

// NewClient builds the client Origins ask peers with.
func NewClient(opts Options) (*Client, error) {
	if opts.Cluster == nil || cluster.SendSecret(opts.Secret) == "" {
		return nil, errors.New("peer: Options.Cluster and Options.Secret are required")
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Logger = l
	}
	c := &Client{opts: opts, send: cluster.SendSecret(opts.Secret)}
	rt := opts.Transport
	if rt == nil {
		c.owned = http.DefaultTransport.(*http.Transport).Clone()
		c.owned.Proxy = nil // an HTTP_PROXY meant for the upstream must not see the secret
		// A replica that vanished is failed over in seconds, not after the
		// default 30 s connect wait.
		c.owned.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		c.owned.ResponseHeaderTimeout = opts.HeaderTimeout
		c.owned.DisableCompression = true // bytes as the owner stored them
		// Every request to a peer goes to one of a few hosts: the
		// default of 2 idle connections per host would close and redial
		// most connections of a busy replica.
		c.owned.MaxIdleConnsPerHost = maxIdlePerPeer
		rt = c.owned
	}
	c.http = &http.Client{
		Transport: rt,
		// A peer's answer is its own: the secret never follows a redirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// maxIdlePerPeer is how many idle connections to each peer are kept.
const maxIdlePerPeer = 64

// Close closes the idle connections of a transport it owns.
func (c *Client) Close() {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
}

// Origin is a cache.Origin for one upstream that asks the replica owning
// each key first: a blob or a manifest by its digest, a tag by
// upstream/repo:tag, a tag list by upstream/repo. It walks
// cluster.Rank(key): self is the registry itself (the wrapped Origin);
// a peer that fails (no connection, a timeout, an error it did not mark
// as relayed, a 401 for a wrong secret) is marked failed and the next
// member asked, so a pull never fails because a peer died. A peer
// configured without the upstream (SkipHeader) is passed over for that
// request only. An upstream error the owner relays is returned as the
// upstream's own and ends the walk: the registry is not asked again by
// every replica.
type Origin struct {
	c    *Client
	next cache.Origin

	// broke is, per blob, the peer whose body broke mid-stream: the
	// fill's resume (a GetBlob from an offset) asks the next member
	// instead of the same peer again. An entry goes when the blob is
	// asked for from its start, or read to its end.
	brokeMu sync.Mutex
	broke   map[digest.Digest]string
}

// maxBroke bounds Origin.broke: past it the map is cleared (a resume
// then asks the same peer again, as a new fill would).
const maxBroke = 1024

// NewOrigin wraps next, the registry, in peer routing.
func (c *Client) NewOrigin(next cache.Origin) *Origin { return &Origin{c: c, next: next} }

var (
	_ cache.Origin        = (*Origin)(nil)
	_ cache.Directer      = (*Origin)(nil)
	_ cache.CheckedHeader = (*Origin)(nil)
)

func (o *Origin) Name() string { return o.next.Name() }

// Direct is the registry itself (cache.Directer).
func (o *Origin) Direct() cache.Origin { return o.next }

// walk asks the members ranked for key in turn: self through direct, a
// peer through remote, until one answers (an error that is an answer
// included).
func walk[T any](ctx context.Context, o *Origin, key string, direct func() (T, error), remote func(peer string) (T, error)) (T, error) {
	return walkSkipping(ctx, o, key, "", direct, remote)
}

// walkSkipping is walk, with the peer skip not asked.
func walkSkipping[T any](ctx context.Context, o *Origin, key, skip string, direct func() (T, error), remote func(peer string) (T, error)) (T, error) {
	for _, m := range o.c.opts.Cluster.Rank(key) {
		if m.Self {
			break
		}
		if m.Addr == skip {
			continue
		}
		v, err := remote(m.Addr)
		var pe *peerError
		var se *skipError
		switch {
		case err == nil:
			o.c.opts.Metrics.PeerRequest("ok")
			return v, nil
		case errors.As(err, &se):
			o.c.opts.Metrics.PeerRequest("skipped")
			o.c.opts.Logger.WithError(err).Debug("peer lacks the upstream; asking the next replica")
			continue
		case !errors.As(err, &pe):
			o.c.opts.Metrics.PeerRequest("relayed_error")
			return v, err
		case ctx.Err() != nil:
			return v, ctx.Err() // our caller left: not the peer's fault
		}
		o.c.opts.Metrics.PeerRequest("failed_over")
		o.c.opts.Logger.WithError(err).WithField("peer", m.Addr).Warn("peer failed; asking the next replica")
		o.c.opts.Cluster.MarkFailed(m.Addr)
	}
	return direct()
}

// do sends one request to peer and returns the response when it is 2xx.
// A relayed error comes back as the *upstream.Error it stands for; any
// other failure as a *peerError.
func (o *Origin) do(ctx context.Context, peer, method, path string, q url.Values, hdr http.Header, op string) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: peer, Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, &peerError{peer, err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+o.c.send)
	resp, err := o.c.http.Do(req)
	if err != nil {
		return nil, &peerError{peer, err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode == http.StatusMisdirectedRequest && resp.Header.Get(SkipHeader) == "unknown-upstream" {
		return nil, &skipError{peer, o.Name()}
	}
	if resp.Header.Get(RelayedHeader) == "upstream" {
		return nil, relayedError(o.Name(), op, peer, resp, strings.TrimSpace(string(msg)))
	}
	return nil, &peerError{peer, fmt.Errorf("%s: status %d", op, resp.StatusCode)}
}

func (o *Origin) GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	type answer struct {
		body io.ReadCloser
		size int64
	}
	a, err := walkSkipping(ctx, o, d.String(), o.brokenPeer(d, offset), func() (answer, error) {
		b, n, err := o.next.GetBlob(ctx, repo, d, offset)
		return answer{b, n}, err
	}, func(peer string) (answer, error) {
		hdr := http.Header{}
		if offset > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		op := fmt.Sprintf("GET blob %s@%s", repo, d)
		resp, err := o.do(ctx, peer, http.MethodGet, blobsPath+d.String(), repoQuery(o.Name(), repo), hdr, op)
		if err != nil {
			return answer{}, err
		}
		size, err := bodySize(resp, offset)
		if err != nil {
			resp.Body.Close()
			return answer{}, &peerError{peer, err}
		}
		// The bytes are not trusted: the cache's fill hashes them as
		// it writes and keeps nothing that does not match d. A whole
		// blob is checked here as well, only to mark a peer that sends
		// wrong bytes failed, so that the client's retry asks the next
		// replica instead of the same liar.
		body := io.ReadCloser(countingBody{resp.Body, o.c.opts.Metrics})
		body = &breakWatch{ReadCloser: body, broke: func(err error) { o.bodyBroke(ctx, d, peer, err) }, done: func() { o.brokenPeer(d, 0) }}
		if offset == 0 {
			vr, err := oci.NewVerifyingReader(body, d, size)
			if err != nil {
				resp.Body.Close()
				return answer{}, &peerError{peer, err}
			}
			body = &liarCheck{ReadCloser: body, vr: vr, fail: func() { o.c.opts.Cluster.MarkFailed(peer) }}
		}
		return answer{body, size}, nil
	})
	return a.body, a.size, err
}

// bodySize is the blob's total size from a response to a GET from
// offset: a 206's Content-Range, or a 200's Content-Length (only when
// nothing was skipped: a peer always honours the Range it is sent).
func bodySize(resp *http.Response, offset int64) (int64, error) {
	if resp.StatusCode == http.StatusPartialContent {
		var start, end int64
		var total string
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%s", &start, &end, &total); err != nil || start != offset {
			return 0, fmt.Errorf("Content-Range %q for offset %d", resp.Header.Get("Content-Range"), offset)
		}
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil {
			return -1, nil
		}
		return n, nil
	}
	if offset > 0 {
		return 0, fmt.Errorf("status %d to a Range from %d", resp.StatusCode, offset)
	}
	return resp.ContentLength, nil
}

// brokenPeer is the peer whose body of d broke, for a resume from
// offset; "" from the start, which forgets it.
func (o *Origin) brokenPeer(d digest.Digest, offset int64) string {
	o.brokeMu.Lock()
	defer o.brokeMu.Unlock()
	if offset == 0 {
		delete(o.broke, d)
		return ""
	}
	return o.broke[d]
}

// bodyBroke notes that peer's body of d broke: the peer failed, as one
// that drops a connection does (marked down until a health check says
// otherwise), and the fill's resume asks the next member even if a
// check has marked it up again meanwhile. A body this replica's caller
// abandoned is no one's fault.
func (o *Origin) bodyBroke(ctx context.Context, d digest.Digest, peer string, err error) {
	if ctx.Err() != nil {
		return
	}
	o.c.opts.Metrics.PeerRequest("failed_over")
	o.c.opts.Logger.WithError(err).WithField("peer", peer).WithField("digest", d).Warn("peer body broke; resuming from the next replica")
	o.c.opts.Cluster.MarkFailed(peer)
	o.brokeMu.Lock()
	defer o.brokeMu.Unlock()
	if o.broke == nil || len(o.broke) >= maxBroke {
		o.broke = map[digest.Digest]string{}
	}
	o.broke[d] = peer
}

// breakWatch calls broke at a read error other than EOF, and done at EOF.
type breakWatch struct {
	io.ReadCloser
	broke func(error)
	done  func()
}

func (b *breakWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.done()
	case err != nil:
		b.broke(err)
	}
	return n, err
}

// countingBody counts a peer's blob bytes as they are read.
type countingBody struct {
	io.ReadCloser
	m *metrics.Metrics
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.m.PeerReceived(n)
	return n, err
}

// liarCheck reads a peer's whole blob through a verifying reader and
// marks the peer failed when the bytes are not the digest's; the fill
// reading them finds the same and keeps nothing.
type liarCheck struct {
	io.ReadCloser
	vr   *oci.VerifyingReader
	fail func()
}

func (l *liarCheck) Read(p []byte) (int, error) {
	n, err := l.vr.Read(p)
	if errors.Is(err, oci.ErrDigestMismatch) || errors.Is(err, oci.ErrSizeMismatch) {
		l.fail()
		// The end as the peer sent it: the fill's own check fails it
		// as a mismatch, where a read error would resume it at the end.
		return n, io.EOF
	}
	return n, err
}

func (o *Origin) HeadBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	return walk(ctx, o, d.String(), func() (int64, error) {
		return o.next.HeadBlob(ctx, repo, d)
	}, func(peer string) (int64, error) {
		resp, err := o.do(ctx, peer, http.MethodHead, blobsPath+d.String(), repoQuery(o.Name(), repo), nil, fmt.Sprintf("HEAD blob %s@%s", repo, d))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.ContentLength < 0 {
			return 0, &peerError{peer, errors.New("HEAD blob without Content-Length")}
		}
		return resp.ContentLength, nil
	})
}

// manifestKey ranks a manifest: its digest, or upstream/repo:tag.
func (o *Origin) manifestKey(repo, ref string) string {
	if _, err := digest.Parse(ref); err == nil {
		return ref
	}
	return "tag\x00" + o.Name() + "/" + repo + ":" + ref
}

func (o *Origin) GetManifest(ctx context.Context, repo, ref string, accept []string) (*upstream.Manifest, error) {
	return walk(ctx, o, o.manifestKey(repo, ref), func() (*upstream.Manifest, error) {
		return o.next.GetManifest(ctx, repo, ref, accept)
	}, func(peer string) (*upstream.Manifest, error) {
		op := fmt.Sprintf("GET manifest %s:%s", repo, ref)
		resp, err := o.do(ctx, peer, http.MethodGet, manifestsPath+ref, repoQuery(o.Name(), repo), http.Header{"Accept": accept}, op)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, oci.MaxManifestSize+1))
		if err != nil {
			return nil, &peerError{peer, fmt.Errorf("%s: %w", op, err)}
		}
		desc, err := o.descriptor(peer, resp, ref)
		if err != nil {
			return nil, err
		}
		// The digest is the body's own: the cache stores it under that.
		if len(body) > oci.MaxManifestSize {
			return nil, &peerError{peer, fmt.Errorf("%s: %w", op, upstream.ErrTooLarge)}
		}
		got := desc.Digest.Algorithm().FromBytes(body)
		if got != desc.Digest {
			return nil, &peerError{peer, fmt.Errorf("%s: %w: body is %s, not %s", op, upstream.ErrDigestMismatch, got, desc.Digest)}
		}
		desc.Size = int64(len(body))
		// The owner answers from its store, which is the cluster's
		// shared one: the bytes are there already.
		return &upstream.Manifest{Descriptor: desc, Body: body, Checked: o.checked(resp), Shared: true}, nil
	})
}

func (o *Origin) HeadManifest(ctx context.Context, repo, ref string, accept []string) (ocispec.Descriptor, error) {
	desc, _, err := o.HeadManifestChecked(ctx, repo, ref, accept)
	return desc, err
}

// HeadManifestChecked is HeadManifest with the time the owner last checked
// a tag against the registry, from its Age (cache.CheckedHeader).
func (o *Origin) HeadManifestChecked(ctx context.Context, repo, ref string, accept []string) (ocispec.Descriptor, time.Time, error) {
	type answer struct {
		desc    ocispec.Descriptor
		checked time.Time
	}
	a, err := walk(ctx, o, o.manifestKey(repo, ref), func() (answer, error) {
		d, err := o.next.HeadManifest(ctx, repo, ref, accept)
		return answer{desc: d}, err
	}, func(peer string) (answer, error) {
		op := fmt.Sprintf("HEAD manifest %s:%s", repo, ref)
		resp, err := o.do(ctx, peer, http.MethodHead, manifestsPath+ref, repoQuery(o.Name(), repo), http.Header{"Accept": accept}, op)
		if err != nil {
			return answer{}, err
		}
		resp.Body.Close()
		desc, err := o.descriptor(peer, resp, ref)
		if err != nil {
			return answer{}, err
		}
		desc.Size = resp.ContentLength
		return answer{desc, o.checked(resp)}, nil
	})
	return a.desc, a.checked, err
}

// descriptor reads a manifest answer's digest and media type; by digest,
// the digest must be the one asked for.
func (o *Origin) descriptor(peer string, resp *http.Response, ref string) (ocispec.Descriptor, error) {
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return ocispec.Descriptor{}, &peerError{peer, fmt.Errorf("manifest answer without a valid Docker-Content-Digest: %w", err)}
	}
	if want, perr := digest.Parse(ref); perr == nil && want != d {
		return ocispec.Descriptor{}, &peerError{peer, fmt.Errorf("%w: asked for %s, answered %s", upstream.ErrDigestMismatch, want, d)}
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return ocispec.Descriptor{MediaType: strings.TrimSpace(mt), Digest: d}, nil
}

// checked is when the owner last checked its answer against the
// registry: now minus its Age; zero (now) without one.
func (o *Origin) checked(resp *http.Response) time.Time {
	age, err := strconv.ParseInt(resp.Header.Get("Age"), 10, 64)
	if err != nil || age < 0 {
		return time.Time{}
	}
	return o.c.opts.Now().Add(-time.Duration(min(age, 1<<31)) * time.Second)
}

func (o *Origin) Tags(ctx context.Context, repo string, n int, last string) ([]string, bool, error) {
	type answer struct {
		tags []string
		more bool
	}
	a, err := walk(ctx, o, "tags\x00"+o.Name()+"/"+repo, func() (answer, error) {
		t, more, err := o.next.Tags(ctx, repo, n, last)
		return answer{t, more}, err
	}, func(peer string) (answer, error) {
		q := repoQuery(o.Name(), repo)
		if n >= 0 {
			q.Set("n", strconv.Itoa(n))
		}
		if last != "" {
			q.Set("last", last)
		}
		op := fmt.Sprintf("GET tags %s", repo)
		resp, err := o.do(ctx, peer, http.MethodGet, tagsPath, q, nil, op)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		var l tagList
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&l); err != nil {
			return answer{}, &peerError{peer, fmt.Errorf("%s: %w", op, err)}
		}
		return answer{l.Tags, l.More}, nil
	})
	return a.tags, a.more, err
}
