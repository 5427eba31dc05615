package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// FuzzHtpasswd reads a fuzzed htpasswd file. It never panics; what it
// accepts has a user and a bcrypt hash on every entry, and written back as
// "user:hash" lines reads the same; what it refuses, it refuses without
// quoting a hash.
func FuzzHtpasswd(f *testing.F) {
	hash := "$2y$05$" + strings.Repeat("a", 53)
	for _, s := range []string{
		"alice:" + hash + "\nbob:" + hash + "\n",
		"# comment\n\n  alice:" + hash + "  \r\n",
		"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
		"alice:$apr1$x$y\n",
		"alice:" + hash + "\nalice:" + hash + "\n",
		":" + hash + "\n",
		"no colon\n",
		strings.Repeat("x", 70000) + ":" + hash + "\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "htpasswd")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := readHtpasswd(path)
		if err != nil {
			for _, line := range strings.Split(string(data), "\n") {
				user, secret, ok := strings.Cut(strings.TrimSpace(line), ":")
				if ok && strings.HasPrefix(secret, "$2") && len(secret) > 8 &&
					!strings.Contains(strconv.Quote(user), secret) && strings.Contains(err.Error(), secret) {
					t.Fatalf("error quotes a hash: %v", err)
				}
			}
			return
		}
		var lines []string
		for u, h := range users {
			if u == "" || !strings.HasPrefix(string(h), "$2") {
				t.Fatalf("accepted %q:%q", u, h)
			}
			lines = append(lines, u+":"+string(h))
		}
		sort.Strings(lines)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := readHtpasswd(path)
		if err != nil || !reflect.DeepEqual(again, users) {
			t.Fatalf("written back, reads as %v, %v; want %v", again, err, users)
		}
	})
}
