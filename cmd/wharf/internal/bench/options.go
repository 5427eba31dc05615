package bench

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Common are the options pulls and pushes share.
type Common struct {
	// Registry is the base URL of the registry or mirror under test,
	// http://host:port or https://host:port.
	Registry string
	// Clients is the number of simulated clients working at once.
	Clients int
	// Ops is the number of pulls or pushes to make in all, shared by the
	// clients; 0 means no limit (Duration must then be set).
	Ops int
	// Duration stops the run after this long; 0 means no limit (Ops must
	// then be set). Operations cut short by it count neither as done nor as
	// failed; their bytes count.
	Duration time.Duration
	// Parallel is how many blobs one client moves at once. The docker
	// daemon downloads 3 layers at a time (and uploads 5).
	Parallel int
	// Insecure skips TLS certificate verification.
	Insecure bool
	// Username and Password answer Basic challenges and authenticate token
	// requests; empty is anonymous.
	Username, Password string
	// UserAgent is sent with every request.
	UserAgent string
	// Progress, if not nil, gets a live status line, rewritten in place
	// (so it should be a terminal).
	Progress io.Writer
	// HangAfter, if > 0, bounds every request, its body included; one
	// that takes longer fails with ErrHang. Default none (pull, push).
	HangAfter time.Duration
	// Transport, if not nil, is the base transport every client uses
	// instead of its own; tests pass one to reach in-process servers.
	Transport http.RoundTripper
}

// PullOptions configure Pull.
type PullOptions struct {
	Common
	// Images are the references pulled, "repo:tag" or "repo@digest", or
	// with the registry's host in front. Clients take them in turn.
	Images []string
	// Platform picks the manifest of an index: "os/arch" or
	// "os/arch/variant". Default linux/amd64.
	Platform string
	// ManifestsOnly resolves the references and fetches no blobs: one
	// pull is then one manifest request per level (tag, platform), which
	// measures a registry's manifest requests per second.
	ManifestsOnly bool
	// NoVerify skips hashing the bytes (sizes are still checked), to
	// measure a server's ceiling without the client's hashing in the way.
	NoVerify bool
}

// PushOptions configure Push.
type PushOptions struct {
	Common
	// Repo is the repository pushed to.
	Repo string
	// Layers and LayerSize shape each pushed image: Layers random layers
	// of LayerSize bytes, fresh for every push.
	Layers    int
	LayerSize int64
	// Chunk, if > 0, uploads each layer in PATCH requests of this many
	// bytes and then closes the upload with a PUT; 0 uploads each layer
	// monolithically, in the body of the closing PUT.
	Chunk int64
	// TagPrefix names the pushed tags: <prefix><client>-<n>. Default
	// "bench-<random>-", unique per run.
	TagPrefix string
	// Seed makes the layers reproducible; 0 picks one at random.
	Seed uint64
}

func (c *Common) validate() (*url.URL, error) {
	var errs []error
	u, err := url.Parse(strings.TrimSuffix(c.Registry, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("registry %q: want http://host[:port] or https://host[:port]", c.Registry))
	}
	if c.Clients < 1 {
		errs = append(errs, fmt.Errorf("clients %d: want at least 1", c.Clients))
	}
	if c.Ops < 0 || c.Duration < 0 {
		errs = append(errs, errors.New("pulls/pushes and duration must not be negative"))
	}
	if c.Ops == 0 && c.Duration == 0 {
		errs = append(errs, errors.New("give a number of operations or a duration"))
	}
	if c.Parallel == 0 {
		c.Parallel = 3
	}
	if c.Parallel < 0 {
		errs = append(errs, fmt.Errorf("parallel %d: want at least 1", c.Parallel))
	}
	if c.UserAgent == "" {
		c.UserAgent = "wharf-bench"
	}
	return u, errors.Join(errs...)
}
