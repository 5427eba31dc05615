package cluster

import (
	"context"
	"errors"
	"net"
	"slices"
)

// resolve looks DNS's name up and makes its addresses the DNS members. A
// name that does not exist or has no records leaves no DNS members (the
// headless Service of a cluster with no ready pod); any other failure
// keeps the last answer, so that a DNS hiccup does not reshuffle every
// key's owner.
func (c *Cluster) resolve(ctx context.Context) {
	host, port, _ := splitAddr(c.opts.DNS) // checked by New
	ctx, cancel := context.WithTimeout(ctx, c.opts.ResolveEvery)
	defer cancel()
	ips, err := c.opts.Lookup(ctx, host)
	if err != nil {
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			if ctx.Err() == nil {
				c.opts.Logger.WithError(err).WithField("dns", c.opts.DNS).Warn("cluster: resolving the members failed; keeping the last answer")
			}
			return
		}
		ips = nil
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		if a := net.JoinHostPort(ip.Unmap().String(), port); a != c.opts.Self {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	c.mu.Lock()
	if slices.Equal(addrs, c.dns) {
		c.mu.Unlock()
		return
	}
	c.setPeersLocked(addrs)
	c.mu.Unlock()
	c.opts.Logger.WithField("dns", c.opts.DNS).WithField("members", len(addrs)).Info("cluster: members found by DNS changed")
}
