package s3_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/s3"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
)

// TestBadOptionsNameTheSetting: a misconfigured store fails at Open with
// an error naming the setting, and never quoting a secret.
func TestBadOptionsNameTheSetting(t *testing.T) {
	const secret = "s3cr3t-never-shown"
	good := s3.Options{Endpoint: "https://s3.example.com", Bucket: "b", AccessKey: "k", SecretKey: secret}
	for _, tc := range []struct {
		name string
		edit func(*s3.Options)
		want string
	}{
		{"no endpoint", func(o *s3.Options) { o.Endpoint = "" }, "endpoint: required"},
		{"endpoint without scheme", func(o *s3.Options) { o.Endpoint = "s3.example.com" }, "endpoint: want an https://"},
		{"credentials in the endpoint", func(o *s3.Options) { o.Endpoint = "https://k:" + secret + "@s3.example.com" }, "endpoint: credentials belong"},
		{"endpoint with a path", func(o *s3.Options) { o.Endpoint = "https://s3.example.com/bucket" }, "endpoint: want scheme and host only"},
		{"no bucket", func(o *s3.Options) { o.Bucket = "" }, "bucket: required"},
		{"half the credentials", func(o *s3.Options) { o.AccessKey = "" }, "credentials: give both"},
		{"a token without keys", func(o *s3.Options) { o.AccessKey, o.SecretKey, o.SessionToken = "", "", secret }, "credentials: a session token goes with"},
		{"keys and the IAM role", func(o *s3.Options) { o.IAMRole = true }, "credentials: keys or the IAM role"},
		{"parts too small", func(o *s3.Options) { o.PartSize = 1 << 20 }, "part size:"},
		{"CA file missing", func(o *s3.Options) { o.CAFile = t.TempDir() + "/none.pem" }, "CA file:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			s, _, err := s3.Open(ctx, o)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v; want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open: %v; quotes the secret", err)
			}
		})
	}
}

// TestOpenChecksTheBucket: a bucket that is not there, or credentials the
// store refuses, fail Open naming the bucket and the credential at fault,
// not the secret.
func TestOpenChecksTheBucket(t *testing.T) {
	srv := shared.Get(t)
	o := options(srv, "no-such-bucket")
	if s, _, err := s3.Open(ctx, o); err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket"`) || !strings.Contains(err.Error(), "does not exist") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open of a missing bucket: %v", err)
	}
	o = options(srv, srv.Bucket(t))
	o.SecretKey = "wrong-" + srv.Key
	s, _, err := s3.Open(ctx, o)
	if err == nil {
		s.Close()
		t.Fatal("Open with a wrong secret key succeeded")
	}
	if strings.Contains(err.Error(), srv.Key) {
		t.Errorf("Open: %v; quotes the secret", err)
	}
	if want := fmt.Sprintf("secret key: the store refuses it for access key %q", srv.User); !strings.Contains(err.Error(), want) {
		t.Errorf("Open with a wrong secret key: %v; want it to say %q", err, want)
	}
	o = options(srv, srv.Bucket(t))
	o.AccessKey = "no-such-user"
	s, _, err = s3.Open(ctx, o)
	if err == nil {
		s.Close()
		t.Fatal("Open with an unknown access key succeeded")
	}
	if want := `access key "no-such-user": the store knows no such key`; !strings.Contains(err.Error(), want) {
		t.Errorf("Open with an unknown access key: %v; want it to say %q", err, want)
	}
}

// TestCAFile: a store behind a private CA is reached with CAFile, and
// refused without it.
func TestCAFile(t *testing.T) {
	srv, err := s3test.Start(true)
	s3test.Need(t, err)
	t.Cleanup(srv.Stop)
	o := options(srv, srv.Bucket(t))
	if s, _, err := s3.Open(ctx, o); err == nil || !strings.Contains(err.Error(), "certificate") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open of an https store whose CA is not trusted: %v; want a certificate error", err)
	}
	o.CAFile = srv.CAFile
	s := open(t, o)
	b, d := putRandom(t, s, 1000)
	c, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := io.ReadAll(c); err != nil || !bytes.Equal(got, b) {
		t.Errorf("read over TLS: %d bytes, %v", len(got), err)
	}
}

// TestOpenNamesTheRefusedCredential: S3 answers the bucket check (a
// HEAD) with a bare 400 or 403, whatever the cause; Open asks again as a
// GET, whose error says why, and names the credential at fault. The store
// is a fault injected here, answering as AWS does: the test MinIO says
// why even to a HEAD, and has no policies.
func TestOpenNamesTheRefusedCredential(t *testing.T) {
	for _, tc := range []struct {
		name        string
		head        int    // the HEAD's bare status
		code        string // the GET's error code; "": a bare 403 too
		keys, token bool
		want        string
	}{
		{"policy", http.StatusForbidden, "AccessDenied", true, false, `access key "limited" may not use the bucket`},
		{"wrong secret key", http.StatusForbidden, "SignatureDoesNotMatch", true, false, `secret key: the store refuses it for access key "limited"`},
		{"unknown access key", http.StatusForbidden, "InvalidAccessKeyId", true, false, `access key "limited": the store knows no such key`},
		{"expired session token", http.StatusBadRequest, "ExpiredToken", true, true, `session token: the store refuses it for access key "limited"`},
		{"anonymous", http.StatusForbidden, "", false, false, "anonymous requests (no keys given) may not use the bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead || tc.code == "" {
					w.WriteHeader(tc.head)
					return
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.head)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>refused</Message><RequestId>r</RequestId></Error>`, tc.code)
			}))
			defer store.Close()
			o := s3.Options{Endpoint: store.URL, Bucket: "wharf", Region: "us-east-1", PathStyle: true}
			if tc.keys {
				o.AccessKey, o.SecretKey = "limited", "secret-0123456789"
			}
			if tc.token {
				o.SessionToken = "token-0123456789"
			}
			s, _, err := s3.Open(ctx, o)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded against a store that refuses everything")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v; want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-0123456789") || strings.Contains(err.Error(), "token-0123456789") {
				t.Errorf("Open: %v; quotes a secret", err)
			}
		})
	}
}

// TestTemporaryCredentials: credentials from STS (an access key, a secret
// key and a session token, as a role hands them) open the store and move
// content; the same keys without their token are refused.
func TestTemporaryCredentials(t *testing.T) {
	srv := shared.Get(t)
	v := srv.TempCredentials(t)
	o := options(srv, srv.Bucket(t))
	o.AccessKey, o.SecretKey, o.SessionToken = v.AccessKeyID, v.SecretAccessKey, v.SessionToken
	st := open(t, o)
	roundTrip(t, st)
	o.SessionToken = ""
	s, _, err := s3.Open(ctx, o)
	if err == nil {
		s.Close()
		t.Fatal("temporary keys without their session token opened the store")
	}
	if want := fmt.Sprintf("access key %q", v.AccessKeyID); !strings.Contains(err.Error(), want) {
		t.Errorf("Open with temporary keys and no token: %v; want it to name %s", err, want)
	}
}

// TestIAMRoleFromTheContainerEndpoint: with IAMRole, the store takes its
// credentials from the role's endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI
// and its authorization token, as ECS and EKS Pod Identity set them; here
// a loopback endpoint handing out the test MinIO's temporary
// credentials, said to have expired already, so that every use renews
// them) and moves content with them; a renewal that fails fails the
// request naming the role, as does Open when the role hands out nothing.
func TestIAMRoleFromTheContainerEndpoint(t *testing.T) {
	srv := shared.Get(t)
	v := srv.TempCredentials(t)
	const auth = "container-token-0123"
	var asked atomic.Int32
	broken := atomic.Bool{}
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if broken.Load() || r.Header.Get("Authorization") != auth {
			http.Error(w, "no role", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"AccessKeyId": v.AccessKeyID, "SecretAccessKey": v.SecretAccessKey, "Token": v.SessionToken,
			"Expiration": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), // renewed at every use
		})
	}))
	defer endpoint.Close()
	roleAt(t, endpoint.URL, auth)

	o := options(srv, srv.Bucket(t))
	o.AccessKey, o.SecretKey, o.IAMRole = "", "", true
	st := open(t, o)
	roundTrip(t, st)
	if n := asked.Load(); n < 2 {
		t.Fatalf("the role's endpoint was asked %d times; want its expired credentials renewed", n)
	}

	broken.Store(true)
	if _, err := st.Stat(ctx, digest.FromString("any")); err == nil || !strings.Contains(err.Error(), "IAM role: no credentials from it") {
		t.Errorf("a request whose renewal failed: %v; want an error naming the IAM role", err)
	}
	s, _, err := s3.Open(ctx, o)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with a role that hands out nothing")
	}
	if !strings.Contains(err.Error(), "IAM role: no credentials from it") {
		t.Errorf("Open with a broken role: %v; want it to name the IAM role", err)
	}
}

// roundTrip stores a blob in st and reads it back.
func roundTrip(t *testing.T, st *s3.Store) {
	t.Helper()
	want, d := putRandom(t, st, 64<<10)
	c, err := st.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := io.ReadAll(c); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, %v; want the %d put", len(got), err, len(want))
	}
}

// TestRoleCredentialsRideOutAFailedRenewal: the role's credentials are
// renewed at 80 % of their lifetime; while the role's endpoint fails, the
// credentials in hand still sign, and the role is asked again every 10 s,
// not at every request; a renewal that succeeds takes over; once they
// have expired, requests fail naming the role. The clock is the test's;
// the endpoint is a loopback container credentials endpoint that the
// test breaks.
func TestRoleCredentialsRideOutAFailedRenewal(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = t0.Add(d) }
	var asked atomic.Int32
	var broken atomic.Bool
	key := atomic.Value{}
	key.Store("AK1")
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if broken.Load() {
			http.Error(w, "agent restarting", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"AccessKeyId": key.Load(), "SecretAccessKey": "secret", "Token": "token",
			"Expiration": clock().Add(time.Hour).Format(time.RFC3339)})
	}))
	defer endpoint.Close()
	roleAt(t, endpoint.URL, "")
	iam := &credentials.IAM{Expiry: credentials.Expiry{CurrentTime: clock}, Client: &http.Client{Transport: &http.Transport{}}}
	defer iam.Client.Transport.(*http.Transport).CloseIdleConnections()
	creds := credentials.New(s3.NewRoleProvider(iam, clock))
	get := func(step string, wantKey string, wantAsked int32) {
		t.Helper()
		v, err := creds.GetWithContext(&credentials.CredContext{Context: ctx})
		if err != nil || v.AccessKeyID != wantKey || asked.Load() != wantAsked {
			t.Fatalf("%s: %q, %v, the role asked %d times; want %q, asked %d times", step, v.AccessKeyID, err, asked.Load(), wantKey, wantAsked)
		}
	}
	get("first use", "AK1", 1)
	set(30 * time.Minute)
	get("within 80 % of the lifetime", "AK1", 1)

	broken.Store(true)
	set(50 * time.Minute)
	get("a failed renewal", "AK1", 2)
	set(50*time.Minute + 5*time.Second)
	get("within 10 s of it", "AK1", 2)
	set(50*time.Minute + 11*time.Second)
	get("10 s on, failing again", "AK1", 3)

	broken.Store(false)
	key.Store("AK2")
	set(50*time.Minute + 22*time.Second)
	get("the role back", "AK2", 4)

	broken.Store(true)
	set(2 * time.Hour) // past AK2's hour
	if _, err := creds.GetWithContext(&credentials.CredContext{Context: ctx}); err == nil || !strings.Contains(err.Error(), "IAM role: no credentials from it") {
		t.Fatalf("expired credentials and a failing role: %v; want an error naming the role", err)
	}
}

// TestIAMRoleThroughTheStoresTransport: the role's endpoint is asked
// through the store's own transport, so a credentials endpoint behind the
// store's private CA (CAFile) is trusted, as the system's CAs alone would
// not have it.
func TestIAMRoleThroughTheStoresTransport(t *testing.T) {
	srv := shared.Get(t)
	v := srv.TempCredentials(t)
	endpoint := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"AccessKeyId": v.AccessKeyID, "SecretAccessKey": v.SecretAccessKey,
			"Token": v.SessionToken, "Expiration": v.Expiration.UTC().Format(time.RFC3339)})
	}))
	defer endpoint.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: endpoint.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	roleAt(t, endpoint.URL, "")
	o := options(srv, srv.Bucket(t))
	o.AccessKey, o.SecretKey, o.IAMRole = "", "", true
	if s, _, err := s3.Open(ctx, o); err == nil {
		s.Close()
		t.Fatal("a credentials endpoint behind an untrusted CA was trusted")
	}
	o.CAFile = ca
	roundTrip(t, open(t, o))
}

// roleAt points the IAM role's credentials at a container credentials
// endpoint (as ECS and EKS Pod Identity do), with its authorization
// token, and clears the variables of every other way a role is found.
func roleAt(t *testing.T, endpoint, token string) {
	t.Helper()
	for _, env := range []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		t.Setenv(env, "")
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint)
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
}
