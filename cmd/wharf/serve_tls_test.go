package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// selfSigned writes a fresh self-signed certificate for 127.0.0.1 with
// serial to certFile and keyFile, and returns it.
func selfSigned(t *testing.T, serial int64, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "wharf test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written aside and renamed, as cert-manager and certbot do.
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestServeHTTPSWithUsersAndSeveralUpstreams runs `wharf serve` with the
// settings of this feature given as a user would: two upstreams, an
// htpasswd file, and a certificate. It pulls over HTTPS as a user, sees a
// replaced certificate served without a restart, and a user added to the
// htpasswd file let in without one.
func TestServeHTTPSWithUsersAndSeveralUpstreams(t *testing.T) {
	hub, ghcr := upstreamtest.NewRegistry(t), upstreamtest.NewRegistry(t)
	wantHub := upstreamtest.Push(t, hub, "library/hello:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)).Digest
	wantGhcr := upstreamtest.Push(t, ghcr, "acme/hello:v1", upstreamtest.RandomImage(t, 1, 4096, upstreamtest.OCIManifest)).Digest

	dir := t.TempDir()
	certFile, keyFile, htpasswd := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "htpasswd")
	first := selfSigned(t, 1, certFile, keyFile)
	writeHtpasswd := func(pairs ...string) {
		var b bytes.Buffer
		for i := 0; i+1 < len(pairs); i += 2 {
			h, _ := bcrypt.GenerateFromPassword([]byte(pairs[i+1]), bcrypt.MinCost)
			b.WriteString(pairs[i] + ":" + string(h) + "\n")
		}
		if err := os.WriteFile(htpasswd, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeHtpasswd("alice", "alice-pw")

	addr := freePort(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--data", t.TempDir(), "--log-level", "warn",
			"--upstream", hub.URL, "--upstream-name", "docker.io", "--upstream-official-library=true",
			"--upstreams", "ghcr.io=" + ghcr.URL,
			"--htpasswd", htpasswd, "--tls-cert", certFile, "--tls-key", keyFile,
			// bob is refused until the reload; polling for it must not trip the
			// failed-login limit (proxy tests that).
			"--failed-logins", "0"}, os.Stdout, &logs)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	// A client that trusts whichever certificate it is given to check,
	// and reports the one the server presented.
	pool := x509.NewCertPool()
	pool.AddCert(first)
	var seen *x509.Certificate
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, VerifyConnection: func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates[0]
		return nil
	}}}
	defer tr.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wharf did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	pull := func(ref, user, pw string) (string, error) {
		r, err := name.ParseReference(addr + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(r, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: user, Password: pw}))
		if err != nil {
			return "", err
		}
		if err := validate.Image(img); err != nil {
			return "", err
		}
		d, _ := img.Digest()
		return d.String(), nil
	}
	if d, err := pull("hello:v1", "alice", "alice-pw"); err != nil || d != wantHub.String() {
		t.Fatalf("pull hello:v1 over HTTPS: %s, %v; want %s", d, err, wantHub)
	}
	if d, err := pull("ghcr.io/acme/hello:v1", "alice", "alice-pw"); err != nil || d != wantGhcr.String() {
		t.Fatalf("pull ghcr.io/acme/hello:v1: %s, %v; want %s", d, err, wantGhcr)
	}
	if _, err := pull("hello:v1", "bob", "bob-pw"); err == nil {
		t.Fatal("bob pulled before being added")
	}
	if seen == nil || seen.SerialNumber.Int64() != 1 {
		t.Fatalf("served certificate %v, want serial 1", seen)
	}

	// Renew the certificate and add a user; both are taken up live.
	second := selfSigned(t, 2, certFile, keyFile)
	pool.AddCert(second)
	writeHtpasswd("alice", "alice-pw", "bob", "bob-pw")
	// The reloads look at mtimes: make them newer than the first files'
	// however coarse the filesystem's clock, rather than sleeping past a tick.
	later := time.Now().Add(2 * time.Second)
	for _, f := range []string{certFile, keyFile, htpasswd} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		tr.CloseIdleConnections() // a new handshake
		_, err := pull("hello:v1", "bob", "bob-pw")
		if err == nil && seen.SerialNumber.Int64() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after renewal: serial %d, bob: %v\n%s", seen.SerialNumber.Int64(), err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bytes.Contains(logs.Bytes(), []byte("alice-pw")) || bytes.Contains(logs.Bytes(), []byte("bob-pw")) {
		t.Errorf("a password is in the log:\n%s", logs.String())
	}
}
