package index

import (
	"testing"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// TestLinksOfAnOlderStoreAreMigrated: a store written before reverse link
// keys existed gets them at open, so a delete from one repository still
// sees the other repository's link.
func TestLinksOfAnOlderStoreAreMigrated(t *testing.T) {
	dir := t.TempDir()
	d := digest.FromString("shared layer")
	x := open(t, dir)
	if err := x.PutLinks("docker.io/a", d); err != nil {
		t.Fatal(err)
	}
	if err := x.PutLinks("docker.io/b", d); err != nil {
		t.Fatal(err)
	}
	// Make it the older store: forward links only, no mark.
	err := x.db.Update(func(txn *badger.Txn) error {
		for _, k := range [][]byte{heldKey(d, "docker.io/a"), heldKey(d, "docker.io/b"), []byte(linksVersionKey)} {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	x.Close()

	x = open(t, dir)
	defer x.Close()
	had, held, err := x.Unlink("docker.io/a", d)
	if err != nil || !had || !held {
		t.Fatalf("unlink from a: had %v, held %v, %v; want the link, and b still holding it", had, held, err)
	}
	had, held, err = x.Unlink("docker.io/b", d)
	if err != nil || !had || held {
		t.Fatalf("unlink from b: had %v, held %v, %v; want the link, and nobody left", had, held, err)
	}
	if had, _, _ := x.Unlink("docker.io/b", d); had {
		t.Fatal("unlinked twice")
	}
}

// TestForgetContentTakesItsLinks: content that leaves the store leaves no
// link behind, forward or reverse, and says which repositories had one.
func TestForgetContentTakesItsLinks(t *testing.T) {
	x := open(t, t.TempDir())
	defer x.Close()
	d, other := digest.FromString("evicted"), digest.FromString("kept")
	if err := x.PutLinks("docker.io/a", d, other); err != nil {
		t.Fatal(err)
	}
	if err := x.PutLinks("docker.io/b", d); err != nil {
		t.Fatal(err)
	}
	repos, err := x.ForgetContent(d)
	if err != nil || len(repos) != 2 {
		t.Fatalf("ForgetContent: %q, %v; want both repositories", repos, err)
	}
	for _, repo := range []string{"docker.io/a", "docker.io/b"} {
		if ok, _ := x.HasLink(repo, d); ok {
			t.Errorf("%s still links forgotten content", repo)
		}
	}
	if ok, _ := x.HasLink("docker.io/a", other); !ok {
		t.Error("forgetting one digest took another's link")
	}
	err = x.db.View(func(txn *badger.Txn) error {
		if n := len(holders(txn, d)); n != 0 {
			t.Errorf("%d reverse keys left", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, dir string) *Index {
	t.Helper()
	x, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
