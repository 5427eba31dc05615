package helm_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// chart is the chart's directory, relative to this package.
const chart = "wharf"

// release and namespace are what every test renders the chart as: the
// names deploy/kubernetes uses, so the defaults can be compared with it.
const (
	release   = "wharf"
	namespace = "wharf"
)

var errNoHelm = errors.New("no helm binary: run .ci/install-helm.sh (or set WHARF_HELM to one)")

// helmBinary finds helm: $WHARF_HELM, then where .ci/install-helm.sh
// links it, then $PATH.
func helmBinary() (string, error) {
	if p := os.Getenv("WHARF_HELM"); p != "" {
		return p, nil
	}
	if dir, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(dir, "wharf", "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p, nil
	}
	return "", errNoHelm
}

// needHelm returns helm's path, or skips the test without one (fails it
// when WHARF_HELM_REQUIRED says there must be one), or in -short mode.
func needHelm(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("helm runs as a subprocess: not in -short")
	}
	p, err := helmBinary()
	if err != nil {
		if os.Getenv("WHARF_HELM_REQUIRED") == "" {
			t.Skipf("%v; set WHARF_HELM_REQUIRED=1 to fail instead of skipping", err)
		}
		t.Fatal(err)
	}
	return p
}

// runHelm runs helm and returns its stdout, or an error carrying its
// stderr.
func runHelm(t *testing.T, helm string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, args...)
	// helm keeps caches and repositories under HOME: none of the user's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// manifests is the chart rendered: every object decoded into its type.
// The workload is a StatefulSet (one wharf) or, in cluster mode, a
// Deployment with a headless Service for the peers and a
// PodDisruptionBudget; pod and claims are the workload's pod template and
// volume claim templates, whichever it is.
type manifests struct {
	sts            *appsv1.StatefulSet
	deploy         *appsv1.Deployment
	pod            *corev1.PodTemplateSpec
	claims         []corev1.PersistentVolumeClaim
	svc            *corev1.Service // the clients' Service
	peers          *corev1.Service // the headless Service of cluster mode
	pdb            *policyv1.PodDisruptionBudget
	cm             *corev1.ConfigMap
	secrets        map[string]*corev1.Secret
	ingress        *networkingv1.Ingress
	serviceMonitor *monitoringv1.ServiceMonitor
	serviceAccount *corev1.ServiceAccount
	count          int  // objects rendered
	hashedNames    bool // kustomize's: a changed ConfigMap or Secret has a new name, which rolls the pods
}

// template renders the chart with the given values files and --set
// arguments and decodes the result; a render that fails fails t.
func template(t *testing.T, helm string, valuesFiles []string, set ...string) manifests {
	t.Helper()
	out, err := renderChart(t, helm, valuesFiles, set...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeManifests(t, out)
}

// renderChart runs helm template as release wharf in namespace wharf.
func renderChart(t *testing.T, helm string, valuesFiles []string, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chart, "--namespace", namespace}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return runHelm(t, helm, args...)
}

// strictDecoder decodes YAML into the Kubernetes types the chart renders,
// strictly: a field the type does not have, a duplicate field or a value
// of the wrong type is an error, as the API server's strict field
// validation (kubectl apply --validate=strict) makes it. This stands in
// for validating against the OpenAPI schemas, which are made from these
// same types.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
}

// decodeYAML decodes every document of a YAML stream strictly, skipping
// documents that hold only comments (helm leaves those for templates that
// render nothing).
func decodeYAML(t *testing.T, data string) []runtime.Object {
	t.Helper()
	dec := strictDecoder(t)
	r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		if onlyComments(doc) {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%v: %v\n%s", gvk, err, doc)
		}
		objs = append(objs, obj)
	}
}

func onlyComments(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "---" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// decodeManifests decodes helm template's output and checks what the API
// server would refuse beyond the types: names and labels, the namespace,
// one object of each kind and name.
func decodeManifests(t *testing.T, out string) manifests {
	t.Helper()
	m := manifests{secrets: map[string]*corev1.Secret{}}
	seen := map[string]bool{}
	for _, obj := range decodeYAML(t, out) {
		meta, ok := obj.(metav1.Object)
		if !ok {
			t.Fatalf("%T has no metadata", obj)
		}
		kind := fmt.Sprintf("%T", obj)
		checkMeta(t, kind, meta)
		if key := kind + "/" + meta.GetName(); seen[key] {
			t.Errorf("%s rendered twice", key)
		} else {
			seen[key] = true
		}
		m.count++
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			m.sts, m.pod, m.claims = o, &o.Spec.Template, o.Spec.VolumeClaimTemplates
		case *appsv1.Deployment:
			m.deploy, m.pod = o, &o.Spec.Template
		case *corev1.Service:
			if o.Spec.ClusterIP == corev1.ClusterIPNone {
				m.peers = o
			} else {
				m.svc = o
			}
		case *policyv1.PodDisruptionBudget:
			m.pdb = o
		case *corev1.ConfigMap:
			m.cm = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *networkingv1.Ingress:
			m.ingress = o
		case *monitoringv1.ServiceMonitor:
			m.serviceMonitor = o
		case *corev1.ServiceAccount:
			m.serviceAccount = o
		default:
			t.Errorf("unexpected object %T %s", obj, meta.GetName())
		}
	}
	if (m.sts == nil) == (m.deploy == nil) || m.svc == nil || m.cm == nil {
		t.Fatalf("the chart rendered not one StatefulSet or Deployment, or no Service or ConfigMap:\n%s", out)
	}
	return m
}

// checkMeta checks an object's name, namespace and labels as the API
// server's validation does.
func checkMeta(t *testing.T, kind string, meta metav1.Object) {
	t.Helper()
	if errs := validation.IsDNS1123Label(meta.GetName()); len(errs) > 0 {
		t.Errorf("%s name %q: %v", kind, meta.GetName(), errs)
	}
	if meta.GetNamespace() != namespace {
		t.Errorf("%s %s: namespace %q, want the release's %q", kind, meta.GetName(), meta.GetNamespace(), namespace)
	}
	checkLabels(t, kind+" "+meta.GetName(), meta.GetLabels())
	for k := range meta.GetAnnotations() {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("%s %s: annotation %q: %v", kind, meta.GetName(), k, errs)
		}
	}
}

func checkLabels(t *testing.T, what string, labels map[string]string) {
	t.Helper()
	for k, v := range labels {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
			t.Errorf("%s: label %s=%q: %v", what, k, v, errs)
		}
	}
}
