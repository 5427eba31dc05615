package s3_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

// TestOpenNamesADeniedKey: a store that answers the bucket check with a
// bare 403, as S3 does to a HEAD for a key whose policy keeps it out (a
// fault injected here: the test MinIO has no such policy), fails Open
// naming the access key and what its policy must allow.
func TestOpenNamesADeniedKey(t *testing.T) {
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer store.Close()
	s, _, err := s3.Open(ctx, s3.Options{Endpoint: store.URL, Bucket: "wharf", Region: "us-east-1",
		AccessKey: "limited", SecretKey: "secret-0123456789", PathStyle: true})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded against a store that refuses everything")
	}
	if want := `access key "limited" may not use the bucket`; !strings.Contains(err.Error(), want) {
		t.Errorf("Open: %v; want it to say %q", err, want)
	}
}
