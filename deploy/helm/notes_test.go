package helm_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// renderNotes renders templates/NOTES.txt, which helm template does not
// print (helm install does, after talking to a cluster): a copy of the
// chart gets a template that runs NOTES.txt's text through tpl.
func renderNotes(t *testing.T, helm string, valuesFiles ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), chart)
	err := filepath.WalkDir(chart, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, chart))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(chart, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	const show = "templates/zz-notes.yaml"
	if err := os.WriteFile(filepath.Join(dir, show), []byte(`notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"template", release, dir, "--namespace", namespace, "--show-only", show}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	out, err := runHelm(t, helm, args...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Notes string }
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return doc.Notes
}

// TestHelmNotes: what helm install prints tells how to reach the mirror
// from a node for each way the Service is exposed, and writes the
// containerd and Docker settings with the scheme the mirror serves.
func TestHelmNotes(t *testing.T) {
	helm := needHelm(t)
	for _, c := range []struct {
		values string
		want   []string
	}{
		{"", []string{
			"http://wharf.wharf.svc:5000",
			"a 20Gi volume at /data",
			"jsonpath='{.spec.clusterIP}'",
			`[host."http://$MIRROR"]`,
			`"insecure-registries": ["$MIRROR"]`,
			"read-only mirror",
		}},
		{"nodeport-monitoring.yaml", []string{"a 200Gi volume", "jsonpath='{.spec.ports[0].nodePort}'"}},
		{"ingress.yaml", []string{
			"export MIRROR=mirror.example.internal",
			`[host."https://$MIRROR"]`,
			`"registry-mirrors": ["https://$MIRROR"]`,
		}},
		{"htpasswd.yaml", []string{"docker login $MIRROR"}},
		{"cluster.yaml", []string{
			"3 replicas sharing the bucket wharf at https://s3.example.internal",
			"a 40Gi local tier",
			"rollout status deployment/wharf",
		}},
		{"aws-irsa.yaml", []string{"with the IAM role of the\n", "ServiceAccount wharf."}},
	} {
		var files []string
		if c.values != "" {
			files = append(files, filepath.Join(chart, "examples", c.values))
		}
		notes := renderNotes(t, helm, files...)
		for _, w := range c.want {
			if !strings.Contains(notes, w) {
				t.Errorf("values %q: the notes do not say %q:\n%s", c.values, w, notes)
			}
		}
		if c.values == "ingress.yaml" && strings.Contains(notes, "insecure-registries") {
			t.Errorf("the notes make an HTTPS mirror insecure:\n%s", notes)
		}
	}
}

// TestHelmNotesRoleWithoutAccount: s3.iamRole with the pods on the
// namespace's default ServiceAccount says the role must be given to it.
func TestHelmNotesRoleWithoutAccount(t *testing.T) {
	helm := needHelm(t)
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("s3:\n  endpoint: https://s3.eu-west-1.amazonaws.com\n  bucket: wharf\n  iamRole: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notes := renderNotes(t, helm, values)
	if want := "the namespace's default ServiceAccount, which the chart did not create"; !strings.Contains(strings.Join(strings.Fields(notes), " "), want) {
		t.Errorf("the notes do not say %q:\n%s", want, notes)
	}
}
