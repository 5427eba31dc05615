package cache

import (
	"os"
	"testing"
)

// TestSecondOpenSweepsNothing: a second Open of a data directory in use
// (an operator's wharf verify beside a running serve) is refused before it
// touches anything: the running cache's staged fills stay where they are.
func TestSecondOpenSweepsNothing(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir)
	defer c.Close()
	f, err := c.TempFile() // what a fill in progress stages in
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c2, err := Open(Options{Dir: dir}); err == nil {
		c2.Close()
		t.Fatal("a second Open of a data directory in use succeeded")
	}
	if _, err := os.Stat(f.Name()); err != nil {
		t.Errorf("the refused Open swept the running cache's staged file: %v", err)
	}
}
