package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Cluster makes this wharf one replica of several sharing a storage.s3
// bucket: replicas find each other (Peers, DNS), give every digest and tag
// an owner, and ask the owner before the upstream, so the upstream is
// asked once for the cluster (docs/cluster.md). It is on when Peers or DNS
// is set (Cluster.On).
type Cluster struct {
	// Listen is the peer listener's address, host:port: health checks and
	// the replicas' requests to each other, never clients. It must differ
	// from Listen. Default ":5001".
	Listen string `yaml:"listen"`
	// Self is this replica's address as the others reach it, host:port,
	// spelled as they spell it (the name it is ranked by). Default "":
	// the host name and Listen's port.
	Self string `yaml:"self"`
	// Peers is a static list of the replicas' addresses, host:port; self
	// may be among them. Default none.
	Peers []string `yaml:"peers"`
	// DNS is name:port, resolved every 5s; each address found is a
	// replica at that port (a Kubernetes headless Service). Default "".
	DNS string `yaml:"dns"`
	// Secret is the cluster secret every replica shares, at least 16
	// bytes: peers authenticate with it. It may hold several, one per
	// line, each at least 16 bytes: the first is sent, any is accepted,
	// so that a secret is rotated replica by replica (the new one added
	// second everywhere, then moved first, then alone). Required when on.
	// Default "".
	Secret Secret `yaml:"secret"`
	// SecretFile names a file holding the secret, or the secrets one per
	// line (a mounted secret). Load reads it, trims trailing newlines,
	// stores the result in Secret and clears this field. Not together
	// with Secret. Default "".
	SecretFile string `yaml:"secretFile"`
}

// minClusterSecret is the shortest cluster secret accepted.
const minClusterSecret = 16

func defaultCluster() Cluster { return Cluster{Listen: ":5001"} }

// On reports whether this wharf is a replica of a cluster.
func (c Cluster) On() bool { return len(c.Peers) > 0 || c.DNS != "" }

// SelfAddr is Self, or the host name with Listen's port.
func (c Cluster) SelfAddr() (string, error) {
	if c.Self != "" {
		return c.Self, nil
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return "", fmt.Errorf("cluster.listen: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster.self is empty and the host name is unknown: %w", err)
	}
	return net.JoinHostPort(host, port), nil
}

// clusterProblems checks the section when it is on; listen is the
// client listener's address.
func (c Cluster) problems(listen string, s3 bool) []*fieldError {
	if !c.On() {
		return nil
	}
	var ps []*fieldError
	add := func(field, format string, args ...any) {
		ps = append(ps, &fieldError{path: "cluster." + field, err: fmt.Errorf(format, args...)})
	}
	if err := checkAddr(c.Listen); err != nil {
		add("listen", "%w", err)
	} else if samePort(c.Listen, listen) {
		add("listen", "%q is also the registry's listen address %q: clients must never reach the peer listener", c.Listen, listen)
	}
	if c.Self != "" {
		if err := checkHostPort(c.Self); err != nil {
			add("self", "%w", err)
		}
	}
	for i, p := range c.Peers {
		if err := checkHostPort(p); err != nil {
			add(fmt.Sprintf("peers[%d]", i), "%w", err)
		}
	}
	if c.DNS != "" {
		if err := checkHostPort(c.DNS); err != nil {
			add("dns", "%w", err)
		}
		if c.Self == "" {
			// The name resolves to addresses; a replica that called itself
			// by its host name would also find itself among them under
			// another name, rank keys unlike the others, and ask itself.
			add("self", "is required with cluster.dns: this replica's address as the name resolves it (e.g. $(POD_IP):5001)")
		}
	}
	switch {
	case c.Secret != "" && c.SecretFile != "":
		add("secret", "set together with cluster.secretFile; use one")
	case c.Secret == "" && c.SecretFile == "":
		add("secret", "is required with cluster.peers or cluster.dns (or set cluster.secretFile or WHARF_CLUSTER_SECRET)")
	case c.Secret != "":
		if err := checkClusterSecrets(string(c.Secret)); err != nil {
			add("secret", "%w", err)
		}
	}
	if !s3 {
		add("peers", "a cluster needs storage.s3: the replicas share its bucket")
	}
	return ps
}

// resolveCluster reads cluster.secretFile.
func (l *loader) resolveCluster() {
	c := &l.cfg.Cluster
	if !c.On() || c.SecretFile == "" || c.Secret != "" {
		return
	}
	if s, ok := l.readSecretFile(c.SecretFile, "cluster.secretFile"); ok {
		if err := checkClusterSecrets(string(s)); err != nil {
			l.fail(fmt.Errorf("cluster.secretFile: %w", err))
			return
		}
		c.Secret, c.SecretFile = s, ""
	}
}

// checkClusterSecrets checks each of the secrets s holds, one per line
// (blank lines and the spaces around a line do not count, as package
// cluster reads them): there is one at least, and each is long enough.
// The error never quotes a secret.
func checkClusterSecrets(s string) error {
	n := 0
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n++
		if len(line) < minClusterSecret {
			return fmt.Errorf("the secret on line %d is %d bytes; use at least %d", i+1, len(line), minClusterSecret)
		}
	}
	if n == 0 {
		return fmt.Errorf("holds no secret, only blank lines")
	}
	return nil
}

// checkHostPort accepts host:port with a host and a port in 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q needs a host and a port in 1..65535", s)
	}
	return nil
}

// samePort reports whether two listen addresses would collide: the same
// port on the same or any interface.
func samePort(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || ha == "" || hb == "" || ha == "0.0.0.0" || hb == "0.0.0.0" || ha == "::" || hb == "::"
}

// parseList splits a comma-separated value, trimmed, without empty entries.
func parseList(p *[]string, s string) {
	*p = nil
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			*p = append(*p, e)
		}
	}
}
