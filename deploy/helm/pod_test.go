package helm_test

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/wharf-mirror/wharf/config"
)

// The pod as wharf sees it: the files its volumes put in the container,
// and the config file among them loaded by wharf's own loader.

// configPath is where the container's arguments tell wharf to read its
// config: the file the ConfigMap's volume must provide.
const configPath = "/etc/wharf/config.yaml"

// existingContent is what the tests put in a Secret or ConfigMap the
// chart only names (an existingSecret, an extraVolumes entry), for a key
// of it.
func existingContent(source, key string) string {
	return "from-" + source + "-" + key
}

// container is the workload's one container.
func container(t *testing.T, m manifests) corev1.Container {
	t.Helper()
	if n := len(m.pod.Spec.Containers); n != 1 {
		t.Fatalf("the pod has %d containers, want 1", n)
	}
	return m.pod.Spec.Containers[0]
}

// podFS writes under root the files the pod's ConfigMap and Secret volumes
// put in the container, at root + their mount path, and returns those
// mount paths. A ConfigMap or Secret the chart rendered gives its data;
// one it only names gives existingContent for each key the volume's
// items ask for.
func podFS(t *testing.T, m manifests, root string) []string {
	t.Helper()
	c := container(t, m)
	volumes := map[string]corev1.Volume{}
	for _, v := range m.pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []string
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			if !slices.ContainsFunc(m.claims, func(p corev1.PersistentVolumeClaim) bool { return p.Name == vm.Name }) {
				t.Errorf("mount %s: no volume or claim template %q", vm.MountPath, vm.Name)
			}
			continue
		}
		var files map[string]string
		switch {
		case v.ConfigMap != nil:
			data := m.cm.Data
			if v.ConfigMap.Name != m.cm.Name {
				data = existing(t, v.Name, v.ConfigMap.Name, v.ConfigMap.Items)
			}
			files = projected(t, v.Name, data, v.ConfigMap.Items)
		case v.Secret != nil:
			var data map[string]string
			if s, ok := m.secrets[v.Secret.SecretName]; ok {
				data = map[string]string{}
				for k, b := range s.Data {
					data[k] = string(b)
				}
			} else {
				data = existing(t, v.Name, v.Secret.SecretName, v.Secret.Items)
			}
			files = projected(t, v.Name, data, v.Secret.Items)
		default:
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("mount %s of volume %s is not read-only", vm.MountPath, vm.Name)
		}
		mounts = append(mounts, vm.MountPath)
		for name, content := range files {
			p := filepath.Join(root, vm.MountPath, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return mounts
}

// existing is the data of a ConfigMap or Secret the chart does not
// render: existingContent for each key the volume's items name. Without
// items the keys are unknown, which fails t.
func existing(t *testing.T, volume, source string, items []corev1.KeyToPath) map[string]string {
	t.Helper()
	if len(items) == 0 {
		t.Fatalf("volume %s: %q is not the chart's and no items name its keys", volume, source)
	}
	data := map[string]string{}
	for _, it := range items {
		data[it.Key] = existingContent(source, it.Key)
	}
	return data
}

// projected is what a ConfigMap or Secret volume holds: every key, or
// the items' keys at their paths. An item whose key is missing fails t
// (the kubelet would not start the pod).
func projected(t *testing.T, volume string, data map[string]string, items []corev1.KeyToPath) map[string]string {
	t.Helper()
	if len(items) == 0 {
		return data
	}
	files := map[string]string{}
	for _, it := range items {
		content, ok := data[it.Key]
		if !ok {
			t.Fatalf("volume %s: item %q is not a key of its source (keys %v)", volume, it.Key, keys(data))
		}
		files[it.Path] = content
	}
	return files
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// loadedConfig is wharf's config as the pod would load it.
type loadedConfig struct {
	config.Config
	root    string         // where the pod's mounted files are, in place of /
	cluster clusterSection // the config file's cluster section, paths under root
	env     map[string]string
}

// clusterSection is the config file's cluster section as written: the
// loader replaces secretFile by the secret it reads, and the tests check
// the secret is in a mounted Secret, not in the ConfigMap.
type clusterSection struct {
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secretFile"`
}

// podIP stands for the pod's address where the downward API gives it.
const podIP = "10.0.0.7"

// containerEnv is the container's environment as the kubelet makes it:
// values with $(VAR) expanded from earlier variables, secretKeyRef from
// the rendered Secret (or existingContent for one the chart only names),
// fieldRef status.podIP as podIP.
func containerEnv(t *testing.T, m manifests) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range container(t, m).Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = os.Expand(strings.NewReplacer("$(", "${", ")", "}").Replace(e.Value), func(k string) string { return env[k] })
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			env[e.Name] = podIP
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if s, ok := m.secrets[ref.Name]; ok {
				b, ok := s.Data[ref.Key]
				if !ok {
					t.Errorf("env %s: the Secret %s has no key %s", e.Name, ref.Name, ref.Key)
				}
				env[e.Name] = string(b)
			} else {
				env[e.Name] = existingContent(ref.Name, ref.Key)
			}
		default:
			t.Errorf("env %s: an unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	return env
}

// file reads a file the config names, or fails t when no mounted volume
// provides it.
func (l loadedConfig) file(t *testing.T, containerPath string) string {
	t.Helper()
	// loadConfig made paths into mounted volumes paths under root.
	if !strings.HasPrefix(containerPath, l.root+"/") {
		t.Fatalf("%s is in no ConfigMap or Secret volume of the pod", containerPath)
	}
	b, err := os.ReadFile(containerPath)
	if err != nil {
		t.Fatalf("%s is not in its volume: %v", strings.TrimPrefix(containerPath, l.root), err)
	}
	return string(b)
}

// loadConfig loads the rendered config with wharf's own loader, as the
// container runs it: `wharf serve --config /etc/wharf/config.yaml` with
// the ConfigMap and Secrets mounted and the container's environment. The
// files are written under a temporary root, so the config's paths into
// mounted volumes are made paths under that root before loading (wharf
// reads upstream.passwordFile at load time: a path the pod does not mount
// fails here). Every WHARF_* variable must be one of wharf's settings.
func loadConfig(t *testing.T, m manifests) loadedConfig {
	t.Helper()
	c := container(t, m)
	if want := []string{"serve", "--config", configPath}; !slices.Equal(c.Args, want) {
		t.Fatalf("container args %q, want %q", c.Args, want)
	}
	root := t.TempDir()
	mounts := podFS(t, m, root)
	data, err := os.ReadFile(filepath.Join(root, configPath))
	if err != nil {
		t.Fatalf("%s is not in the ConfigMap's volume: %v", configPath, err)
	}
	text := string(data)
	// Longest first, so a mount inside another is rewritten once.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, mp := range mounts {
		text = strings.ReplaceAll(text, " "+mp+"/", " "+filepath.Join(root, mp)+"/")
	}
	var raw struct {
		Cluster *clusterSection `yaml:"cluster"`
	}
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("%s: %v", configPath, err)
	}
	if raw.Cluster == nil {
		raw.Cluster = &clusterSection{}
	}
	env := containerEnv(t, m)
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	for k := range env {
		if strings.HasPrefix(k, "WHARF_") && !known[k] {
			t.Errorf("env %s is not one of wharf's settings", k)
		}
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWith(config.LoadOptions{
		Args:      []string{"--config", file},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Output:    io.Discard,
	})
	if err != nil {
		t.Fatalf("wharf does not load the rendered config: %v\n%s", err, data)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the rendered config does not validate: %v\n%s", err, data)
	}
	checkPodAgreesWithConfig(t, m, cfg)
	return loadedConfig{Config: cfg, root: root, cluster: *raw.Cluster, env: env}
}

// checkPodAgreesWithConfig: wharf listens on the container's port and
// keeps its data on the pod's data volume, which a claim template (or an
// emptyDir) provides.
func checkPodAgreesWithConfig(t *testing.T, m manifests, cfg config.Config) {
	t.Helper()
	c := container(t, m)
	port := int32(0)
	for _, p := range c.Ports {
		if p.Name == "registry" {
			port = p.ContainerPort
		}
	}
	if want := fmt.Sprintf(":%d", port); cfg.Listen != want {
		t.Errorf("config listen %q, the container port named registry is %d", cfg.Listen, port)
	}
	dataVolume := ""
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == cfg.Storage.Dir {
			dataVolume = vm.Name
			if vm.ReadOnly {
				t.Errorf("storage.dir %s is mounted read-only", cfg.Storage.Dir)
			}
		}
	}
	claim := slices.ContainsFunc(m.claims, func(p corev1.PersistentVolumeClaim) bool { return p.Name == dataVolume })
	emptyDir := slices.ContainsFunc(m.pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == dataVolume && v.EmptyDir != nil })
	if dataVolume == "" || !claim && !emptyDir {
		t.Errorf("storage.dir %s is not on a volume claim or emptyDir (mounted volume %q)", cfg.Storage.Dir, dataVolume)
	}
}
