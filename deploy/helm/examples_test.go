package helm_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// example is a documented values file and what it must render.
type example struct {
	file  string // under wharf/examples
	check func(t *testing.T, m manifests, cfg loadedConfig)
}

// examples are the documented values files (wharf/examples, each shown
// in wharf/README.md) and what each must render. Every file there has a
// row.
var examples = []example{
	{"default.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		if img := container(t, m).Image; img != "registry.example.internal/wharf:0.1.0" {
			t.Errorf("image %q, want the example's registry.example.internal/wharf:0.1.0", img)
		}
		if len(m.secrets) != 0 || m.ingress != nil || m.serviceMonitor != nil {
			t.Errorf("the defaults render a Secret, Ingress or ServiceMonitor: %d objects", m.count)
		}
		if cfg.Auth.Htpasswd != "" || cfg.Upstream.Password != "" {
			t.Errorf("the defaults configure users or an upstream password")
		}
	}},
	{"htpasswd.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		if len(m.secrets) != 1 {
			t.Fatalf("want the chart's one Secret, got %v", keys(m.secrets))
		}
		if cfg.Auth.Htpasswd == "" {
			t.Fatal("the config names no htpasswd file")
		}
		// The file the config names is the Secret's, mounted: the user
		// the example documents logs in with the password it documents.
		user, hash, _ := strings.Cut(strings.TrimSpace(cfg.file(t, cfg.Auth.Htpasswd)), ":")
		if user != "ci" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")) != nil {
			t.Errorf("the mounted htpasswd file does not hold ci:s3cret (user %q)", user)
		}
		if !cfg.Auth.AnonymousPullOn() {
			t.Errorf("auth.anonymousPull is off")
		}
		if m.sts.Spec.Template.Annotations["checksum/secret"] == "" {
			t.Errorf("the pod has no checksum/secret annotation: a changed Secret would not roll it")
		}
	}},
	{"upstream-credentials.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		if len(m.secrets) != 0 {
			t.Errorf("the chart renders Secrets %v though the example names an existing one", keys(m.secrets))
		}
		if cfg.Upstream.Username != "acme" {
			t.Errorf("upstream.username %q, want acme", cfg.Upstream.Username)
		}
		// Load read passwordFile: the password is the existing Secret's
		// key "token", mounted where the config points.
		if got, want := cfg.Upstream.Password.Value(), existingContent("dockerhub", "token"); got != want {
			t.Errorf("upstream password %q, want the Secret dockerhub's key token (%q)", got, want)
		}
	}},
	{"ingress.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		ing := m.ingress
		if ing == nil {
			t.Fatal("no Ingress")
		}
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
			t.Errorf("ingressClassName %v, want nginx", ing.Spec.IngressClassName)
		}
		if ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] != "0" {
			t.Errorf("no unlimited body size: %v", ing.Annotations)
		}
		if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "mirror-tls" {
			t.Errorf("tls %+v, want mirror-tls", ing.Spec.TLS)
		}
		if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "mirror.example.internal" || ing.Spec.Rules[0].HTTP == nil {
			t.Fatalf("rules %+v, want one for mirror.example.internal", ing.Spec.Rules)
		}
		for _, p := range ing.Spec.Rules[0].HTTP.Paths {
			b := p.Backend.Service
			if b == nil || b.Name != m.svc.Name || b.Port.Name != m.svc.Spec.Ports[0].Name {
				t.Errorf("path %s goes to %+v, not the Service %s port %s", p.Path, b, m.svc.Name, m.svc.Spec.Ports[0].Name)
			}
		}
	}},
	{"private-registry.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		if len(cfg.Upstreams) != 1 {
			t.Fatalf("upstreams %+v, want registry.local:5000", cfg.Upstreams)
		}
		u := cfg.Upstreams[0]
		if u.Name != "registry.local:5000" || u.Prefix != "local" {
			t.Errorf("upstream %q prefix %q, want registry.local:5000 as local", u.Name, u.Prefix)
		}
		// Load read the passwordFile from the Secret's volume; the CA
		// file is read when wharf connects: it must be mounted too.
		if got, want := u.Password.Value(), existingContent("registry-local", "password"); got != want {
			t.Errorf("password %q, want the Secret registry-local's key password (%q)", got, want)
		}
		if got, want := cfg.file(t, u.CAFile), existingContent("registry-local-ca", "ca.crt"); got != want {
			t.Errorf("caFile holds %q, want the ConfigMap registry-local-ca's key ca.crt", got)
		}
	}},
	{"cluster.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		checkClusterWiring(t, m, cfg, 3)
		if len(m.secrets) != 0 {
			t.Errorf("the chart renders Secrets %v though the example names existing ones", keys(m.secrets))
		}
		s3 := cfg.Storage.S3
		if s3.Endpoint != "https://s3.example.internal" || s3.Bucket != "wharf" || s3.Region != "eu-west-1" ||
			s3.PathStyle == nil || !*s3.PathStyle || s3.MaxSize != 2<<40 {
			t.Errorf("storage.s3 %+v, want the example's endpoint, bucket, region, path style and 2TiB cap", s3)
		}
		// The keys are the existing Secret's, as a variable and a file.
		if s3.AccessKey != existingContent("wharf-s3", "access-key") || s3.SecretKey.Value() != existingContent("wharf-s3", "secret-key") {
			t.Errorf("S3 keys %q/%q, want the Secret wharf-s3's access-key and secret-key", s3.AccessKey, s3.SecretKey.Value())
		}
		if got, want := cfg.file(t, cfg.cluster.SecretFile), existingContent("wharf-cluster", "cluster-secret"); got != want || cfg.Cluster.Secret.Value() != want {
			t.Errorf("cluster secret file %q, loaded %q: want the Secret wharf-cluster's key cluster-secret", got, cfg.Cluster.Secret.Value())
		}
		if want := "wharf-peers.wharf.svc.cluster.local:5001"; cfg.Cluster.DNS != want {
			t.Errorf("cluster.dns %q, want the release's headless Service %s", cfg.Cluster.DNS, want)
		}
		if cfg.Storage.MaxSize != 36<<30 {
			t.Errorf("storage.maxSize %d, want 36GiB", cfg.Storage.MaxSize)
		}
		if tsc := m.pod.Spec.TopologySpreadConstraints; len(tsc) != 1 || tsc[0].TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("topologySpreadConstraints %+v, want one over kubernetes.io/hostname", tsc)
		}
	}},
	{"aws-irsa.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		if len(m.secrets) != 0 {
			t.Errorf("the chart renders Secrets %v for a store reached by a role", keys(m.secrets))
		}
		sa := m.serviceAccount
		if sa == nil {
			t.Fatal("no ServiceAccount")
		}
		if got := sa.Annotations["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::111122223333:role/wharf-content" {
			t.Errorf("the ServiceAccount's role-arn %q, want the example's", got)
		}
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("the ServiceAccount mounts an API token in its pods: wharf does not talk to Kubernetes")
		}
		if m.pod.Spec.ServiceAccountName != sa.Name {
			t.Errorf("the pod runs as %q, want the chart's ServiceAccount %q", m.pod.Spec.ServiceAccountName, sa.Name)
		}
		s3 := cfg.Storage.S3
		if !s3.IAMRoleOn() || s3.AccessKey != "" || s3.SecretKey != "" || s3.Bucket != "wharf-content" || s3.Region != "eu-west-1" {
			t.Errorf("storage.s3 %+v, want the example's bucket and region through the IAM role, without keys", s3)
		}
		for k := range containerEnv(t, m) {
			if strings.Contains(k, "ACCESS_KEY") || strings.Contains(k, "SECRET") {
				t.Errorf("the container has %s, though the store is reached by its role", k)
			}
		}
	}},
	{"nodeport-monitoring.yaml", func(t *testing.T, m manifests, cfg loadedConfig) {
		p := m.svc.Spec.Ports[0]
		if m.svc.Spec.Type != corev1.ServiceTypeNodePort || p.NodePort != 30500 {
			t.Errorf("Service %s port %+v, want NodePort 30500", m.svc.Spec.Type, p)
		}
		claim := m.claims[0].Spec
		if claim.StorageClassName == nil || *claim.StorageClassName != "fast-ssd" || !claim.Resources.Requests.Storage().Equal(resource.MustParse("200Gi")) {
			t.Errorf("claim %+v, want 200Gi of fast-ssd", claim)
		}
		if cfg.Storage.MaxSize != 180<<30 {
			t.Errorf("storage.maxSize %d, want 180GiB", cfg.Storage.MaxSize)
		}
		var names []string
		for _, u := range cfg.Upstreams {
			names = append(names, u.Name)
		}
		if !slices.Equal(names, []string{"ghcr.io", "quay.io"}) {
			t.Errorf("upstreams %v, want ghcr.io and quay.io", names)
		}
		sm := m.serviceMonitor
		if sm == nil {
			t.Fatal("no ServiceMonitor")
		}
		if sm.Labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor labels %v lack release: prometheus", sm.Labels)
		}
		checkServiceMonitor(t, m)
	}},
}

// TestHelmExamples renders the chart with each documented example (see
// wharf/README.md) and checks what the example is for, besides what
// every rendering must get right.
func TestHelmExamples(t *testing.T) {
	readme, err := os.ReadFile("wharf/README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(chart, "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if !slices.ContainsFunc(examples, func(e example) bool { return e.file == name }) {
			t.Errorf("%s: no row in examples says what it must render", f)
		}
		if !strings.Contains(string(readme), "--values deploy/helm/wharf/examples/"+name) {
			t.Errorf("no helm install in wharf/README.md uses %s", f)
		}
	}
	// The README's commands install what this test renders: the chart
	// from the checkout, as release wharf in namespace wharf.
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "helm ") && !strings.HasPrefix(l, "helm install "+release+" deploy/helm/"+chart+" --namespace "+namespace+" ") {
			t.Errorf("wharf/README.md: %q is not the install this test renders (helm install %s deploy/helm/%s --namespace %s)", l, release, chart, namespace)
		}
	}
	helm := needHelm(t)
	for _, ex := range examples {
		t.Run(ex.file, func(t *testing.T) {
			m := template(t, helm, []string{filepath.Join(chart, "examples", ex.file)})
			checkWiring(t, m)
			ex.check(t, m, loadConfig(t, m))
		})
	}
}
