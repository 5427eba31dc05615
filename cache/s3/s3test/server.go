package s3test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"

	"github.com/wharf-mirror/wharf/cache/s3"
)

// minioBinary finds the server: $WHARF_MINIO, then where
// .ci/install-s3.sh links it, then $PATH.
func minioBinary() (string, error) {
	if p := os.Getenv("WHARF_MINIO"); p != "" {
		return p, nil
	}
	if dir, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(dir, "wharf", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("minio")
}

// Server is a running MinIO process.
type Server struct {
	Endpoint  string // http://127.0.0.1:port, or https://
	CAFile    string // the CA of an https server's certificate
	User, Key string // the root user's credentials
	bin, dir  string // the binary, and the directory of its data and certificates
	args      []string
	out       syncBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd     // the current process (Down and Up replace it)
	exited chan struct{} // closed once cmd has been waited for
}

// Start starts MinIO, on HTTPS with a certificate of a CA of its own
// (written to CAFile) if tls is set, and returns once it answers its
// liveness probe. Without a MinIO binary it returns ErrNoServer.
func Start(tls bool) (*Server, error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, ErrNoServer
	}
	dir, err := os.MkdirTemp("", "wharf-s3-*")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	s := &Server{Endpoint: "http://" + addr, User: "wharf-test", Key: hex.EncodeToString(secret), bin: bin, dir: dir}
	if tls {
		s.Endpoint = "https://" + addr
		if s.CAFile, err = writeCert(filepath.Join(dir, "certs")); err != nil {
			return nil, err
		}
	}
	s.args = []string{"server", "--quiet", "--address", addr, "--console-address", console,
		"--certs-dir", filepath.Join(dir, "certs"), filepath.Join(dir, "data")}
	if err := s.launch(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// launch starts a process on s's address and data directory and waits
// for it to answer its liveness probe.
func (s *Server) launch() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.User, "MINIO_ROOT_PASSWORD="+s.Key,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := s.waitReady(time.Minute); err != nil {
		s.kill()
		return fmt.Errorf("%w\n%s", err, s.out.String())
	}
	return nil
}

// kill kills the current process and waits for it to be gone.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	cmd.Process.Kill()
	<-exited
}

// ErrNoServer is Start's error when there is no MinIO to run.
var ErrNoServer = errors.New("no MinIO binary: run .ci/install-s3.sh (or set WHARF_MINIO to one)")

// Need skips the test when err says there is no server to run, or fails
// it when WHARF_S3_REQUIRED says there must be one (or err is another).
func Need(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoServer) && os.Getenv("WHARF_S3_REQUIRED") == "" {
		t.Skipf("%v; set WHARF_S3_REQUIRED=1 to fail instead of skipping", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Own starts a plain HTTP server for t alone (one that t may stop or
// freeze), stopped when t ends.
func Own(t testing.TB) *Server {
	t.Helper()
	s, err := Start(false)
	Need(t, err)
	t.Cleanup(s.Stop)
	return s
}

// Shared is a plain HTTP server the tests of a package share, started by
// the first that asks for it; the package's TestMain stops it (before
// looking for leaked goroutines: its connections' end with it).
type Shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Get returns the shared server, starting it on the first call.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() { sh.s, sh.err = Start(false) })
	Need(t, sh.err)
	return sh.s
}

// Stop stops the shared server if it was started.
func (sh *Shared) Stop() {
	if sh.s != nil {
		sh.s.Stop()
	}
}

// Main is a TestMain for a package sharing sh: it runs the tests, stops
// the server, then looks for leaked goroutines (only now: the server's
// connections end with it; opts name goroutines not the package's to
// stop), and exits.
func (sh *Shared) Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	sh.Stop()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the liveness probe until it answers 200, the process
// exits, or the time is up.
func (s *Server) waitReady(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the probe only asks "up?"; the tests check the certificate
	}}
	deadline := time.After(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(s.Endpoint + "/minio/health/live"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		s.mu.Lock()
		exited := s.exited
		s.mu.Unlock()
		select {
		case <-exited:
			return errors.New("minio exited before it was ready")
		case <-deadline:
			return fmt.Errorf("minio not ready after %s", limit)
		case <-tick.C:
		}
	}
}

// Stop kills the server, waits for it to be gone and removes its data.
func (s *Server) Stop() {
	s.kill()
	os.RemoveAll(s.dir)
}

// Down kills the server (SIGKILL, as a crash or a lost machine) and keeps
// its data: connections are refused until Up.
func (s *Server) Down() { s.kill() }

// Up starts the server again after Down, on the same address, data and
// credentials, and returns once it answers.
func (s *Server) Up(t testing.TB) {
	t.Helper()
	if err := s.launch(); err != nil {
		t.Fatalf("restart minio: %v", err)
	}
}

// Freeze stops the process without closing its sockets: the kernel still
// accepts connections and buffers bytes, but nothing answers. Thaw undoes
// it.
func (s *Server) Freeze(t testing.TB) {
	t.Helper()
	p := s.process()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := waitStopped(p.Pid, 10*time.Second); err != nil {
		p.Signal(syscall.SIGCONT) // the shared server must not stay stopped for the tests after
		t.Fatal(err)
	}
}

// waitStopped returns once every thread of pid is stopped. kill returns
// as soon as SIGSTOP is queued; the group stop starts only when one thread
// takes it, and on a loaded machine the others can answer a request
// before then (CI saw a HEAD answered "by a frozen store").
func waitStopped(pid int, limit time.Duration) error {
	tasks := fmt.Sprintf("/proc/%d/task", pid)
	if _, err := os.Stat(tasks); err != nil {
		return nil // no procfs: the signal is all there is to go on
	}
	deadline := time.Now().Add(limit)
	for {
		running, err := runningThreads(tasks)
		if err != nil {
			return fmt.Errorf("s3test: freeze: %w", err)
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("s3test: freeze: %d threads of %d still running after %v", running, pid, limit)
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, not waiting for a guess
	}
}

// runningThreads counts the threads under tasks (/proc/PID/task) whose
// state is not stopped.
func runningThreads(tasks string) (int, error) {
	ents, err := os.ReadDir(tasks)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(tasks, e.Name(), "stat"))
		if err != nil {
			continue // a thread that exited is not running
		}
		// The state follows the command name's closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return 0, fmt.Errorf("unreadable %s/%s/stat", tasks, e.Name())
		}
		switch b[i+2] {
		case 'T', 't':
		case 'Z', 'X':
			return 0, fmt.Errorf("%s/%s: the process has exited", tasks, e.Name())
		default:
			n++
		}
	}
	return n, nil
}

func (s *Server) Thaw() { s.process().Signal(syscall.SIGCONT) }

func (s *Server) process() *os.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process
}

// Admin is a client of the server's own, as its root user, to make
// buckets and look behind the store's back.
func (s *Server) Admin(t testing.TB) *minio.Client {
	t.Helper()
	c, tr, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// client is a client of the root user, and its transport for the caller
// to close.
func (s *Server) client() (*minio.Client, *http.Transport, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // only ever 127.0.0.1
	host, secure := strings.CutPrefix(s.Endpoint, "https://")
	host = strings.TrimPrefix(host, "http://")
	c, err := minio.New(host, &minio.Options{
		Creds: credentials.NewStaticV4(s.User, s.Key, ""), Transport: tr, Secure: secure, Region: "us-east-1"})
	return c, tr, err
}

// Bucket makes a new, empty bucket and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name, err := s.NewBucket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// NewBucket makes a new, empty bucket and returns its name, for a caller
// that is not a test (bench/harness).
func (s *Server) NewBucket(ctx context.Context) (string, error) {
	c, tr, err := s.client()
	if err != nil {
		return "", err
	}
	defer tr.CloseIdleConnections()
	b := make([]byte, 8)
	rand.Read(b)
	name := "b-" + hex.EncodeToString(b)
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return "", fmt.Errorf("make bucket: %w", err)
	}
	return name, nil
}

// syncBuffer is the server's output, written by the process's copier
// goroutines and read on failure.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// writeCert makes a CA and a certificate it signs for 127.0.0.1, and
// writes them where MinIO looks (public.crt, private.key under its certs
// directory) and the CA to ca.pem beside them, whose path it returns.
func writeCert(dir string) (string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wharf test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	caFile := filepath.Join(dir, "ca.pem")
	for name, block := range map[string]*pem.Block{
		"public.crt":  {Type: "CERTIFICATE", Bytes: leafDER},
		"private.key": {Type: "PRIVATE KEY", Bytes: keyDER},
		"ca.pem":      {Type: "CERTIFICATE", Bytes: caDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return "", err
		}
	}
	return caFile, nil
}

// Keys lists the keys of the objects in bucket under prefix, at any depth.
func (s *Server) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for o := range s.Admin(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// Object opens the object at key in bucket, to look at what was written
// behind the store's back; the caller closes it.
func (s *Server) Object(t testing.TB, bucket, key string) io.ReadCloser {
	t.Helper()
	o, err := s.Admin(t).GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return o
}

// OpenStore opens a new bucket of srv as a cache/s3 store for the test,
// closed by its cleanup.
func OpenStore(t testing.TB, srv *Server) *s3.Store {
	t.Helper()
	st, _, err := s3.Open(context.Background(), s3.Options{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket(t), Region: "us-east-1",
		AccessKey: srv.User, SecretKey: srv.Key, PathStyle: true, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("open the bucket: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
