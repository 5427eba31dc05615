package upstream_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wharf-mirror/wharf/upstream"
	"github.com/wharf-mirror/wharf/upstream/transport"
)

// cdnIP is the CDN's address as the registry's redirects name it: public
// (TEST-NET-3), so the guard lets the redirect through, and reached
// through a proxy that takes it to the CDN's listener on 127.0.0.1.
const cdnIP = "203.0.113.7"

// TestPublicUpstreamEndToEnd: an upstream treated as public
// (transport.NetworkPublic), over TLS trusted through a CA file, whose
// blob GETs are redirected to a CDN on another host, reached through a
// proxy as a site would. The API goes over one HTTP/2 connection; blob
// GETs go over HTTP/1.1, each in flight on a connection of its own, on the
// registry and on the CDN, which the guard's checking transport reaches
// with the CA file's trust; a redirect straight to 127.0.0.1 is refused.
func TestPublicUpstreamEndToEnd(t *testing.T) {
	const n = 8
	img := newH2Image(t)
	cert, caFile := ipCert(t, "127.0.0.1", cdnIP)
	g := newGate(n)
	cdn := newH2ServerWith(t, img.handler, g, cert)
	_, cdnPort, _ := net.SplitHostPort(cdn.Listener.Addr().String())
	proxy := connectProxy(t, cdn.Listener.Addr().String())
	reg := newH2ServerWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v2/h2/direct/blobs/"+img.layer.String() {
			http.Redirect(w, r, cdn.URL+"/v2/h2/app/blobs/"+img.layer.String(), http.StatusTemporaryRedirect)
			return
		}
		redirectBlobs(img.handler, "https://"+net.JoinHostPort(cdnIP, cdnPort)).ServeHTTP(w, r)
	}), nil, cert)

	base := transport.NewBase()
	base.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == cdnIP {
			return proxy, nil
		}
		return nil, nil // NO_PROXY for the registry
	}
	c := newClient(t, reg.URL, func(o *upstream.Options) {
		o.Network = transport.NetworkPublic
		o.CAFile = caFile
		o.Transport = base
	})
	if _, err := c.GetManifest(t.Context(), "h2/app", "v1", acceptAll); err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	if _, err := c.HeadBlob(t.Context(), "h2/app", img.layer); err != nil {
		t.Fatalf("HeadBlob: %v", err)
	}
	getInBursts(t, c, "h2/app", img.layer, img.bytes, 1, n)
	if k := g.timedOut.Load(); k > 0 {
		t.Errorf("%d blob GETs waited in vain for %d to be in flight at once", k, n)
	}
	if got := reg.requests(); got["api HTTP/2.0"] != 1 || got["blob HTTP/2.0"] != 1 || got["blob HTTP/1.1"] != n || len(got) != 3 {
		t.Errorf("registry: requests %v, want the manifest GET and the blob HEAD in HTTP/2.0, %d blob GETs in HTTP/1.1", got, n)
	}
	if got := cdn.requests(); got["blob HTTP/1.1"] != n || len(got) != 1 {
		t.Errorf("CDN: requests %v, want %d blob GETs in HTTP/1.1", got, n)
	}
	if k := cdn.conns.Load(); k != n {
		t.Errorf("%d connections to the CDN, want %d (one per blob GET in flight)", k, n)
	}
	if err := readBlobIs(t, c, "h2/direct", img.layer, img.bytes); !errors.Is(err, upstream.ErrTargetRefused) {
		t.Errorf("a redirect to 127.0.0.1: %v, want ErrTargetRefused", err)
	}
}

// ipCert makes a CA and a certificate it signs for ips, and writes the CA
// to a file for Options.CAFile.
func ipCert(t *testing.T, ips ...string) (*tls.Certificate, string) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wharf test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ips[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		leaf.IPAddresses = append(leaf.IPAddresses, net.ParseIP(ip))
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, caFile
}

// connectProxy is a forward proxy that tunnels every CONNECT to to,
// whatever it names: the site's proxy, and the CDN's network behind it.
// Its tunnels end when either side closes; cleanup waits for them.
func connectProxy(t *testing.T, to string) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { tunnel(conn, to) })
		}
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// tunnel answers the CONNECT on conn and splices it to to.
func tunnel(conn net.Conn, to string) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	up, err := net.Dial("tcp", to)
	if err != nil {
		io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, br)
		up.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(conn, up)
	conn.Close()
	<-done
}
