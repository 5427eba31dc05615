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

	appsv1 "k8s.io/api/apps/v1"
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

// container is the StatefulSet's one container.
func container(t *testing.T, sts *appsv1.StatefulSet) corev1.Container {
	t.Helper()
	if n := len(sts.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("StatefulSet has %d containers, want 1", n)
	}
	return sts.Spec.Template.Spec.Containers[0]
}

// podFS writes under root the files the pod's ConfigMap and Secret volumes
// put in the container, at root + their mount path, and returns those
// mount paths. A ConfigMap or Secret the chart rendered gives its data;
// one it only names gives existingContent for each key the volume's
// items ask for.
func podFS(t *testing.T, m manifests, root string) []string {
	t.Helper()
	c := container(t, m.sts)
	volumes := map[string]corev1.Volume{}
	for _, v := range m.sts.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []string
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			if !slices.ContainsFunc(m.sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == vm.Name }) {
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
	root string // where the pod's mounted files are, in place of /
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
// the ConfigMap and Secrets mounted. The files are written under a
// temporary root, so the config's paths into mounted volumes are made
// paths under that root before loading (wharf reads upstream.passwordFile
// at load time: a path the pod does not mount fails here).
func loadConfig(t *testing.T, m manifests) loadedConfig {
	t.Helper()
	c := container(t, m.sts)
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
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWith(config.LoadOptions{Args: []string{"--config", file}, Output: io.Discard})
	if err != nil {
		t.Fatalf("wharf does not load the rendered config: %v\n%s", err, data)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the rendered config does not validate: %v\n%s", err, data)
	}
	checkPodAgreesWithConfig(t, m, cfg)
	return loadedConfig{Config: cfg, root: root}
}

// checkPodAgreesWithConfig: wharf listens on the container's port and
// keeps its data on the pod's data volume, which a claim template (or an
// emptyDir) provides.
func checkPodAgreesWithConfig(t *testing.T, m manifests, cfg config.Config) {
	t.Helper()
	c := container(t, m.sts)
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
	claim := slices.ContainsFunc(m.sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == dataVolume })
	emptyDir := slices.ContainsFunc(m.sts.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == dataVolume && v.EmptyDir != nil })
	if dataVolume == "" || !claim && !emptyDir {
		t.Errorf("storage.dir %s is not on a volume claim or emptyDir (mounted volume %q)", cfg.Storage.Dir, dataVolume)
	}
}
