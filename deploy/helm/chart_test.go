package helm_test

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/wharf-mirror/wharf/config"
)

// checkServiceMonitor: the ServiceMonitor selects the chart's Service in
// its namespace and scrapes /metrics on its port.
func checkServiceMonitor(t *testing.T, m manifests) {
	t.Helper()
	sm := m.serviceMonitor
	for k, v := range sm.Spec.Selector.MatchLabels {
		if m.svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; the Service's labels are %v", k, v, m.svc.Labels)
		}
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("ServiceMonitor selects every Service")
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{m.svc.Namespace}) {
		t.Errorf("ServiceMonitor namespaces %v, want %s", sm.Spec.NamespaceSelector.MatchNames, m.svc.Namespace)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != m.svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want /metrics on port %s", sm.Spec.Endpoints, m.svc.Spec.Ports[0].Name)
	}
}

// checkWiring is what every rendering must get right whatever the
// values: the Service and the workload select the pod, the probes reach
// /healthz on the registry port, wharf runs as non-root on a read-only
// root file system, and either exactly one replica owns the store (a
// StatefulSet) or the replicas are a cluster (checkClusterWiring).
func checkWiring(t *testing.T, m manifests) {
	t.Helper()
	pod := *m.pod
	checkLabels(t, "pod template", pod.Labels)
	var selector map[string]string
	if m.sts != nil {
		selector = m.sts.Spec.Selector.MatchLabels
		if m.sts.Spec.ServiceName != m.svc.Name {
			t.Errorf("serviceName %q, the Service is %q", m.sts.Spec.ServiceName, m.svc.Name)
		}
		if m.sts.Spec.Replicas == nil || *m.sts.Spec.Replicas != 1 {
			t.Errorf("replicas %v: wharf's embedded store is one process's", m.sts.Spec.Replicas)
		}
		if m.peers != nil || m.pdb != nil {
			t.Errorf("one wharf renders a peers Service or a PodDisruptionBudget")
		}
	} else {
		selector = m.deploy.Spec.Selector.MatchLabels
	}
	if len(selector) == 0 {
		t.Errorf("the workload's selector selects no pod")
	}
	for k, v := range selector {
		if pod.Labels[k] != v {
			t.Errorf("the workload's selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
		}
	}
	if len(m.svc.Spec.Selector) == 0 {
		t.Errorf("the Service selects no pod")
	}
	for k, v := range m.svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
		}
	}
	c := container(t, m)
	for what, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "registry" {
			t.Errorf("%s probe %+v, want GET /healthz on port registry", what, p)
		}
	}
	if m.svc.Spec.Ports[0].TargetPort.String() != "registry" {
		t.Errorf("Service targets port %s, not the container's registry port", m.svc.Spec.Ports[0].TargetPort.String())
	}
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("no security context")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("the pod may run as root: %+v", psc)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v: want a read-only root and no privilege escalation", sc)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities are not all dropped")
	}
	if pod.Annotations["checksum/config"] == "" && !m.hashedNames {
		t.Errorf("the pod has no checksum/config annotation: a changed config would not roll it")
	}
}

// TestHelmLint runs helm lint --strict on the chart, alone and with each
// example's values.
func TestHelmLint(t *testing.T) {
	helm := needHelm(t)
	runs := [][]string{{"lint", "--strict", chart}}
	for _, ex := range examples {
		runs = append(runs, []string{"lint", "--strict", chart, "--values", filepath.Join(chart, "examples", ex.file)})
	}
	for _, args := range runs {
		if out, err := runHelm(t, helm, args...); err != nil {
			t.Error(err)
		} else if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestHelmDefaultsMatchKubernetes: with no values the chart renders what
// deploy/kubernetes does (the manifests a kubectl user applies): the same
// pod, claim, Service and ServiceMonitor endpoints, and a config file that
// loads to the same configuration. The names differ only where kustomize
// and helm name things differently.
func TestHelmDefaultsMatchKubernetes(t *testing.T) {
	helm := needHelm(t)
	m := template(t, helm, nil, "serviceMonitor.enabled=true")
	checkWiring(t, m)
	checkServiceMonitor(t, m)
	got := loadConfig(t, m)

	k8s := func(file string) string {
		b, err := os.ReadFile(filepath.Join("..", "kubernetes", file))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want, err := config.LoadWith(config.LoadOptions{Args: []string{"--config", filepath.Join("..", "kubernetes", "config.yaml")}, Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, want) {
		t.Errorf("the chart's config differs from deploy/kubernetes/config.yaml:\n%s", diff.Diff(want, got.Config))
	}

	var sts *appsv1.StatefulSet
	var svc *corev1.Service
	for _, obj := range decodeYAML(t, k8s("statefulset.yaml")+"\n---\n"+k8s("service.yaml")) {
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			sts = o
		case *corev1.Service:
			svc = o
		}
	}
	if sts == nil || svc == nil {
		t.Fatal("deploy/kubernetes has no StatefulSet or Service")
	}
	// What may differ: the image (a kustomize image rule there), the
	// ConfigMap's name (kustomize hashes it), the pod's annotations and
	// the chart's extra labels.
	wantPod, gotPod := sts.Spec.Template.Spec.DeepCopy(), m.sts.Spec.Template.Spec.DeepCopy()
	for _, p := range []*corev1.PodSpec{wantPod, gotPod} {
		p.Containers[0].Image = ""
		for i := range p.Volumes {
			if p.Volumes[i].ConfigMap != nil {
				p.Volumes[i].ConfigMap.Name = ""
			}
		}
	}
	if !equality.Semantic.DeepEqual(wantPod, gotPod) {
		t.Errorf("the pod differs from deploy/kubernetes/statefulset.yaml's:\n%s", diff.Diff(wantPod, gotPod))
	}
	if !equality.Semantic.DeepEqual(sts.Spec.VolumeClaimTemplates[0].Spec, m.sts.Spec.VolumeClaimTemplates[0].Spec) {
		t.Errorf("the volume claim differs:\n%s", diff.Diff(sts.Spec.VolumeClaimTemplates[0].Spec, m.sts.Spec.VolumeClaimTemplates[0].Spec))
	}
	if !equality.Semantic.DeepEqual(sts.Spec.Selector, m.sts.Spec.Selector) {
		t.Errorf("the selector differs:\n%s", diff.Diff(sts.Spec.Selector, m.sts.Spec.Selector))
	}
	if !equality.Semantic.DeepEqual(svc.Spec, m.svc.Spec) {
		t.Errorf("the Service differs:\n%s", diff.Diff(svc.Spec, m.svc.Spec))
	}
	if m.sts.Name != sts.Name || m.svc.Name != svc.Name {
		t.Errorf("names %s/%s, deploy/kubernetes uses %s/%s", m.sts.Name, m.svc.Name, sts.Name, svc.Name)
	}
}

// TestHelmRefusesOwnedConfigKeys: a config key the chart sets from the
// pod's own values is refused with the value to use, rather than
// silently overwritten.
func TestHelmRefusesOwnedConfigKeys(t *testing.T) {
	helm := needHelm(t)
	for set, use := range map[string]string{
		"config.listen=:6000":                        "containerPort",
		"config.storage.dir=/cache":                  "persistence.mountPath",
		"config.auth.htpasswd=/etc/htpasswd":         "auth.htpasswd",
		"config.upstream.passwordFile=/run/password": "upstreamCredentials.password",
	} {
		_, err := renderChart(t, helm, nil, set)
		key, _, _ := strings.Cut(set, "=")
		if err == nil || !strings.Contains(err.Error(), key+" is set by the chart: use "+use) {
			t.Errorf("--set %s: %v, want a refusal naming %s", set, err, use)
		}
	}
}

// TestHelmRoleRefusals: values for a cloud role that would be dropped or
// would put a secret in the ConfigMap are refused, for one wharf as for a
// cluster.
func TestHelmRoleRefusals(t *testing.T) {
	helm := needHelm(t)
	store := []string{"s3.endpoint=https://s3.eu-west-1.amazonaws.com", "s3.bucket=wharf"}
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"s3.iamRole=true"}, "s3.iamRole needs the store it signs for: set s3.endpoint and s3.bucket"},
		{append(slices.Clone(store), "s3.iamRole=true", "s3.existingSecret=wharf-s3"), "s3.iamRole takes the pod's role instead of keys"},
		{append(slices.Clone(store), "config.storage.s3.sessionToken=t"), "config.storage.s3.sessionToken would sit in the ConfigMap in plain text"},
		{[]string{"serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/w"}, "serviceAccount.annotations go on the ServiceAccount the chart creates"},
	} {
		_, err := renderChart(t, helm, nil, c.set...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %s: %v, want a refusal saying %q", strings.Join(c.set, ","), err, c.want)
		}
	}
	// An account named, not created: the pods run as it, and nothing is
	// rendered for it.
	m := template(t, helm, nil, "serviceAccount.name=existing-account")
	if m.pod.Spec.ServiceAccountName != "existing-account" || m.serviceAccount != nil {
		t.Errorf("serviceAccount.name alone: the pod runs as %q, a ServiceAccount rendered: %v", m.pod.Spec.ServiceAccountName, m.serviceAccount != nil)
	}
}

// TestHelmWithoutPersistence: persistence.enabled=false puts the data
// directory on an emptyDir and renders no claim.
func TestHelmWithoutPersistence(t *testing.T) {
	helm := needHelm(t)
	m := template(t, helm, nil, "persistence.enabled=false")
	checkWiring(t, m)
	if len(m.sts.Spec.VolumeClaimTemplates) != 0 {
		t.Errorf("a claim template is rendered: %+v", m.sts.Spec.VolumeClaimTemplates)
	}
	loadConfig(t, m) // checks that storage.dir is on the emptyDir
}
