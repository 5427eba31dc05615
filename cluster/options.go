package cluster

//lint:file-ignore ST1005 withDefaults' messages start with the Options field they are about (Secret, Peers[i]).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sirupsen/logrus"
)

// Defaults for Options' zero values.
const (
	DefaultResolveEvery = 5 * time.Second
	DefaultCheckEvery   = 2 * time.Second
	DefaultCheckTimeout = time.Second
	DefaultDownAfter    = 2
)

// Options configures a Cluster.
type Options struct {
	// Self is this replica's address, host:port, spelled as its peers
	// spell it: the address is the replica's name in the ranking, so a
	// replica that calls itself 127.0.0.1:5001 while the others call it
	// 10.0.0.5:5001 would rank keys differently from them. An IP address
	// is brought to its canonical form (netip), a host name to lower case.
	// Required.
	Self string
	// Secret is the cluster secret, shared by every replica: health checks
	// send it as a bearer token and HealthHandler answers only to it. It
	// may hold several, one per line (Secrets): the first is sent, any
	// is accepted. Required.
	Secret string
	// Peers is a static list of the other replicas' addresses, host:port.
	// Self may be listed; it counts once.
	Peers []string
	// DNS is a name and port, name:port, whose A and AAAA records are the
	// replicas' addresses: a Kubernetes headless Service, whose records are
	// the ready pods. It is resolved again every ResolveEvery; each address
	// found is a member at that port. Optional, beside or instead of Peers.
	DNS string
	// Lookup resolves DNS's name. Default: net.DefaultResolver.LookupNetIP
	// with network "ip" (both families). Tests put a fake here.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// ResolveEvery is how often DNS is resolved again. Default 5s.
	ResolveEvery time.Duration
	// CheckEvery is how often every peer's health is checked. Default 2s.
	CheckEvery time.Duration
	// CheckTimeout bounds one health check; a check that takes longer is
	// a failure. Default 1s.
	CheckTimeout time.Duration
	// DownAfter is the number of consecutive failed checks that mark a
	// peer down. One successful check marks it up again. Default 2.
	DownAfter int
	// Transport sends the health checks. Default: a clone of
	// http.DefaultTransport without its proxy (peers are reached
	// directly), owned by the Cluster (Close closes its idle connections).
	// An injected transport is the caller's to close.
	Transport http.RoundTripper
	// Logger receives one line per change of a peer's state. Default:
	// discarded.
	Logger logrus.FieldLogger
}

// withDefaults validates o and fills its zero values. Every problem is
// reported, each naming its field; the secret itself is never quoted.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	self, err := canonicalAddr(o.Self)
	if err != nil {
		errs = append(errs, fmt.Errorf("Self: %w", err))
	}
	o.Self = self
	secrets := Secrets(o.Secret)
	if len(secrets) == 0 {
		errs = append(errs, errors.New("Secret: empty: every replica needs the cluster secret"))
	}
	for i, s := range secrets {
		if strings.ContainsFunc(s, unicode.IsControl) {
			// A header value cannot hold control characters: such a
			// secret could never match.
			errs = append(errs, fmt.Errorf("Secret: line %d holds a control character, which a bearer token cannot carry", i+1))
		}
	}
	peers := make([]string, 0, len(o.Peers))
	for i, p := range o.Peers {
		a, err := canonicalAddr(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("Peers[%d]: %w", i, err))
			continue
		}
		peers = append(peers, a)
	}
	o.Peers = peers
	if o.DNS != "" {
		if _, _, err := splitAddr(o.DNS); err != nil {
			errs = append(errs, fmt.Errorf("DNS: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("cluster: %w", err)
	}
	if o.Lookup == nil {
		o.Lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.ResolveEvery <= 0 {
		o.ResolveEvery = DefaultResolveEvery
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = DefaultCheckEvery
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.DownAfter <= 0 {
		o.DownAfter = DefaultDownAfter
	}
	if o.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Logger = l
	}
	return o, nil
}

// canonicalAddr checks that s is host:port with a numeric port and spells
// it the one way every replica will: an IP in netip's canonical form (an
// IPv4-mapped IPv6 address as IPv4), a host name in lower case.
func canonicalAddr(s string) (string, error) {
	host, port, err := splitAddr(s)
	if err != nil {
		return "", err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else {
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, port), nil
}

// splitAddr splits host:port, requiring both and a port in 1..65535.
func splitAddr(s string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("%q has no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: port %q is not a number in 1..65535", s, port)
	}
	return host, port, nil
}
