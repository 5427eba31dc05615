package main

import (
	"strings"
	"testing"

	"github.com/wharf-mirror/wharf/cache"
)

// TestSecondServeOnADataDirInUseNamesTheCause starts serve on a data
// directory another process holds open: it must say that another wharf is
// the likely cause, not only pass on Badger's lock message.
func TestSecondServeOnADataDirInUseNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	held, err := cache.Open(cache.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, args := range [][]string{
		{"serve", "--listen", freePort(t), "--upstream", "http://127.0.0.1:1", "--data", dir, "--log-level", "error"},
		{"gc", "--data", dir},
	} {
		_, err := runCmd(t, args...)
		if err == nil {
			t.Fatalf("%s on a data directory in use succeeded", args[0])
		}
		for _, want := range []string{"is in use", "another wharf", "--data"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", args[0], err, want)
			}
		}
	}
}
