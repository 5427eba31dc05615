package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"go.yaml.in/yaml/v3"

	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// This file checks deploy/: every file parses and says what wharf needs
// (TestDeployFiles, no Docker), and the image built from
// deploy/Dockerfile.local serves a pull as a non-root user
// (TestDeployImage, where a Docker engine answers).

// deployDockerTimeout bounds every docker or docker-compose command.
const deployDockerTimeout = 3 * time.Minute

// deployPath is the absolute path of a file under deploy/.
func deployPath(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "deploy"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readDeploy(t *testing.T, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(deployPath(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs decodes every document of a YAML stream into v's type.
func yamlDocs[T any](t *testing.T, data []byte, file string) []T {
	t.Helper()
	var docs []T
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d T
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		docs = append(docs, d)
	}
}

// TestDeployFiles parses every YAML and JSON file under deploy/ and checks
// what each must say for wharf: the config files load with wharf's own
// loader, the dashboard queries only metrics wharf defines, the Kubernetes
// probes reach /healthz on the container's port as a non-root user, the
// systemd unit runs `wharf serve`, compose and both Dockerfiles agree on
// user, port, volume and health check, and the client configs point
// Docker Hub at a mirror.
func TestDeployFiles(t *testing.T) {
	t.Run("every YAML and JSON file parses", func(t *testing.T) {
		n := 0
		err := filepath.WalkDir(deployPath(t), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// The Helm chart's templates are YAML only once rendered:
			// deploy/helm's tests render and decode them.
			if d.IsDir() && path == deployPath(t, "helm", "wharf", "templates") {
				return filepath.SkipDir
			}
			if d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			switch filepath.Ext(path) {
			case ".yaml", ".yml":
				if docs := yamlDocs[any](t, data, path); len(docs) == 0 {
					t.Errorf("%s: no YAML document", path)
				}
				n++
			case ".json":
				var v any
				if err := json.Unmarshal(data, &v); err != nil {
					t.Errorf("%s: %v", path, err)
				}
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 10 {
			t.Errorf("parsed %d YAML/JSON files under deploy/, want at least 10", n)
		}
	})

	t.Run("config files load", func(t *testing.T) {
		for _, c := range []struct{ file, dir string }{
			{"docker/config.yaml", "/data"},
			{"kubernetes/config.yaml", "/data"},
			{"systemd/config.yaml", "/var/lib/wharf"},
		} {
			cfg, err := config.LoadWith(config.LoadOptions{Args: []string{"--config", deployPath(t, c.file)}, Output: io.Discard})
			if err != nil {
				t.Errorf("%s does not load: %v", c.file, err)
				continue
			}
			if cfg.Storage.Dir != c.dir {
				t.Errorf("%s: storage.dir %q, want %q", c.file, cfg.Storage.Dir, c.dir)
			}
			if cfg.Listen != ":5000" {
				t.Errorf("%s: listen %q, want :5000 (the port every other file uses)", c.file, cfg.Listen)
			}
		}
	})

	t.Run("dashboard uses only wharf's metrics", testDeployDashboard)
	t.Run("kubernetes", testDeployKubernetes)
	t.Run("systemd", testDeploySystemd)
	t.Run("dockerfiles agree", func(t *testing.T) { deployImageSpec(t) })
	t.Run("compose", testDeployCompose)
	t.Run("clients", testDeployClients)
}

// wharfMetricNames reads the metrics package's sources (metrics/metrics.go
// and its siblings) for the names wharf registers.
func wharfMetricNames(t *testing.T) (names map[string]bool, histograms map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "metrics", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names, histograms = map[string]bool{}, map[string]bool{}
	// Each collector is built as f.NewXxx(prometheus.XxxOpts{ Name: "wharf_…"
	// or Name: NameXxx, a constant of names.go; one read at the scrape (a
	// Collector of its own) as prometheus.NewDesc("wharf_…" or NameXxx.
	re := regexp.MustCompile(`prometheus\.(?:(\w+)Opts\{\s*Name:|NewDesc\()\s*(?:"(wharf_\w+)"|(\w+))`)
	constRe := regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*"(wharf_\w+)"`)
	consts := map[string]string{}
	var srcs []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, string(src))
		for _, m := range constRe.FindAllStringSubmatch(string(src), -1) {
			consts[m[1]] = m[2]
		}
	}
	for _, src := range srcs {
		for _, m := range re.FindAllStringSubmatch(src, -1) {
			name := m[2]
			if name == "" {
				if name = consts[m[3]]; name == "" {
					t.Fatalf("metrics/*.go: a collector named by %s, which is no wharf_ constant", m[3])
				}
			}
			names[name] = true
			if m[1] == "Histogram" {
				histograms[name] = true
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in metrics/*.go: %v", len(names), names)
	}
	return names, histograms
}

func testDeployDashboard(t *testing.T) {
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name, Type string
				Query      any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []json.RawMessage `json:"panels"`
	}
	data := readDeploy(t, "grafana", "wharf-dashboard.json")
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard has no uid or title")
	}
	hasDS := false
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = v.Name == "datasource"
		}
	}
	if !hasDS {
		t.Errorf(`dashboard has no Prometheus datasource variable named "datasource"`)
	}

	// Every panel's queries, and every datasource it names.
	type target struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	type panel struct {
		Type, Title string
		Datasource  *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []target          `json:"targets"`
		Panels  []json.RawMessage `json:"panels"` // collapsed rows
	}
	var exprs []string
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: a query does not use the ${datasource} variable", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			exprs = append(exprs, fmt.Sprint(q["query"]))
		}
	}

	names, histograms := wharfMetricNames(t)
	used := map[string]bool{}
	metricRe := regexp.MustCompile(`\bwharf_\w+`)
	for _, e := range exprs {
		if err := balanced(e); err != nil {
			t.Errorf("query %s: %v", e, err)
		}
		for _, m := range metricRe.FindAllString(e, -1) {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b := strings.TrimSuffix(m, suf); b != m && histograms[b] {
					base = b
				}
			}
			if !names[base] {
				t.Errorf("query uses %s, which the metrics package does not define: %s", m, e)
			}
			if histograms[m] {
				t.Errorf("query uses the histogram %s by its bare name, which has no series (_bucket, _sum, _count): %s", m, e)
			}
			used[base] = true
		}
	}
	// What the dashboard is for.
	for _, want := range []string{
		"wharf_cache_hits_total", "wharf_cache_misses_total", "wharf_served_bytes_total",
		"wharf_upstream_requests_total", "wharf_upstream_failures_total",
		"wharf_upstream_ratelimit_remaining", "wharf_upstream_ratelimit_limit",
		"wharf_cache_size_bytes", "wharf_cache_capacity_bytes", "wharf_cache_evictions_total",
		"wharf_fills_in_flight", "wharf_http_requests_total", "wharf_http_request_duration_seconds",
	} {
		if !used[want] {
			t.Errorf("the dashboard shows nothing of %s", want)
		}
	}
	t.Logf("%d queries over %d of wharf's %d metrics", len(exprs), len(used), len(names))
}

// balanced reports unbalanced (), [], {} or quotes in a PromQL expression.
func balanced(e string) error {
	var stack []rune
	inQuote := false
	for _, r := range e {
		if inQuote {
			if r == '"' {
				inQuote = false
			}
			continue
		}
		switch r {
		case '"':
			inQuote = true
		case '(', '[', '{':
			stack = append(stack, r)
		case ')', ']', '}':
			open := map[rune]rune{')': '(', ']': '[', '}': '{'}[r]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Errorf("unbalanced %q", r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		return errors.New("unclosed bracket or quote")
	}
	return nil
}

// Just enough of the Kubernetes objects to check.
type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		// Service
		Selector map[string]any `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		// ServiceMonitor
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
		// StatefulSet
		Replicas             int `yaml:"replicas"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    int   `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name  string   `yaml:"name"`
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					SecurityContext struct {
						RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
						ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
						Capabilities             struct {
							Drop []string `yaml:"drop"`
						} `yaml:"capabilities"`
					} `yaml:"securityContext"`
					StartupProbe   *k8sProbe `yaml:"startupProbe"`
					LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
					ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func testDeployKubernetes(t *testing.T) {
	var kust struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(readDeploy(t, "kubernetes", "kustomization.yaml"), &kust); err != nil {
		t.Fatal(err)
	}
	byKind := map[string]k8sObject{}
	for _, r := range kust.Resources {
		for _, o := range yamlDocs[k8sObject](t, readDeploy(t, "kubernetes", r), r) {
			byKind[o.Kind] = o
		}
	}
	for _, kind := range []string{"Namespace", "StatefulSet", "Service", "ServiceMonitor"} {
		if _, ok := byKind[kind]; !ok {
			t.Errorf("kustomization.yaml's resources have no %s", kind)
		}
	}
	cmName := ""
	for _, g := range kust.ConfigMapGenerator {
		if slices.Contains(g.Files, "config.yaml") {
			cmName = g.Name
		}
	}
	if cmName == "" {
		t.Errorf("kustomization.yaml generates no ConfigMap from config.yaml")
	}

	sts := byKind["StatefulSet"]
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("StatefulSet has %d containers, want 1", len(pod.Containers))
	}
	if sts.Spec.Replicas != 1 {
		t.Errorf("StatefulSet replicas %d: the embedded store is one process's", sts.Spec.Replicas)
	}
	c := pod.Containers[0]
	portByName := map[string]int{}
	for _, p := range c.Ports {
		portByName[p.Name] = p.ContainerPort
	}
	if !slices.Contains(c.Args, "serve") || !slices.Contains(c.Args, "/etc/wharf/config.yaml") {
		t.Errorf("container args %q do not run `serve --config /etc/wharf/config.yaml`", c.Args)
	}
	for what, p := range map[string]*k8sProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", what)
			continue
		}
		port := 0
		switch v := p.HTTPGet.Port.(type) {
		case int:
			port = v
		case string:
			port = portByName[v]
		}
		if p.HTTPGet.Path != "/healthz" || port != 5000 {
			t.Errorf("%s probe GETs %s on port %v (=%d), want /healthz on the container port 5000", what, p.HTTPGet.Path, p.HTTPGet.Port, port)
		}
	}
	sc := c.SecurityContext
	if !isTrue(sc.RunAsNonRoot) && !isTrue(pod.SecurityContext.RunAsNonRoot) {
		t.Errorf("runAsNonRoot is not set")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Errorf("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation is not false")
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities are not all dropped")
	}
	if uid := deployImageUID(t); pod.SecurityContext.RunAsUser != uid {
		t.Errorf("pod runAsUser %d, the image's user is %d", pod.SecurityContext.RunAsUser, uid)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources are not set: %+v", c.Resources)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if len(sts.Spec.VolumeClaimTemplates) == 0 || mounts["/data"] != sts.Spec.VolumeClaimTemplates[0].Metadata.Name {
		t.Errorf("/data is not the volume claim template's volume: mounts %v", mounts)
	}
	cfgVolume := false
	for _, v := range pod.Volumes {
		cfgVolume = cfgVolume || v.Name == mounts["/etc/wharf"] && v.ConfigMap != nil && v.ConfigMap.Name == cmName
	}
	if !cfgVolume {
		t.Errorf("/etc/wharf is not the ConfigMap %q", cmName)
	}

	svc := byKind["Service"]
	for k, v := range svc.Spec.Selector {
		if sts.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pod's labels %v", k, v, sts.Spec.Template.Metadata.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 5000 ||
		(svc.Spec.Ports[0].TargetPort != 5000 && portByName[fmt.Sprint(svc.Spec.Ports[0].TargetPort)] != 5000) {
		t.Errorf("Service ports %+v, want 5000 to the container's 5000", svc.Spec.Ports)
	}
	sm := byKind["ServiceMonitor"]
	if sm.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %s", sm.APIVersion)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want /metrics on the Service's port %q", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
	if sel, ok := sm.Spec.Selector["matchLabels"].(map[string]any); !ok || len(sel) == 0 {
		t.Errorf("ServiceMonitor selects nothing: %v", sm.Spec.Selector)
	} else {
		for k, v := range sel {
			if svc.Metadata.Labels[k] != v {
				t.Errorf("ServiceMonitor selects %s=%v; the Service's labels are %v", k, v, svc.Metadata.Labels)
			}
		}
	}

	// With kubectl, render the kustomization: the generated ConfigMap's
	// hashed name must be the one the StatefulSet mounts.
	kubectl, err := deployTool("kubectl")
	if err != nil {
		t.Logf("kustomization not rendered with kubectl: %v", err)
		return
	}
	out := deployRun(t, deployTimeout(t), kubectl, "kustomize", deployPath(t, "kubernetes"))
	var cm string
	rendered := yamlDocs[k8sObject](t, []byte(out), "kubectl kustomize")
	for _, o := range rendered {
		if o.Kind == "ConfigMap" && strings.HasPrefix(o.Metadata.Name, cmName+"-") {
			cm = o.Metadata.Name
		}
	}
	found := false
	for _, o := range rendered {
		if o.Kind == "StatefulSet" {
			for _, v := range o.Spec.Template.Spec.Volumes {
				found = found || v.ConfigMap != nil && v.ConfigMap.Name == cm
			}
		}
	}
	if cm == "" || !found {
		t.Errorf("kubectl kustomize: the StatefulSet does not mount the generated ConfigMap %q", cm)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// unitFile parses a systemd unit: section → key → values (keys may repeat).
func unitFile(t *testing.T, data []byte) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit file: bad line %q", line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func testDeploySystemd(t *testing.T) {
	path := deployPath(t, "systemd", "wharf.service")
	data := readDeploy(t, "systemd", "wharf.service")
	unit := unitFile(t, data)
	svc := unit["Service"]
	if svc == nil || unit["Install"] == nil {
		t.Fatalf("no [Service] or [Install] section")
	}
	if len(svc["ExecStart"]) != 1 {
		t.Fatalf("ExecStart %q", svc["ExecStart"])
	}
	exec0 := strings.Fields(svc["ExecStart"][0])
	if len(exec0) < 2 || filepath.Base(exec0[0]) != "wharf" || exec0[1] != "serve" ||
		!strings.Contains(svc["ExecStart"][0], "--config /etc/wharf/config.yaml") {
		t.Errorf("ExecStart %q does not run `wharf serve --config /etc/wharf/config.yaml`", svc["ExecStart"][0])
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"StateDirectory": "wharf", "DynamicUser": "yes", "CapabilityBoundingSet": "",
	} {
		if v := svc[k]; len(v) != 1 || v[0] != want {
			t.Errorf("%s=%q, want %q", k, v, want)
		}
	}
	// The state directory is the data directory of the config it reads.
	cfg, err := config.LoadWith(config.LoadOptions{Args: []string{"--config", deployPath(t, "systemd", "config.yaml")}, Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Dir != "/var/lib/"+svc["StateDirectory"][0] {
		t.Errorf("config's storage.dir %s is not the unit's StateDirectory", cfg.Storage.Dir)
	}

	// With systemd-analyze: verify the unit (unknown keys, bad values) with
	// ExecStart pointing at a file that exists, and its exposure score.
	sa, err := deployTool("systemd-analyze")
	if err != nil {
		t.Logf("unit not verified with systemd-analyze: %v", err)
		return
	}
	bin := filepath.Join(t.TempDir(), "wharf")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "wharf.service")
	if err := os.WriteFile(copyPath, bytes.Replace(data, []byte(exec0[0]+" "), []byte(bin+" "), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := deployTimeout(t)
	out, err := exec.CommandContext(ctx, sa, "verify", copyPath).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("Unknown")) || bytes.Contains(out, []byte("Failed")) || bytes.Contains(out, []byte("nvalid")) {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
	out, err = exec.CommandContext(ctx, sa, "security", "--offline=true", copyPath).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Logf("systemd-analyze security: %v (not scored)\n%s", err, out)
		return
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.5 {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most 2.5 (OK)\n%s", score, out)
	} else {
		t.Logf("systemd-analyze security: exposure %.1f", score)
	}
}

// dockerfile is the final stage of a Dockerfile: instruction → arguments,
// in order.
type dockerfile map[string][]string

func parseDockerfile(t *testing.T, data []byte) dockerfile {
	t.Helper()
	var stage dockerfile
	var cont string
	for line := range strings.SplitSeq(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cont == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cont += s + " "
			continue
		}
		full := strings.Join(strings.Fields(cont+trimmed), " ")
		cont = ""
		kw, args, _ := strings.Cut(full, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			stage = dockerfile{}
		}
		if stage == nil {
			continue // ARG before the first FROM
		}
		stage[kw] = append(stage[kw], args)
	}
	return stage
}

// deployImage is what both Dockerfiles must give the final image.
type deployImage struct {
	User        string   // "65532:65532"
	UID         int      // 65532
	HealthCheck []string // the HEALTHCHECK's exec form
	Final       dockerfile
}

// deployImageSpec checks deploy/Dockerfile and deploy/Dockerfile.local
// build the same image: the runtime instructions of their final stages
// are equal, the user is a numeric non-root UID that deploy/docker/passwd
// names, port 5000, volume /data owned by that user, and a health check in
// exec form (there is no shell in the image).
func deployImageSpec(t *testing.T) deployImage {
	t.Helper()
	prod := parseDockerfile(t, readDeploy(t, "Dockerfile"))
	local := parseDockerfile(t, readDeploy(t, "Dockerfile.local"))
	for _, kw := range []string{"USER", "EXPOSE", "VOLUME", "HEALTHCHECK", "ENTRYPOINT", "CMD", "ENV", "STOPSIGNAL"} {
		if len(prod[kw]) != 1 || !slices.Equal(prod[kw], local[kw]) {
			t.Errorf("%s: Dockerfile has %q, Dockerfile.local %q; want one, the same", kw, prod[kw], local[kw])
		}
	}
	if !strings.Contains(prod["FROM"][0], "distroless/static") || local["FROM"][0] != "scratch" {
		t.Errorf("final stages FROM %q and %q, want distroless/static and scratch", prod["FROM"], local["FROM"])
	}
	var img deployImage
	img.Final = local
	if len(local["USER"]) == 1 {
		img.User = local["USER"][0]
	}
	uid, gid, _ := strings.Cut(img.User, ":")
	n, err := strconv.Atoi(uid)
	if err != nil || n == 0 || gid == "" {
		t.Fatalf("USER %q is not a numeric non-root uid:gid", img.User)
	}
	img.UID = n
	if !strings.Contains(string(readDeploy(t, "docker", "passwd")), ":x:"+uid+":"+gid+":") {
		t.Errorf("deploy/docker/passwd has no user %s", img.User)
	}
	if local["EXPOSE"][0] != "5000" || local["VOLUME"][0] != `["/data"]` {
		t.Errorf("EXPOSE %q VOLUME %q, want 5000 and /data", local["EXPOSE"], local["VOLUME"])
	}
	for name, df := range map[string]dockerfile{"Dockerfile": prod, "Dockerfile.local": local} {
		owned := false
		for _, c := range df["COPY"] {
			owned = owned || strings.Contains(c, "--chown="+img.User) && strings.HasSuffix(c, " /data")
		}
		if !owned {
			t.Errorf("%s: /data is not copied in owned by %s, so a fresh volume would be root's", name, img.User)
		}
	}
	hc := local["HEALTHCHECK"][0]
	_, form, ok := strings.Cut(hc, "CMD ")
	if !ok || json.Unmarshal([]byte(form), &img.HealthCheck) != nil || len(img.HealthCheck) == 0 {
		t.Fatalf("HEALTHCHECK %q is not CMD in exec (JSON) form", hc)
	}
	return img
}

func deployImageUID(t *testing.T) int {
	t.Helper()
	local := parseDockerfile(t, readDeploy(t, "Dockerfile.local"))
	uid, _, _ := strings.Cut(strings.Join(local["USER"], ""), ":")
	n, err := strconv.Atoi(uid)
	if err != nil {
		t.Fatalf("Dockerfile.local USER %q", local["USER"])
	}
	return n
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Restart     string            `yaml:"restart"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		ReadOnly    bool              `yaml:"read_only"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func testDeployCompose(t *testing.T) {
	var cf composeFile
	if err := yaml.Unmarshal(readDeploy(t, "compose.yaml"), &cf); err != nil {
		t.Fatal(err)
	}
	w, ok := cf.Services["wharf"]
	if !ok {
		t.Fatalf("compose.yaml has no service wharf")
	}
	if w.Restart == "" || w.Restart == "no" {
		t.Errorf("no restart policy")
	}
	if len(w.Ports) != 1 || !strings.HasSuffix(w.Ports[0], ":5000") {
		t.Errorf("ports %q, want one mapping to 5000", w.Ports)
	}
	named := false
	for _, v := range w.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		_, declared := cf.Volumes[src]
		named = named || dst == "/data" && declared
	}
	if !named {
		t.Errorf("volumes %q: no named volume on /data", w.Volumes)
	}
	if !w.ReadOnly {
		t.Errorf("read_only is not set: wharf writes only to /data")
	}
	if img := deployImageSpec(t); !slices.Equal(w.Healthcheck.Test, append([]string{"CMD"}, img.HealthCheck...)) {
		t.Errorf("healthcheck %q is not the image's %q", w.Healthcheck.Test, img.HealthCheck)
	}
	// Every variable is one of wharf's settings and its value is valid.
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	env := map[string]string{}
	for k, v := range w.Environment {
		if !known[k] {
			t.Errorf("environment %s is not a wharf setting", k)
		}
		env[k] = os.Expand(v, func(s string) string { // ${VAR:-default}
			_, def, _ := strings.Cut(s, ":-")
			return def
		})
	}
	if _, err := config.LoadWith(config.LoadOptions{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Output:    io.Discard,
	}); err != nil {
		t.Errorf("compose.yaml's environment does not load: %v", err)
	}

	if dc, err := deployTool("docker-compose"); err == nil {
		deployRun(t, deployTimeout(t), dc, "-f", deployPath(t, "compose.yaml"), "config", "-q")
	} else {
		t.Logf("compose.yaml not checked with docker-compose: %v", err)
	}
}

func testDeployClients(t *testing.T) {
	var daemon struct {
		Mirrors  []string `json:"registry-mirrors"`
		Insecure []string `json:"insecure-registries"`
	}
	if err := json.Unmarshal(readDeploy(t, "clients", "docker", "daemon.json"), &daemon); err != nil {
		t.Fatal(err)
	}
	if len(daemon.Mirrors) != 1 || len(daemon.Insecure) != 1 || daemon.Mirrors[0] != "http://"+daemon.Insecure[0] {
		t.Errorf("daemon.json: registry-mirrors %q, insecure-registries %q: want the mirror in both", daemon.Mirrors, daemon.Insecure)
	}
	mirror := strings.TrimPrefix(daemon.Mirrors[0], "http://")

	// hosts.toml: no TOML parser in go.mod, so match its few lines.
	for _, c := range []struct{ file, host string }{
		{"containerd/certs.d/docker.io/hosts.toml", mirror},
		{"kind/certs.d/docker.io/hosts.toml", "wharf:5000"},
	} {
		s := string(readDeploy(t, "clients", c.file))
		for _, want := range []string{
			`server = "https://registry-1.docker.io"`,
			`[host."http://` + c.host + `"]`,
			`capabilities = ["pull", "resolve"]`,
		} {
			if !strings.Contains(s, want+"\n") {
				t.Errorf("%s lacks %s", c.file, want)
			}
		}
	}
	// _default sends every registry to wharf, which routes by ?ns= (see
	// e2e/containerd_test.go); no server line, so each falls back to itself.
	def := string(readDeploy(t, "clients", "containerd", "certs.d", "_default", "hosts.toml"))
	for _, want := range []string{`[host."http://` + mirror + `"]`, `capabilities = ["pull", "resolve"]`} {
		if !strings.Contains(def, want+"\n") {
			t.Errorf("_default/hosts.toml lacks %s", want)
		}
	}
	if strings.Contains(def, "\nserver") {
		t.Error("_default/hosts.toml has a server line: every registry would fall back to one host")
	}
	conf := string(readDeploy(t, "clients", "podman", "registries.conf"))
	for _, want := range []string{`prefix = "docker.io"`, "[[registry.mirror]]", `location = "` + mirror + `"`, "insecure = true"} {
		if !strings.Contains(conf, want) {
			t.Errorf("registries.conf lacks %s", want)
		}
	}
	var k3s struct {
		Mirrors map[string]struct {
			Endpoint []string `yaml:"endpoint"`
		} `yaml:"mirrors"`
	}
	if err := yaml.Unmarshal(readDeploy(t, "clients", "k3s", "registries.yaml"), &k3s); err != nil {
		t.Fatal(err)
	}
	if ep := k3s.Mirrors["docker.io"].Endpoint; len(ep) != 1 || ep[0] != daemon.Mirrors[0] {
		t.Errorf("k3s registries.yaml docker.io endpoints %q, want %s", ep, daemon.Mirrors[0])
	}
	var kind struct {
		Kind, APIVersion string
		Patches          []string `yaml:"containerdConfigPatches"`
		Nodes            []any    `yaml:"nodes"`
	}
	if err := yaml.Unmarshal(readDeploy(t, "clients", "kind", "kind-config.yaml"), &kind); err != nil {
		t.Fatal(err)
	}
	if kind.Kind != "Cluster" || len(kind.Patches) == 0 || !strings.Contains(kind.Patches[0], `config_path = "/etc/containerd/certs.d"`) || len(kind.Nodes) == 0 {
		t.Errorf("kind config: kind %q, patches %q: want a Cluster whose containerd reads certs.d", kind.Kind, kind.Patches)
	}
}

// deployTool finds a tool that checks a deploy file further; -short runs
// no subprocesses.
func deployTool(name string) (string, error) {
	if testing.Short() {
		return "", errors.New("-short runs no subprocess")
	}
	return exec.LookPath(name)
}

// deployTimeout is a context that ends after deployDockerTimeout or with
// the test.
func deployTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), deployDockerTimeout)
	t.Cleanup(cancel)
	return ctx
}

// deployRun runs a command and returns its stdout; on failure it fails the
// test with both streams.
func deployRun(t *testing.T, ctx context.Context, prog string, args ...string) string {
	t.Helper()
	stdout, stderr, err := deployExec(ctx, nil, prog, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", prog, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func deployExec(ctx context.Context, env []string, prog string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return o.String(), e.String(), err
}

// deployEngine is the docker CLI. What a test makes on the engine is
// removed in that test's t.Cleanup, so a subtest's containers go before
// the parent's image.
type deployEngine struct {
	docker string
}

// cleanupContext is for t.Cleanup, which runs after t.Context() ends.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), deployDockerTimeout)
}

func needDeployEngine(t *testing.T) *deployEngine {
	t.Helper()
	if testing.Short() {
		t.Skip("building and running the image takes a while; skipped with -short")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("no Docker engine answers `docker info`: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, stderr, err := deployExec(ctx, nil, docker, "info", "--format", "{{.ServerVersion}} {{.Driver}}")
	if err != nil {
		t.Skipf("no Docker engine answers `docker info`: %v: %s", err, strings.TrimSpace(stderr))
	}
	t.Logf("docker engine %s", strings.TrimSpace(out))
	return &deployEngine{docker: docker}
}

func (e *deployEngine) run(t *testing.T, args ...string) string {
	t.Helper()
	return deployRun(t, deployTimeout(t), e.docker, args...)
}

// onCleanup runs `docker args...` in t.Cleanup; failures other than "No
// such ..." (gone already) fail the test.
func (e *deployEngine) onCleanup(t *testing.T, args ...string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		_, stderr, err := deployExec(ctx, nil, e.docker, args...)
		if err != nil && !strings.Contains(strings.ToLower(stderr), "no such") {
			t.Errorf("cleanup: docker %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
	})
}

// buildLocalImage builds deploy/Dockerfile.local with
// deploy/docker/build-local.sh (static binaries built into a temporary
// directory) as tag, and removes the image, and the intermediate images
// the classic builder leaves of a multi-stage build, in t.Cleanup.
func (e *deployEngine) buildLocalImage(t *testing.T, tag string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go toolchain to build wharf: %v", err)
	}
	var stepImages []string
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		// The tag first (which removes its parents), then what is left of
		// other stages, newest first (no -f: an image in use stays).
		refs := []string{tag}
		for i := len(stepImages) - 1; i >= 0; i-- {
			refs = append(refs, stepImages[i])
		}
		for _, ref := range refs {
			deployExec(ctx, nil, e.docker, "rmi", ref)
		}
		for _, ref := range refs {
			if _, _, err := deployExec(ctx, nil, e.docker, "image", "inspect", ref); err == nil {
				t.Errorf("cleanup: image %s is still there", ref)
			}
		}
	})
	start := time.Now()
	env := []string{"TMPDIR=" + t.TempDir(), "GO=" + goTool, "DOCKER=" + e.docker, "GOFLAGS=", "GOWORK=off"}
	// --no-cache: intermediate images are this build's own, never shared
	// with a build running at the same time, so cleanup can remove them.
	stdout, stderr, err := deployExec(deployTimeout(t), env, "sh", deployPath(t, "docker", "build-local.sh"), tag, "--no-cache")
	for _, m := range regexp.MustCompile(`(?m)^ ---> ([0-9a-f]{12,64})\s*$`).FindAllStringSubmatch(stdout, -1) {
		stepImages = append(stepImages, m[1])
	}
	if err != nil {
		t.Fatalf("deploy/docker/build-local.sh %s: %v\nstdout:\n%s\nstderr:\n%s", tag, err, stdout, stderr)
	}
	t.Logf("built %s from deploy/Dockerfile.local in %v", tag, time.Since(start).Round(time.Millisecond))
}

// composeDown takes the compose project down in t.Cleanup, volumes
// included, and fails t if a container, volume or network of it is left.
func (e *deployEngine) composeDown(t *testing.T, compose string, env, args []string, project string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, stderr, err := deployExec(ctx, env, compose, append(args, "down", "-v", "--remove-orphans", "-t", "30")...); err != nil {
			t.Errorf("cleanup: docker-compose down: %v\n%s", err, stderr)
		}
		label := "label=com.docker.compose.project=" + project
		for _, ls := range [][]string{
			{"container", "ls", "-aq", "--filter", label},
			{"volume", "ls", "-q", "--filter", label},
			{"network", "ls", "-q", "--filter", label},
		} {
			if out, _, _ := deployExec(ctx, nil, e.docker, ls...); strings.TrimSpace(out) != "" {
				t.Errorf("cleanup: %ss of project %s left: %s", ls[0], project, out)
			}
		}
	})
}

// inspect decodes `docker inspect --format '{{json .}}' ref` into v.
func (e *deployEngine) inspect(t *testing.T, v any, args ...string) {
	t.Helper()
	out := e.run(t, append([]string{"inspect", "--format", "{{json .}}"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("docker inspect %v: %v\n%s", args, err, out)
	}
}

type containerState struct {
	Config struct {
		User string
	}
	HostConfig struct {
		ReadonlyRootfs bool
	}
	State struct {
		Running  bool
		Pid      int
		ExitCode int
		Health   *struct {
			Status string
			Log    []struct {
				ExitCode int
				Output   string
			}
		}
	}
	Mounts []struct {
		Type, Name, Source, Destination string
	}
}

// freeLoopbackPort is a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// deployHTTP is an HTTP client whose connections close with the test.
func deployHTTP(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// waitHealthz polls base+/healthz until it answers 200; logs explains a
// failure.
func waitHealthz(t *testing.T, hc *http.Client, base string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz not answering 200 after a minute: %v\n%s", base, err, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkV2 checks GET /v2/ answers 200 with the API version header.
func checkV2(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	resp, err := hc.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" {
		t.Errorf("GET %s/v2/: %s, Docker-Distribution-Api-Version %q", base, resp.Status, resp.Header.Get("Docker-Distribution-Api-Version"))
	}
}

// checkRunsAs checks the container's process runs as uid (the image's
// USER) with a read-only root, and that what it wrote in its /data volume
// is owned by uid. The process and volume are seen from the host, where
// the engine runs (skipped for a remote or rootless engine).
func checkRunsAs(t *testing.T, st containerState, uid int) {
	t.Helper()
	u, _, _ := strings.Cut(st.Config.User, ":")
	if n, err := strconv.Atoi(u); err != nil || n != uid {
		t.Errorf("container user %q, want %d", st.Config.User, uid)
	}
	if !st.HostConfig.ReadonlyRootfs {
		t.Errorf("container's root file system is writable")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.State.Pid))
	if err != nil {
		t.Logf("process %d not visible from here (%v): UID taken from the config only", st.State.Pid, err)
	} else if m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`).FindStringSubmatch(string(status)); m == nil ||
		m[1] != strconv.Itoa(uid) || m[2] != m[1] || m[3] != m[1] || m[4] != m[1] {
		t.Errorf("wharf's process runs as %q, want %d", m, uid)
	}
	for _, m := range st.Mounts {
		if m.Destination != "/data" {
			continue
		}
		n := 0
		filepath.WalkDir(m.Source, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // not visible from here
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			if sys, ok := info.Sys().(*syscall.Stat_t); ok {
				n++
				if int(sys.Uid) != uid {
					t.Errorf("%s in the volume is owned by %d, want %d", strings.TrimPrefix(p, m.Source), sys.Uid, uid)
				}
			}
			return nil
		})
		t.Logf("volume %s: %d entries owned by %d", m.Name, n, uid)
		return
	}
	t.Errorf("no volume on /data: %+v", st.Mounts)
}

// TestDeployImage builds the image of deploy/Dockerfile.local (FROM
// scratch, so it builds with no base image) and runs it the two ways the
// deploy files do: with deploy/compose.yaml (its own network and named
// volume, published on loopback), and with the Kubernetes ConfigMap's
// config file on the host network, where it serves pulls from an upstream
// registry on 127.0.0.1, keeps them across a restart, and reports healthy
// through the image's HEALTHCHECK. Both run as the image's non-root user
// with a read-only root file system. Everything made on the engine is
// removed at the end.
func TestDeployImage(t *testing.T) {
	dk := needDeployEngine(t)
	spec := deployImageSpec(t)
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	tag := "wharf-deploy-test:" + suffix
	dk.buildLocalImage(t, tag)

	t.Run("image config", func(t *testing.T) {
		var img struct {
			Config struct {
				User         string
				ExposedPorts map[string]any
				Volumes      map[string]any
				Entrypoint   []string
				Cmd          []string
				Env          []string
				Healthcheck  struct{ Test []string }
			}
		}
		dk.inspect(t, &img, "--type", "image", tag)
		c := img.Config
		if c.User != spec.User {
			t.Errorf("image user %q, Dockerfile says %q", c.User, spec.User)
		}
		if _, ok := c.ExposedPorts["5000/tcp"]; !ok {
			t.Errorf("exposed ports %v, want 5000/tcp", c.ExposedPorts)
		}
		if _, ok := c.Volumes["/data"]; !ok {
			t.Errorf("volumes %v, want /data", c.Volumes)
		}
		if !slices.Equal(c.Healthcheck.Test, append([]string{"CMD"}, spec.HealthCheck...)) {
			t.Errorf("health check %q", c.Healthcheck.Test)
		}
		if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/wharf"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
			t.Errorf("entrypoint %q cmd %q, want wharf serve", c.Entrypoint, c.Cmd)
		}
		if !slices.Contains(c.Env, "WHARF_CONFIG=/etc/wharf/config.yaml") {
			t.Errorf("env %q lacks WHARF_CONFIG", c.Env)
		}
	})

	t.Run("compose", func(t *testing.T) {
		compose, err := exec.LookPath("docker-compose")
		if err != nil {
			t.Skipf("no docker-compose: %v", err)
		}
		project := "wharfdeploytest" + suffix
		port := freeLoopbackPort(t)
		env := []string{"WHARF_IMAGE=" + tag, "WHARF_PUBLISH=127.0.0.1:" + strconv.Itoa(port)}
		args := []string{"-p", project, "-f", deployPath(t, "compose.yaml")}
		dk.composeDown(t, compose, env, args, project)
		ctx := deployTimeout(t)
		if stdout, stderr, err := deployExec(ctx, env, compose, append(args, "up", "-d", "--no-build")...); err != nil {
			t.Fatalf("docker-compose up: %v\n%s%s", err, stdout, stderr)
		}
		stdout, stderr, err := deployExec(ctx, env, compose, append(args, "ps", "-q", "wharf")...)
		id := strings.TrimSpace(stdout)
		if err != nil || id == "" {
			t.Fatalf("docker-compose ps: %v %s", err, stderr)
		}
		logs := func() string {
			o, e, _ := deployExec(context.Background(), nil, dk.docker, "logs", "--tail", "50", id)
			return o + e
		}
		hc := deployHTTP(t)
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		waitHealthz(t, hc, base, logs)
		checkV2(t, hc, base)

		var st containerState
		dk.inspect(t, &st, "--type", "container", id)
		checkRunsAs(t, st, spec.UID)
		if len(st.Mounts) != 1 || st.Mounts[0].Type != "volume" || st.Mounts[0].Name != project+"_wharf-data" {
			t.Errorf("mounts %+v, want the named volume %s_wharf-data on /data", st.Mounts, project)
		}

		// deploy/README.md's maintenance commands, as written there but for
		// the project and environment the test gives compose: stop, verify
		// the volume, start again.
		for _, l := range strings.Split(strings.TrimSpace(readDocBlock(t, "deploy/README.md", "With compose:")), "\n") {
			sub, ok := strings.CutPrefix(l, "docker compose -f deploy/compose.yaml ")
			if !ok {
				t.Fatalf("deploy/README.md: %q is not a docker compose command on deploy/compose.yaml", l)
			}
			stdout, stderr, err := deployExec(ctx, env, compose, append(args, strings.Fields(sub)...)...)
			if err != nil {
				t.Fatalf("%s: %v\n%s%s", l, err, stdout, stderr)
			}
			if strings.Contains(sub, " verify ") && regexp.MustCompile(`checked \d+ items.*; 0 corrupt`).FindString(stdout+stderr) == "" {
				t.Errorf("%s: %s%s", l, stdout, stderr)
			}
		}
		waitHealthz(t, hc, base, logs)
		checkV2(t, hc, base)
	})

	t.Run("pull on the host network", func(t *testing.T) {
		reg := upstreamtest.NewRegistry(t)
		faulty := upstreamtest.NewFaulty(t, reg.URL)
		images := map[string]string{}
		for i, mt := range []types.MediaType{upstreamtest.DockerManifest, upstreamtest.OCIManifest} {
			ref := fmt.Sprintf("team/app%d:v1", i)
			images[ref] = upstreamtest.Push(t, reg, ref, upstreamtest.RandomImage(t, 2, 32<<10, mt)).Digest.String()
		}
		// What containerd pulls as docker.io/library/deploytest.
		hubRef := "library/deploytest:v1"
		hubDigest := upstreamtest.Push(t, reg, hubRef, upstreamtest.RandomImage(t, 1, 16<<10, upstreamtest.DockerManifest)).Digest.String()
		indexRef := "team/multi:v1"
		indexDigest := upstreamtest.PushIndex(t, reg, indexRef, upstreamtest.RandomIndex(t, 2, upstreamtest.OCIIndex)).Digest.String()

		port := freeLoopbackPort(t)
		host := "127.0.0.1:" + strconv.Itoa(port)
		base := "http://" + host
		ctr := "wharf-deploy-test-" + suffix
		dk.onCleanup(t, "rm", "-f", "-v", ctr)
		// As the pod runs it: the ConfigMap's file, a read-only root, no
		// capabilities. The variables override the file's upstream and
		// listen address; the health check runs every second.
		dk.run(t, "run", "-d", "--name", ctr, "--network", "host",
			"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"--health-interval", "1s", "--health-start-period", "0s",
			"-v", deployPath(t, "kubernetes", "config.yaml")+":/etc/wharf/config.yaml:ro",
			"-e", "WHARF_UPSTREAM="+faulty.URL, "-e", "WHARF_LISTEN="+host,
			tag, "serve", "--config", "/etc/wharf/config.yaml")
		logs := func() string {
			o, e, _ := deployExec(context.Background(), nil, dk.docker, "logs", "--tail", "50", ctr)
			return o + e
		}
		hc := deployHTTP(t)
		waitHealthy := func() {
			t.Helper()
			deadline := time.Now().Add(time.Minute)
			for {
				var st containerState
				dk.inspect(t, &st, "--type", "container", ctr)
				if !st.State.Running {
					t.Fatalf("container exited (%d)\n%s", st.State.ExitCode, logs())
				}
				if st.State.Health != nil && st.State.Health.Status == "healthy" {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("container not healthy after a minute: %+v\n%s", st.State.Health, logs())
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		waitHealthy()
		checkV2(t, hc, base)
		var st containerState
		dk.inspect(t, &st, "--type", "container", ctr)

		tr := http.DefaultTransport.(*http.Transport).Clone()
		t.Cleanup(tr.CloseIdleConnections)
		pull := func(pass string) {
			t.Helper()
			faulty.ResetCounts()
			for ref, want := range images {
				repo, _, _ := strings.Cut(ref, ":")
				for _, r := range []string{ref, repo + "@" + want} {
					nr, err := name.ParseReference(host+"/"+r, name.Insecure)
					if err != nil {
						t.Fatal(err)
					}
					img, err := remote.Image(nr, remote.WithTransport(tr))
					if err != nil {
						t.Fatalf("%s: pull %s: %v\n%s", pass, r, err, logs())
					}
					if err := validate.Image(img); err != nil {
						t.Fatalf("%s: pull %s: %v", pass, r, err)
					}
					if d, _ := img.Digest(); d.String() != want {
						t.Errorf("%s: pull %s: digest %s, upstream has %s", pass, r, d, want)
					}
				}
			}
			nr, err := name.ParseReference(host+"/"+indexRef, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Index(nr, remote.WithTransport(tr))
			if err != nil {
				t.Fatalf("%s: pull %s: %v\n%s", pass, indexRef, err, logs())
			}
			if err := validate.Index(idx); err != nil {
				t.Fatalf("%s: pull %s: %v", pass, indexRef, err)
			}
			if d, _ := idx.Digest(); d.String() != indexDigest {
				t.Errorf("%s: pull %s: digest %s, upstream has %s", pass, indexRef, d, indexDigest)
			}
		}
		pull("cold")
		if n := faulty.BlobGets(); n == 0 {
			t.Errorf("cold pull fetched no blob from the upstream")
		}
		pull("warm")
		if n := faulty.BlobGets(); n != 0 {
			t.Errorf("warm pull fetched %d blobs from the upstream, want 0 (cached in the volume)", n)
		}
		if hits := scrapeSum(t, hc, base, "wharf_cache_hits_total"); hits == 0 {
			t.Errorf("wharf_cache_hits_total is 0 after a warm pull")
		}
		checkRunsAs(t, st, spec.UID)

		t.Run("containerd with clients/containerd hosts.toml", func(t *testing.T) {
			ctrFetchThroughMirror(t, host, "docker.io/"+hubRef, hubDigest, logs)
		})

		// SIGTERM: wharf drains and exits 0 well within the grace period
		// the deploy files give it; the volume keeps the cache.
		start := time.Now()
		dk.run(t, "stop", "-t", "30", ctr)
		dk.inspect(t, &st, "--type", "container", ctr)
		if st.State.ExitCode != 0 || time.Since(start) > 20*time.Second {
			t.Errorf("docker stop: exit code %d after %v, want 0 promptly\n%s", st.State.ExitCode, time.Since(start), logs())
		}
		if !strings.Contains(logs(), "shutting down") {
			t.Errorf("no shutdown in the log:\n%s", logs())
		}
		// The maintenance commands run on the stopped store, as
		// deploy/README.md shows: same image, same volume, same user.
		out := dk.run(t, "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL",
			"--volumes-from", ctr, tag, "verify", "--data", "/data")
		if m := regexp.MustCompile(`checked (\d+) items.*; 0 corrupt`).FindStringSubmatch(out); m == nil || m[1] == "0" {
			t.Errorf("wharf verify in the image: %s", out)
		}
		dk.run(t, "start", ctr)
		waitHealthy()
		tr.CloseIdleConnections()
		pull("after restart")
		if n := faulty.BlobGets(); n != 0 {
			t.Errorf("pull after restart fetched %d blobs from the upstream, want 0", n)
		}
	})
}

// scrapeSum is the sum of metric's samples on base's /metrics.
func scrapeSum(t *testing.T, hc *http.Client, base, metric string) float64 {
	t.Helper()
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// ctrFetchThroughMirror resolves ref (a docker.io name) and fetches its
// manifest with containerd's own resolver (`ctr content fetch-object`,
// which needs no containerd daemon), configured by
// deploy/clients/containerd/certs.d/docker.io/hosts.toml with the mirror's
// address put in. The file's fallback server is replaced by a closed port
// on loopback, so a request that missed the mirror fails instead of
// leaving the machine. The manifest must hash to wantDigest, by tag and by
// digest.
func ctrFetchThroughMirror(t *testing.T, mirrorHost, ref, wantDigest string, logs func() string) {
	t.Helper()
	ctr, err := exec.LookPath("ctr")
	if err != nil {
		t.Skipf("no ctr (containerd's CLI): %v", err)
	}
	hosts := string(readDeploy(t, "clients", "containerd", "certs.d", "docker.io", "hosts.toml"))
	for old, repl := range map[string]string{
		`"https://registry-1.docker.io"`:        `"http://127.0.0.1:` + strconv.Itoa(freeLoopbackPort(t)) + `"`,
		`"http://mirror.example.internal:5000"`: `"http://` + mirrorHost + `"`,
	} {
		if !strings.Contains(hosts, old) {
			t.Fatalf("docker.io/hosts.toml has no %s", old)
		}
		hosts = strings.ReplaceAll(hosts, old, repl)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "docker.io"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker.io", "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, _, _ := strings.Cut(ref, ":")
	for _, r := range []string{ref, repo + "@" + wantDigest} {
		stdout, stderr, err := deployExec(deployTimeout(t), nil, ctr, "content", "fetch-object", "--hosts-dir", dir, r)
		if err != nil {
			t.Fatalf("ctr content fetch-object %s: %v\n%s\nwharf:\n%s", r, err, stderr, logs())
		}
		if strings.Contains(stderr, "trying next host") {
			t.Errorf("ctr tried past the mirror for %s:\n%s", r, stderr)
		}
		if got := digestOf([]byte(stdout)); got != wantDigest {
			t.Errorf("ctr fetched %s as %s, want %s", r, got, wantDigest)
		}
	}
}

func digestOf(b []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}
