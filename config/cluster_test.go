package config

import (
	"slices"
	"strings"
	"testing"
)

const clusterSecret = "cluster-Zq8pL2vX-secret"

// withCluster is a loaded default config on storage.s3 with change
// applied to its cluster section.
func withCluster(change func(*Cluster)) Config {
	return withS3(func(*S3) {}).withClusterChange(change)
}

func (c Config) withClusterChange(change func(*Cluster)) Config {
	change(&c.Cluster)
	return c
}

// TestClusterValidation: every problem of the section is reported,
// naming its setting, and the secret is never quoted.
func TestClusterValidation(t *testing.T) {
	t.Parallel()
	on := func(c *Cluster) { c.Peers, c.Secret = []string{"wharf-0:5001", "wharf-1:5001"}, clusterSecret }
	tests := []struct {
		name   string
		config Config
		want   string // "" for valid
	}{
		{"off by default", loaded(nil), ""},
		{"static peers", withCluster(on), ""},
		{"dns", withCluster(func(c *Cluster) {
			c.DNS, c.Self, c.Secret = "wharf-peers.default.svc:5001", "10.0.0.7:5001", clusterSecret
		}), ""},
		{"dns without self", withCluster(func(c *Cluster) { c.DNS, c.Secret = "wharf-peers.default.svc:5001", clusterSecret }), "cluster.self"},
		{"no secret", withCluster(func(c *Cluster) { on(c); c.Secret = "" }), "cluster.secret"},
		{"short secret", withCluster(func(c *Cluster) { on(c); c.Secret = "short" }), "cluster.secret"},
		{"secret and file", withCluster(func(c *Cluster) { on(c); c.SecretFile = "/run/s" }), "cluster.secret"},
		{"no s3", loaded(func(c *Config) { on(&c.Cluster) }), "storage.s3"},
		{"listen is the client's", withCluster(func(c *Cluster) { on(c); c.Listen = ":5000" }), "cluster.listen"},
		{"listen same port on an address", withCluster(func(c *Cluster) { on(c); c.Listen = "127.0.0.1:5000" }), "cluster.listen"},
		{"listen malformed", withCluster(func(c *Cluster) { on(c); c.Listen = "5001" }), "cluster.listen"},
		{"peer without port", withCluster(func(c *Cluster) { on(c); c.Peers = append(c.Peers, "wharf-2") }), "cluster.peers[2]"},
		{"peer without host", withCluster(func(c *Cluster) { on(c); c.Peers = []string{":5001"} }), "cluster.peers[0]"},
		{"peer bad port", withCluster(func(c *Cluster) { on(c); c.Peers = []string{"a:99999"} }), "cluster.peers[0]"},
		{"self malformed", withCluster(func(c *Cluster) { on(c); c.Self = "wharf-0" }), "cluster.self"},
		{"dns malformed", withCluster(func(c *Cluster) { on(c); c.DNS = "svc" }), "cluster.dns"},
	}
	for _, tt := range tests {
		err := tt.config.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want a problem naming %s", tt.name, err, tt.want)
		case err != nil && strings.Contains(err.Error(), clusterSecret):
			t.Errorf("%s: the error quotes the secret: %v", tt.name, err)
		}
	}
}

// TestClusterEveryLayer: the file, WHARF_CLUSTER_* and the flags set the
// section; the secret file is read and its short content refused.
func TestClusterEveryLayer(t *testing.T) {
	t.Parallel()
	s3 := "storage:\n  s3:\n    endpoint: https://s3.example.com\n    bucket: b\n"
	file := writeFile(t, "wharf.yaml", s3+"cluster:\n  listen: \":6001\"\n  self: a:6001\n  peers: [a:6001, b:6001]\n  secretFile: "+
		writeFile(t, "secret", clusterSecret+"\n")+"\n")
	got, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c := got.Cluster
	if !c.On() || c.Listen != ":6001" || c.Self != "a:6001" || !slices.Equal(c.Peers, []string{"a:6001", "b:6001"}) ||
		c.Secret != clusterSecret || c.SecretFile != "" {
		t.Errorf("from the file: %+v", c)
	}
	file = writeFile(t, "s3.yaml", s3)
	got, err = Load([]string{"--config", file, "--cluster-peers", "a:1, b:2", "--cluster-peers", "c:3"},
		env(map[string]string{"WHARF_CLUSTER_SECRET": clusterSecret, "WHARF_CLUSTER_DNS": "svc:5001", "WHARF_CLUSTER_SELF": "10.0.0.7:5001"}))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Cluster; !slices.Equal(c.Peers, []string{"a:1", "b:2", "c:3"}) || c.Secret != clusterSecret || c.DNS != "svc:5001" {
		t.Errorf("from env and flags: %+v", c)
	}
	short := writeFile(t, "short.yaml", s3+"cluster:\n  peers: [a:1]\n  secretFile: "+writeFile(t, "short", "tiny\n")+"\n")
	if _, err := Load([]string{"--config", short}, env(nil)); err == nil || !strings.Contains(err.Error(), "cluster.secretFile") {
		t.Errorf("a short secret file: %v", err)
	}
}

// TestClusterSecretsForARotation: the secret file or setting may hold
// several secrets, one per line, each of them long enough; the errors
// name the line, never the secret.
func TestClusterSecretsForARotation(t *testing.T) {
	t.Parallel()
	s3 := "storage:\n  s3:\n    endpoint: https://s3.example.com\n    bucket: b\n"
	two := clusterSecret + "-new\n" + clusterSecret + "\n"
	file := writeFile(t, "wharf.yaml", s3+"cluster:\n  peers: [a:1]\n  secretFile: "+writeFile(t, "secrets", two)+"\n")
	got, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(two, "\n"); string(got.Cluster.Secret) != want {
		t.Errorf("the secrets read: %d bytes, want %d", len(got.Cluster.Secret), len(want))
	}
	for _, tc := range []struct{ name, secret, want string }{
		{"a short second line", clusterSecret + "\nshort-one\n", "line 2"},
		{"blank lines only", "\n \n", "no secret"},
	} {
		f := writeFile(t, "bad.yaml", s3+"cluster:\n  peers: [a:1]\n  secretFile: "+writeFile(t, "bad", tc.secret)+"\n")
		if _, err := Load([]string{"--config", f}, env(nil)); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "short-one") {
			t.Errorf("%s, in the file: %v; want an error naming %q", tc.name, err, tc.want)
		}
		if _, err := Load([]string{"--config", writeFile(t, "s3.yaml", s3), "--cluster-peers", "a:1"},
			env(map[string]string{"WHARF_CLUSTER_SECRET": tc.secret})); err == nil || !strings.Contains(err.Error(), "cluster.secret") {
			t.Errorf("%s, in WHARF_CLUSTER_SECRET: %v", tc.name, err)
		}
	}
}
