package helm_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Cluster mode (docs/cluster.md): several replicas on one S3 store,
// rendered by the chart with cluster.enabled and by
// deploy/kubernetes/cluster. Both must wire the same things.

// checkClusterWiring is what a cluster rendering must get right: a
// Deployment of the given replicas, a headless Service with not-ready
// addresses on the container's peer port and nothing else, which the
// config's cluster.dns names; the clients' Service without the peer port
// nor affinity; each replica names itself by its pod IP on the peer
// port; a cluster secret of 16 bytes or more from a mounted Secret; the
// S3 store on with both keys; the local tier on a sized emptyDir above
// storage.maxSize; and a PodDisruptionBudget of one.
func checkClusterWiring(t *testing.T, m manifests, cfg loadedConfig, replicas int32) {
	t.Helper()
	if m.deploy == nil || m.sts != nil {
		t.Fatalf("cluster mode renders a Deployment and no StatefulSet")
	}
	if r := m.deploy.Spec.Replicas; r == nil || *r != replicas {
		t.Errorf("replicas %v, want %d", r, replicas)
	}
	c := container(t, m)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	cl := cfg.Cluster
	if !cl.On() {
		t.Fatalf("the loaded config's cluster is off (peers %q, dns %q)", cl.Peers, cl.DNS)
	}
	_, listen, err := net.SplitHostPort(cl.Listen)
	if err != nil || listen != strconv.Itoa(int(ports["peer"])) {
		t.Fatalf("cluster.listen %q, the container's port named peer is %d", cl.Listen, ports["peer"])
	}

	peers := m.peers
	if peers == nil {
		t.Fatal("no headless Service for the peers")
	}
	if !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("the peers Service does not publish not-ready addresses: a starting replica is unknown to the others")
	}
	if len(peers.Spec.Ports) != 1 || peers.Spec.Ports[0].TargetPort != intstr.FromString("peer") || peers.Spec.Ports[0].Port != ports["peer"] {
		t.Errorf("peers Service ports %+v, want only the peer port %d", peers.Spec.Ports, ports["peer"])
	}
	for k, v := range peers.Spec.Selector {
		if m.pod.Labels[k] != v {
			t.Errorf("peers Service selector %s=%s does not match the pod's labels %v", k, v, m.pod.Labels)
		}
	}
	if len(peers.Spec.Selector) == 0 {
		t.Errorf("the peers Service selects no pod")
	}
	if want := peers.Name + "." + namespace + ".svc.cluster.local:" + listen; cl.DNS != want || len(cl.Peers) != 0 {
		t.Errorf("cluster.dns %q (peers %q), want the headless Service %s", cl.DNS, cl.Peers, want)
	}
	// The headless Service names a replica by its IP: the replica must
	// rank itself under that name, which only the downward API knows.
	if want := net.JoinHostPort(podIP, listen); cl.Self != want || cfg.env["WHARF_CLUSTER_SELF"] != want {
		t.Errorf("cluster.self %q (WHARF_CLUSTER_SELF %q), want the pod's IP and the peer port (%s): the name the headless Service gives the replica",
			cl.Self, cfg.env["WHARF_CLUSTER_SELF"], want)
	}
	for _, p := range m.svc.Spec.Ports {
		if p.TargetPort == intstr.FromString("peer") || p.Port == ports["peer"] || p.TargetPort.IntValue() == int(ports["peer"]) {
			t.Errorf("the clients' Service reaches the peer port: %+v", p)
		}
	}
	if m.svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		t.Errorf("the clients' Service is sticky: any replica serves any request")
	}

	if cfg.cluster.Secret != "" || cfg.cluster.SecretFile == "" {
		t.Errorf("cluster.secret in the config file (%d bytes), secretFile %q: want the secret in a mounted Secret",
			len(cfg.cluster.Secret), cfg.cluster.SecretFile)
	} else if mounted := strings.TrimRight(cfg.file(t, cfg.cluster.SecretFile), "\n"); cl.Secret.Value() != mounted || len(mounted) < 16 {
		t.Errorf("the loaded cluster secret (%d bytes) is not the mounted file's %d bytes, or is under 16", len(cl.Secret.Value()), len(mounted))
	}
	s3 := cfg.Storage.S3
	if !s3.On() || s3.AccessKey == "" || s3.SecretKey.Value() == "" {
		t.Errorf("storage.s3 is off or lacks a key: endpoint %q, access key %q, secret key set %v", s3.Endpoint, s3.AccessKey, s3.SecretKey.Value() != "")
	}

	var data *corev1.Volume
	for _, vm := range c.VolumeMounts {
		for i, v := range m.pod.Spec.Volumes {
			if vm.MountPath == cfg.Storage.Dir && v.Name == vm.Name {
				data = &m.pod.Spec.Volumes[i]
			}
		}
	}
	if data == nil || data.EmptyDir == nil || data.EmptyDir.SizeLimit == nil {
		t.Errorf("storage.dir %s is not on a sized emptyDir: %+v", cfg.Storage.Dir, data)
	} else {
		limit := data.EmptyDir.SizeLimit
		if cfg.Storage.MaxSize <= 0 || resource.NewQuantity(int64(cfg.Storage.MaxSize), resource.BinarySI).Cmp(*limit) >= 0 {
			t.Errorf("storage.maxSize %d is not below the emptyDir's sizeLimit %s: the kubelet evicts a pod past it", cfg.Storage.MaxSize, limit)
		}
		if req, ok := c.Resources.Requests[corev1.ResourceEphemeralStorage]; !ok || req.Cmp(*limit) < 0 {
			t.Errorf("ephemeral-storage request %v is below the emptyDir's sizeLimit %s: the scheduler does not reserve the local tier", req, limit)
		}
	}

	pdb := m.pdb
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget")
	}
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget maxUnavailable %v minAvailable %v, want maxUnavailable 1", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if m.pod.Labels[k] != v {
			t.Errorf("PodDisruptionBudget selector %s=%s does not match the pod's labels", k, v)
		}
	}
}

// TestKubernetesCluster renders deploy/kubernetes/cluster with kubectl
// kustomize, decodes every object strictly, fills the Secret's empty
// values as the README says to, and checks the cluster's wiring and the
// config with wharf's loader, as for the chart.
func TestKubernetesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("kubectl runs as a subprocess: not in -short")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skipf("no kubectl to render deploy/kubernetes/cluster: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", filepath.Join("..", "kubernetes", "cluster"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
	}
	// The Namespace is the one object not in the namespace.
	var docs []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		if !strings.Contains(doc, "\nkind: Namespace\n") {
			docs = append(docs, doc)
		}
	}
	if len(docs) == len(strings.Split(string(out), "\n---\n")) {
		t.Errorf("the kustomization creates no Namespace")
	}
	m := decodeManifests(t, strings.Join(docs, "\n---\n"))
	m.hashedNames = true
	if len(m.secrets) != 1 {
		t.Fatalf("Secrets %v, want wharf-cluster", keys(m.secrets))
	}
	for name, s := range m.secrets {
		if !strings.HasPrefix(name, "wharf-cluster-") {
			t.Errorf("Secret %s, want wharf-cluster's generated name", name)
		}
		for _, k := range []string{"cluster-secret", "s3-access-key", "s3-secret-key"} {
			v, ok := s.Data[k]
			if !ok || len(v) != 0 {
				t.Errorf("Secret key %s: present %v, %d bytes: want the key, empty for the user to fill", k, ok, len(v))
			}
			s.Data[k] = []byte(existingContent(name, k) + "-0123456789abcdef")
		}
	}
	checkWiring(t, m)
	cfg := loadConfig(t, m)
	checkClusterWiring(t, m, cfg, 3)
	cl := cfg.Cluster
	if want := "wharf-peers.wharf.svc.cluster.local:5001"; cl.DNS != want {
		t.Errorf("cluster.dns %q, want %s", cl.DNS, want)
	}
	if want := net.JoinHostPort(podIP, "5001"); cl.Self != want {
		t.Errorf("cluster.self %q, want %s from WHARF_CLUSTER_SELF", cl.Self, want)
	}
	var secret string
	for name, s := range m.secrets {
		secret = string(s.Data["cluster-secret"])
		if secret != existingContent(name, "cluster-secret")+"-0123456789abcdef" {
			t.Fatalf("the Secret's cluster-secret is %q: not what the test filled in", secret)
		}
	}
	if cl.Secret.Value() != secret {
		t.Errorf("cluster.secret is %d bytes, want the Secret's key cluster-secret (%d bytes)", len(cl.Secret.Value()), len(secret))
	}
}

// TestHelmClusterRefusals: cluster mode without what it needs, or with
// a setting the chart owns, is refused with the value to set.
func TestHelmClusterRefusals(t *testing.T) {
	helm := needHelm(t)
	on := []string{"cluster.enabled=true", "s3.endpoint=https://s3.example.internal", "s3.bucket=wharf", "cluster.secret=0123456789abcdef"}
	without := func(prefix string) []string {
		var out []string
		for _, s := range on {
			if !strings.HasPrefix(s, prefix) {
				out = append(out, s)
			}
		}
		return out
	}
	for _, c := range []struct {
		set  []string
		want string
	}{
		{without("s3.endpoint"), "set s3.endpoint and s3.bucket"},
		{without("s3.bucket"), "set s3.endpoint and s3.bucket"},
		{without("cluster.secret"), "cluster secret of at least 16 bytes"},
		{append(without("cluster.secret"), "cluster.secret=short"), "cluster secret of at least 16 bytes"},
		{append(slices.Clone(on), "config.cluster.dns=x:5001"), "config.cluster is set by the chart"},
		{append(slices.Clone(on), "config.storage.s3.bucket=other"), "config.storage.s3.bucket is set by the chart: use s3.bucket"},
		{append(slices.Clone(on), "s3.secretKey=k"), "s3.secretKey needs s3.accessKey"},
		{append(slices.Clone(on), "s3.iamRole=true", "s3.existingSecret=wharf-s3"), "s3.iamRole takes the pod's role instead of keys"},
		{append(slices.Clone(on), "s3.iamRole=true", "s3.accessKey=ak", "s3.secretKey=sk"), "s3.iamRole takes the pod's role instead of keys"},
		{append(slices.Clone(on), "config.storage.s3.iamRole=true"), "config.storage.s3.iamRole is set by the chart: use s3.iamRole"},
	} {
		_, err := renderChart(t, helm, nil, c.set...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %s: %v, want a refusal saying %q", strings.Join(c.set, ","), err, c.want)
		}
	}
	// The same values with the chart's own Secret render.
	m := template(t, helm, nil, append(slices.Clone(on), "s3.accessKey=ak", "s3.secretKey=sk-0123")...)
	checkWiring(t, m)
	cfg := loadConfig(t, m)
	checkClusterWiring(t, m, cfg, 3)
	if cfg.Cluster.Secret.Value() != "0123456789abcdef" {
		t.Errorf("cluster.secret is %d bytes, want cluster.secret's 16 from the chart's Secret", len(cfg.Cluster.Secret.Value()))
	}
	if cfg.Storage.S3.AccessKey != "ak" || cfg.Storage.S3.SecretKey.Value() != "sk-0123" {
		t.Errorf("S3 keys %q/%q from the chart's Secret, want ak/sk-0123", cfg.Storage.S3.AccessKey, cfg.Storage.S3.SecretKey.Value())
	}
	if m.pod.Annotations["checksum/secret"] == "" {
		t.Errorf("no checksum/secret: a changed cluster secret would not roll the replicas")
	}
}
