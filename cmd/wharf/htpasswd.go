package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/config"
	"github.com/wharf-mirror/wharf/proxy"
)

// htpasswdFile is the users of auth.htpasswd, re-read when the file
// changes so that users are added and passwords changed without a restart.
// Only bcrypt entries (htpasswd -B) are accepted: the other htpasswd
// formats (MD5-crypt, SHA-1, plain text) are too cheap to brute-force.
type htpasswdFile struct {
	path string
	log  logrus.FieldLogger

	mu      sync.Mutex
	users   map[string][]byte
	mod     time.Time
	size    int64
	checked time.Time
}

// htpasswdRecheck is how often the file's modification time is looked at.
const htpasswdRecheck = 2 * time.Second

func loadHtpasswd(path string, log logrus.FieldLogger) (*htpasswdFile, error) {
	h := &htpasswdFile{path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	users, err := readHtpasswd(path)
	if err != nil {
		return nil, err
	}
	h.users, h.mod, h.size, h.checked = users, fi.ModTime(), fi.Size(), time.Now()
	return h, nil
}

// Hash returns user's bcrypt hash (proxy.Passwords). A file that became
// unreadable or invalid keeps the users last read, with a warning.
func (h *htpasswdFile) Hash(user string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := time.Now(); now.Sub(h.checked) >= htpasswdRecheck {
		h.checked = now
		if fi, err := os.Stat(h.path); err == nil && (!fi.ModTime().Equal(h.mod) || fi.Size() != h.size) {
			if users, err := readHtpasswd(h.path); err != nil {
				h.log.WithError(err).Warn("htpasswd changed but cannot be used; keeping the users read before")
			} else {
				h.users, h.mod, h.size = users, fi.ModTime(), fi.Size()
				h.log.WithField("users", len(users)).Info("htpasswd reloaded")
			}
		}
	}
	hash, ok := h.users[user]
	return hash, ok
}

// Cost is the highest bcrypt cost of the file's hashes (proxy.Coster): a
// refused unknown user then costs what the slowest known one does.
func (h *htpasswdFile) Cost() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	cost := 0
	for _, hash := range h.users {
		if c, err := bcrypt.Cost(hash); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		return bcrypt.DefaultCost
	}
	return cost
}

// readHtpasswd parses "user:hash" lines; blank lines and # comments are
// skipped. Errors name the line, never its hash.
func readHtpasswd(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "":
			return nil, fmt.Errorf("%s:%d: not user:hash", path, n)
		case !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$"):
			return nil, fmt.Errorf("%s:%d: user %q: only bcrypt hashes are accepted (htpasswd -B)", path, n, user)
		case user == proxy.Anonymous:
			return nil, fmt.Errorf("%s:%d: user %q is reserved: rules use it for clients without credentials", path, n, user)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q appears twice", path, n, user)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// authOptions turns the auth settings into the proxy's. Without an
// htpasswd file there are no users: anyone may pull, and push only with
// anonymousPush.
func authOptions(a config.Auth, log logrus.FieldLogger) (*proxy.AuthOptions, error) {
	o := &proxy.AuthOptions{
		AnonymousPull: a.AnonymousPullOn(), AnonymousPush: a.AnonymousPushOn(),
		FailedLogins: a.FailedLogins,
	}
	if a.FailedLogins == 0 {
		o.FailedLogins = -1 // the config's 0 is "no limit", the proxy's is "default"
	}
	if a.Htpasswd != "" {
		users, err := loadHtpasswd(a.Htpasswd, log)
		if err != nil {
			return nil, fmt.Errorf("auth.htpasswd: %w", err)
		}
		o.Passwords = users
	}
	parsed, err := a.ParsedRules()
	if err != nil {
		return nil, fmt.Errorf("auth.rules: %w", err)
	}
	o.Rules = make([]proxy.Rule, len(parsed))
	for i, r := range parsed {
		o.Rules[i] = proxy.Rule{User: r.User, Prefix: r.Prefix, Write: r.Write}
	}
	return o, nil
}
