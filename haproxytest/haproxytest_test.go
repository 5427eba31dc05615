package haproxytest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/haproxytest"
)

// TestConfigIsValid: HAProxy itself accepts the configuration (haproxy
// -c), with and without the stats listener, and it names every replica.
func TestConfigIsValid(t *testing.T) {
	bin, err := haproxytest.Binary()
	if err != nil {
		t.Skip(err)
	}
	for _, stats := range []string{"", "127.0.0.1:19002"} {
		cfg := haproxytest.Config(haproxytest.Options{Listen: "127.0.0.1:19001", Stats: stats,
			Servers: []string{"127.0.0.1:19011", "127.0.0.1:19012"}, CheckEvery: 250 * time.Millisecond})
		for _, want := range []string{"server r0 127.0.0.1:19011", "server r1 127.0.0.1:19012", "balance roundrobin", "inter 250ms"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("the config lacks %q:\n%s", want, cfg)
			}
		}
		file := filepath.Join(t.TempDir(), "haproxy.cfg")
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-c", "-q", "-f", file).CombinedOutput(); err != nil {
			t.Errorf("haproxy -c: %v\n%s\n%s", err, out, cfg)
		}
	}
}
