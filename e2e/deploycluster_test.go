package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wharf-mirror/wharf/config"
)

// This file checks deploy/cluster/ (three replicas on MinIO behind
// HAProxy) without Docker: what the cluster needs of each file, and that
// the files agree with each other.

// clusterCompose is what TestDeployCluster reads of
// deploy/cluster/compose.yaml (YAML merge keys resolved by the decoder).
type clusterCompose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Hostname    string            `yaml:"hostname"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Expose      []string          `yaml:"expose"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Secrets     []string          `yaml:"secrets"`
		ReadOnly    bool              `yaml:"read_only"`
		CapDrop     []string          `yaml:"cap_drop"`
		SecurityOpt []string          `yaml:"security_opt"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// clusterFileConfig is what the test reads of deploy/cluster/config.yaml
// itself, besides loading it with wharf's loader.
type clusterFileConfig struct {
	Listen  string `yaml:"listen"`
	Storage struct {
		Dir string `yaml:"dir"`
		S3  struct {
			Endpoint      string `yaml:"endpoint"`
			Bucket        string `yaml:"bucket"`
			SecretKeyFile string `yaml:"secretKeyFile"`
		} `yaml:"s3"`
	} `yaml:"storage"`
	Cluster struct {
		Listen     string   `yaml:"listen"`
		Peers      []string `yaml:"peers"`
		DNS        string   `yaml:"dns"`
		SecretFile string   `yaml:"secretFile"`
	} `yaml:"cluster"`
}

// clusterReplicas are deploy/cluster's replicas, as compose.yaml's
// services, config.yaml's peers and haproxy.cfg's servers name them.
var clusterReplicas = []string{"wharf-1", "wharf-2", "wharf-3"}

// composeDefault is ${VAR:-default}'s default ("" for ${VAR}); text
// without a variable is returned as is.
func composeDefault(s string) string {
	return os.Expand(s, func(v string) string {
		_, def, _ := strings.Cut(v, ":-")
		return def
	})
}

// TestDeployCluster checks deploy/cluster: the replicas share one
// config, bucket, secret and peer list, each names itself as the peer
// list does, only HAProxy's port is published (never the peer port),
// HAProxy balances round-robin over every replica with a /healthz check,
// every service is hardened as deploy/compose.yaml is, and the README's
// commands use what compose.yaml reads.
func TestDeployCluster(t *testing.T) {
	var cf clusterCompose
	if err := yaml.Unmarshal(readDeploy(t, "cluster", "compose.yaml"), &cf); err != nil {
		t.Fatal(err)
	}
	var fc clusterFileConfig
	if err := yaml.Unmarshal(readDeploy(t, "cluster", "config.yaml"), &fc); err != nil {
		t.Fatal(err)
	}
	_, peerPort, err := net.SplitHostPort(fc.Cluster.Listen)
	if err != nil || peerPort == "" {
		t.Fatalf("config.yaml: cluster.listen %q: want :PORT", fc.Cluster.Listen)
	}
	_, clientPort, err := net.SplitHostPort(fc.Listen)
	if err != nil || clientPort == peerPort {
		t.Fatalf("config.yaml: listen %q and cluster.listen %q: want two ports", fc.Listen, fc.Cluster.Listen)
	}

	replicas := clusterReplicas
	for name, s := range cf.Services {
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: want read_only, cap_drop ALL and no-new-privileges (read_only %v, cap_drop %q, security_opt %q)",
				name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		for _, p := range append(slices.Clone(s.Ports), s.Expose...) {
			if p == peerPort || strings.HasSuffix(p, ":"+peerPort) || strings.HasPrefix(p, peerPort+"/") {
				t.Errorf("%s publishes or exposes the peer port %s (%q): only the replicas may reach it", name, peerPort, p)
			}
		}
		if len(s.Ports) > 0 && name != "haproxy" {
			t.Errorf("%s publishes %q: only HAProxy's port is for clients", name, s.Ports)
		}
	}
	if hp := cf.Services["haproxy"].Ports; len(hp) != 1 || !strings.HasSuffix(hp[0], ":5000") {
		t.Errorf("haproxy ports %q, want one mapping to its port 5000", hp)
	}

	// The replicas: one image, one config, the same variables and
	// secrets, a volume each, named as the peer list names them.
	img := deployImageSpec(t)
	var first string
	var wantPeers []string
	volumes := map[string]string{}
	for _, r := range replicas {
		s, ok := cf.Services[r]
		if !ok {
			t.Fatalf("compose.yaml has no service %s", r)
		}
		wantPeers = append(wantPeers, net.JoinHostPort(s.Hostname, peerPort))
		if s.Hostname != r {
			t.Errorf("%s: hostname %q: a replica's default cluster.self is <hostname>:%s, and the peer list and HAProxy name it %s",
				r, s.Hostname, peerPort, r)
		}
		if !slices.Equal(s.Healthcheck.Test, append([]string{"CMD"}, img.HealthCheck...)) {
			t.Errorf("%s: healthcheck %q is not the image's %q", r, s.Healthcheck.Test, img.HealthCheck)
		}
		if s.DependsOn["s3-bucket"].Condition != "service_completed_successfully" {
			t.Errorf("%s: does not wait for the bucket (depends_on %v)", r, s.DependsOn)
		}
		mounts := map[string]string{}
		for _, v := range s.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			dst, _, _ = strings.Cut(dst, ":")
			mounts[dst] = src
		}
		if mounts["/etc/wharf/config.yaml"] != "./config.yaml" {
			t.Errorf("%s: /etc/wharf/config.yaml is %q, want ./config.yaml", r, mounts["/etc/wharf/config.yaml"])
		}
		data := mounts[fc.Storage.Dir]
		if _, named := cf.Volumes[data]; !named {
			t.Errorf("%s: %s is %q, not a named volume", r, fc.Storage.Dir, data)
		} else if other, taken := volumes[data]; taken {
			t.Errorf("%s and %s share the volume %s: each replica has its own index", other, r, data)
		}
		volumes[data] = r
		// Everything but the name and the volume is the same.
		same := fmt.Sprint(s.Image, s.Environment, s.Secrets, s.ReadOnly)
		if first == "" {
			first = same
		} else if same != first {
			t.Errorf("%s differs from wharf-1 in image, environment or secrets: %s, want %s", r, same, first)
		}
		for _, sec := range []string{"cluster_secret", "s3_secret_key"} {
			if !slices.Contains(s.Secrets, sec) {
				t.Errorf("%s does not get the secret %s", r, sec)
			}
		}
	}
	if !slices.Equal(fc.Cluster.Peers, wantPeers) || fc.Cluster.DNS != "" {
		t.Errorf("config.yaml: cluster.peers %q (dns %q), want exactly the replicas %q", fc.Cluster.Peers, fc.Cluster.DNS, wantPeers)
	}
	if fc.Cluster.SecretFile != "/run/secrets/cluster_secret" || fc.Storage.S3.SecretKeyFile != "/run/secrets/s3_secret_key" {
		t.Errorf("config.yaml: cluster.secretFile %q, storage.s3.secretKeyFile %q: want the compose secrets' files",
			fc.Cluster.SecretFile, fc.Storage.S3.SecretKeyFile)
	}

	// The store: the replicas' endpoint is the MinIO service, their
	// access key its root user, their bucket the one s3-bucket creates.
	minio, bucket := cf.Services["s3"], cf.Services["s3-bucket"]
	if !slices.Contains(minio.Command, "server") {
		t.Errorf("s3: command %q does not run a MinIO server", minio.Command)
	}
	if want := "http://s3:9000"; fc.Storage.S3.Endpoint != want || !slices.Contains(minio.Command, ":9000") {
		t.Errorf("storage.s3.endpoint %q, MinIO's command %q: want %s", fc.Storage.S3.Endpoint, minio.Command, want)
	}
	key := cf.Services["wharf-1"].Environment["WHARF_STORAGE_S3_ACCESS_KEY"]
	if key == "" || minio.Environment["MINIO_ROOT_USER"] != key || bucket.Environment["S3_ACCESS_KEY"] != key {
		t.Errorf("access keys: wharf %q, MinIO %q, s3-bucket %q: want one", key,
			minio.Environment["MINIO_ROOT_USER"], bucket.Environment["S3_ACCESS_KEY"])
	}
	if minio.Environment["MINIO_ROOT_PASSWORD_FILE"] != "s3_secret_key" || !slices.Contains(minio.Secrets, "s3_secret_key") ||
		!slices.Contains(bucket.Secrets, "s3_secret_key") {
		t.Errorf("MinIO (%v) or s3-bucket (%q) does not read the secret s3_secret_key", minio.Environment, bucket.Secrets)
	}
	if cmd := strings.Join(bucket.Command, " "); !strings.Contains(cmd, "mc mb --ignore-existing s3/"+fc.Storage.S3.Bucket+"\n") &&
		!strings.HasSuffix(cmd, "mc mb --ignore-existing s3/"+fc.Storage.S3.Bucket) {
		t.Errorf("s3-bucket's command %q does not create the bucket %q", cmd, fc.Storage.S3.Bucket)
	}
	if bucket.DependsOn["s3"].Condition != "service_healthy" {
		t.Errorf("s3-bucket does not wait for MinIO to be healthy: %v", bucket.DependsOn)
	}

	// The trial secrets exist and are long enough for wharf and MinIO.
	for name, min := range map[string]int{"cluster_secret": 16, "s3_secret_key": 8} {
		file := composeDefault(cf.Secrets[name].File)
		if !strings.HasPrefix(cf.Secrets[name].File, "${") || !strings.HasPrefix(file, "./trial-secrets/") {
			t.Errorf("secret %s: file %q, want a variable defaulting to a file in trial-secrets/", name, cf.Secrets[name].File)
			continue
		}
		b := readDeploy(t, "cluster", file)
		if n := len(strings.TrimRight(string(b), "\n")); n < min || !strings.HasPrefix(string(b), "TRIAL-ONLY-") {
			t.Errorf("%s: %d bytes, want at least %d, marked TRIAL-ONLY-", file, n, min)
		}
	}

	t.Run("config loads", func(t *testing.T) { checkClusterConfigLoads(t, cf.Services["wharf-1"].Environment, cf) })
	t.Run("haproxy", func(t *testing.T) { checkClusterHAProxy(t, cf, replicas, clientPort) })
	t.Run("readme", func(t *testing.T) { checkClusterReadme(t, "deploy/cluster/README.md") })

	if dc, err := deployTool("docker-compose"); err == nil {
		deployRun(t, deployTimeout(t), dc, "-f", deployPath(t, "cluster", "compose.yaml"), "config", "-q")
	} else {
		t.Logf("cluster/compose.yaml not checked with docker-compose: %v", err)
	}
}

// checkClusterConfigLoads loads deploy/cluster/config.yaml with wharf's
// loader and a replica's environment, the secrets' paths pointing at the
// trial files compose mounts there.
func checkClusterConfigLoads(t *testing.T, environment map[string]string, cf clusterCompose) {
	data := string(readDeploy(t, "cluster", "config.yaml"))
	for name, s := range cf.Secrets {
		data = strings.ReplaceAll(data, "/run/secrets/"+name, deployPath(t, "cluster", composeDefault(s.File)))
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	env := map[string]string{}
	for k, v := range environment {
		if !known[k] {
			t.Errorf("environment %s is not a wharf setting", k)
		}
		env[k] = composeDefault(v)
	}
	cfg, err := config.LoadWith(config.LoadOptions{
		Args:      []string{"--config", file},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Output:    io.Discard,
	})
	if err != nil {
		t.Fatalf("config.yaml with a replica's environment does not load: %v", err)
	}
	s3 := cfg.Storage.S3
	if !s3.On() || s3.AccessKey != env["WHARF_STORAGE_S3_ACCESS_KEY"] || s3.SecretKey.Value() == "" ||
		s3.PathStyle == nil || !*s3.PathStyle {
		t.Errorf("storage.s3 %+v: want MinIO path-style with the access key and the secret key file", s3)
	}
	if cfg.Storage.Dir != "/data" || cfg.Listen != ":5000" {
		t.Errorf("storage.dir %q, listen %q: want the image's /data and :5000", cfg.Storage.Dir, cfg.Listen)
	}
	c := cfg.Cluster
	if want := []string{"wharf-1:5001", "wharf-2:5001", "wharf-3:5001"}; !slices.Equal(c.Peers, want) || c.DNS != "" {
		t.Errorf("cluster.peers %q (dns %q), want %q", c.Peers, c.DNS, want)
	}
	if c.Listen != ":5001" || c.Self != "" {
		t.Errorf("cluster.listen %q, self %q: want :5001, and self from each replica's hostname", c.Listen, c.Self)
	}
	// Every replica mounts the one compose secret; the loader read it.
	secret := deployPath(t, "cluster", composeDefault(cf.Secrets["cluster_secret"].File))
	b, err := os.ReadFile(secret)
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Secret.Value(); len(v) < 16 || v != strings.TrimRight(string(b), "\n") || c.SecretFile != "" {
		t.Errorf("cluster.secret: %d bytes (secretFile %q left), want at least 16, the content of %s", len(v), c.SecretFile, secret)
	}
	for name, s := range cf.Services {
		if strings.HasPrefix(name, "wharf-") && !slices.Contains(s.Secrets, "cluster_secret") {
			t.Errorf("%s does not mount the secret cluster_secret: its peers would refuse it", name)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("config.yaml with a replica's environment does not validate: %v", err)
	}
}

var haproxyServerRE = regexp.MustCompile(`^server\s+(\S+)\s+(\S+)`)

// checkClusterHAProxy reads haproxy.cfg: the frontend binds the port
// compose publishes, the backend is round-robin without stickiness over
// every replica's client port, each checked with GET /healthz.
func checkClusterHAProxy(t *testing.T, cf clusterCompose, replicas []string, clientPort string) {
	hp := cf.Services["haproxy"]
	if !slices.Contains(hp.Volumes, "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro") {
		t.Errorf("haproxy volumes %q: haproxy.cfg is not the image's config file", hp.Volumes)
	}
	sections := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(readDeploy(t, "cluster", "haproxy.cfg")))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			cur = strings.Join(strings.Fields(line), " ")
			continue
		}
		sections[cur] = append(sections[cur], strings.Join(strings.Fields(line), " "))
	}
	if fe := sections["frontend registry"]; !slices.Contains(fe, "bind :5000") || !slices.Contains(fe, "default_backend wharf") {
		t.Errorf("frontend registry %q: want bind :5000 (the published port) and default_backend wharf", fe)
	}
	be := sections["backend wharf"]
	for _, want := range []string{"balance roundrobin", "option httpchk GET /healthz", "http-check expect status 200"} {
		if !slices.Contains(be, want) {
			t.Errorf("backend wharf lacks %q: %q", want, be)
		}
	}
	defaultCheck, serverChecks := false, 0
	var servers []string
	for _, l := range be {
		for _, sticky := range []string{"cookie", "stick", "balance source", "hash-type"} {
			if strings.HasPrefix(l, sticky) {
				t.Errorf("backend wharf %q: no stickiness wanted, any replica serves any request", l)
			}
		}
		f := strings.Fields(l)
		defaultCheck = defaultCheck || f[0] == "default-server" && slices.Contains(f, "check")
		if m := haproxyServerRE.FindStringSubmatch(l); m != nil {
			servers = append(servers, m[2])
			if slices.Contains(f, "check") {
				serverChecks++
			}
		}
	}
	var want []string
	for _, r := range replicas {
		want = append(want, net.JoinHostPort(r, clientPort))
	}
	if !slices.Equal(servers, want) {
		t.Errorf("backend wharf servers %q, want every replica's client port %q", servers, want)
	}
	if !defaultCheck && serverChecks < len(servers) {
		t.Errorf("backend wharf: %d of %d servers are health-checked (no check on default-server)", serverChecks, len(servers))
	}
	if haproxy, err := deployTool("haproxy"); err == nil {
		// -c resolves the server names at parse time; init-addr lets it
		// pass without them, as HAProxy starts before the replicas.
		deployRun(t, deployTimeout(t), haproxy, "-c", "-f", deployPath(t, "cluster", "haproxy.cfg"))
	} else {
		t.Logf("haproxy.cfg not checked with haproxy -c: %v", err)
	}
}

// checkClusterReadme: deploy/cluster/README.md's commands start this
// compose file, and every variable they export is one compose.yaml reads.
func checkClusterReadme(t *testing.T, readme string) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), readme))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(readme, data)
	if err != nil || len(blocks) < 2 {
		t.Fatalf("%s: %d code blocks, want the start and the secrets: %v", readme, len(blocks), err)
	}
	compose := string(readDeploy(t, "cluster", "compose.yaml"))
	ups := 0
	for _, b := range blocks {
		for _, l := range strings.Split(b.body, "\n") {
			if strings.HasPrefix(l, "docker compose ") {
				ups++
				if !strings.HasPrefix(l, "docker compose -f deploy/cluster/compose.yaml ") {
					t.Errorf("%s: %q is not on deploy/cluster/compose.yaml", b, l)
				}
			}
			for _, m := range regexp.MustCompile(`\b([A-Z][A-Z0-9_]+)=`).FindAllStringSubmatch(l, -1) {
				if !strings.Contains(compose, "${"+m[1]+":-") {
					t.Errorf("%s: %s is not a variable compose.yaml reads", b, m[1])
				}
			}
		}
	}
	if ups < 2 {
		t.Errorf("%s: %d docker compose commands, want the trial's and the one with your secrets", readme, ups)
	}
}
