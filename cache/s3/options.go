package s3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/wharf-mirror/wharf/metrics"
)

// Options say where the store is and how to reach it. Each field's zero
// value is its default where it has one.
type Options struct {
	// Endpoint is the store's URL: https://host[:port], or http:// for a
	// store on a trusted network. No path, query or credentials. Required.
	Endpoint string
	// Bucket holds the content; it must exist (Open checks). Required.
	Bucket string
	// Region is the bucket's region. Empty: asked of the store once
	// (GetBucketLocation); MinIO and most others answer us-east-1.
	Region string
	// AccessKey and SecretKey sign every request (AWS Signature V4), with
	// SessionToken when they are temporary credentials (from AWS STS).
	// All empty: anonymous requests, or IAMRole's. The secret and the
	// token never appear in an error.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// IAMRole takes the credentials from the role the process runs as,
	// and renews them before they expire: a Kubernetes service account's
	// web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, as EKS
	// sets them), a container's credentials endpoint (ECS, EKS Pod
	// Identity: AWS_CONTAINER_CREDENTIALS_*), or else the EC2 instance
	// profile. Not together with keys.
	IAMRole bool
	// PathStyle puts the bucket in the URL's path (host/bucket/key), as
	// MinIO, Ceph RGW and SeaweedFS expect behind a plain host name.
	// False: the client chooses, virtual-hosted (bucket.host/key) for AWS
	// and path-style elsewhere.
	PathStyle bool
	// CAFile is a PEM file of certificates trusted besides the system's,
	// for a store behind a private CA.
	CAFile string
	// Prefix is put before every key, so that several deployments (or
	// other data) can share a bucket. Slashes at its ends are ignored.
	Prefix string
	// PartSize is the size of each part of a multipart upload; content
	// larger than one part is uploaded in parts, several at once. Default
	// 16 MiB; at least 5 MiB (S3's minimum).
	PartSize int64
	// Timeout bounds each wait on the store: connecting, the answer to a
	// request, and any one read or write of a body that makes no
	// progress. It does not bound a transfer that keeps moving. Default
	// 30s.
	Timeout time.Duration
	// AbandonedUploadAge is how old an unfinished multipart upload under
	// Prefix must be for Open to abort it as the leftover of a crash.
	// Other replicas' uploads in progress are younger. Default 24h.
	AbandonedUploadAge time.Duration
	// WrapTransport, if set, wraps the HTTP transport the store builds
	// (with its TLS and timeouts), to count or time requests.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Metrics counts and times the requests (wharf_s3_*); nil counts
	// nothing.
	Metrics *metrics.Metrics
}

const (
	defaultPartSize = 16 << 20
	minPartSize     = 5 << 20
	defaultTimeout  = 30 * time.Second
	defaultAbandon  = 24 * time.Hour
	// tries is how many times the client sends a request that failed for
	// a reason worth retrying (a refused connection, a 503), so an
	// operation on a store that is down fails after a few seconds.
	tries = 3
)

// withDefaults returns o with every zero default filled in, or an error
// naming each setting that is wrong.
func (o Options) withDefaults() (Options, error) {
	if o.PartSize == 0 {
		o.PartSize = defaultPartSize
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.AbandonedUploadAge == 0 {
		o.AbandonedUploadAge = defaultAbandon
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	var errs []error
	if _, err := parseEndpoint(o.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if o.Bucket == "" {
		errs = append(errs, errors.New("bucket: required"))
	}
	switch {
	case (o.AccessKey == "") != (o.SecretKey == ""):
		errs = append(errs, errors.New("credentials: give both the access key and the secret key, or neither"))
	case o.SessionToken != "" && o.AccessKey == "":
		errs = append(errs, errors.New("credentials: a session token goes with the access and secret keys it was issued with"))
	case o.IAMRole && o.AccessKey != "":
		errs = append(errs, errors.New("credentials: keys or the IAM role, not both"))
	}
	if o.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("part size: %d bytes is under S3's minimum of 5 MiB", o.PartSize))
	}
	if o.Timeout < 0 || o.AbandonedUploadAge < 0 {
		errs = append(errs, errors.New("timeout, abandoned upload age: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("s3: %w", err)
	}
	return o, nil
}

// parseEndpoint checks the endpoint's form. Its errors never quote the
// endpoint whole: a URL with user info would carry a secret.
func parseEndpoint(endpoint string) (*url.URL, error) {
	if endpoint == "" {
		return nil, errors.New("endpoint: required")
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return nil, errors.New("endpoint: not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("endpoint: want an https:// or http:// URL")
	case u.User != nil:
		return nil, errors.New("endpoint: credentials belong in the access and secret keys, not the URL")
	case u.Host == "":
		return nil, errors.New("endpoint: no host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, errors.New("endpoint: want scheme and host only, without path or query")
	}
	return u, nil
}

// newClient builds the minio-go client for o (already through
// withDefaults), the transport under it, kept so that Close can drop its
// idle connections, and the credentials it signs with.
func newClient(o Options) (*minio.Client, *http.Transport, *credentials.Credentials, error) {
	u, _ := parseEndpoint(o.Endpoint) // checked by withDefaults
	secure := u.Scheme == "https"
	tr, err := newTransport(o, secure)
	if err != nil {
		return nil, nil, nil, err
	}
	var rt http.RoundTripper = instrumented{next: tr, m: o.Metrics}
	if o.WrapTransport != nil {
		rt = o.WrapTransport(rt)
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	var creds *credentials.Credentials
	switch {
	case o.AccessKey != "":
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	case o.IAMRole:
		// The role's credentials come from a metadata or STS endpoint,
		// asked through the store's transport: its bounds on every wait,
		// its CAs, and its connections, which Close drops.
		iam := &credentials.IAM{Client: &http.Client{Transport: tr, Timeout: o.Timeout}, Region: o.Region}
		creds = credentials.New(newRoleProvider(iam, time.Now))
	default:
		creds = credentials.New(&credentials.Static{}) // anonymous
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    rt,
		Region:       o.Region,
		BucketLookup: lookup,
		MaxRetries:   tries,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("s3: endpoint: %w", err)
	}
	return c, tr, creds, nil
}

// roleProvider is an IAM role's credentials, renewed by the IAM provider
// at 80 % of their lifetime. A renewal that fails (the metadata endpoint
// or STS unreachable, a Pod Identity agent restarting) does not fail the
// store's requests while the credentials in hand still sign: they serve,
// and the role is asked again every renewRetry, not at every request,
// until it answers or they expire. Past that, requests fail with an
// error naming the role, which would otherwise read as the store's own.
type roleProvider struct {
	iam *credentials.IAM
	now func() time.Time

	mu      sync.Mutex
	last    credentials.Value // the role's last credentials
	holdTil time.Time         // after a failed renewal: last serves, unrenewed, until then
}

// renewRetry is how long credentials whose renewal failed serve before
// the role is asked again.
const renewRetry = 10 * time.Second

func newRoleProvider(iam *credentials.IAM, now func() time.Time) *roleProvider {
	return &roleProvider{iam: iam, now: now}
}

func (p *roleProvider) IsExpired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.now().Before(p.holdTil) && p.iam.IsExpired()
}

func (p *roleProvider) Retrieve() (credentials.Value, error) {
	return p.RetrieveWithCredContext(nil)
}

func (p *roleProvider) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	v, err := p.iam.RetrieveWithCredContext(cc)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.last, p.holdTil = v, time.Time{}
		return v, nil
	}
	if now := p.now(); now.Before(p.last.Expiration) {
		p.holdTil = now.Add(renewRetry)
		if p.holdTil.After(p.last.Expiration) {
			p.holdTil = p.last.Expiration
		}
		return p.last, nil
	}
	return credentials.Value{}, fmt.Errorf("IAM role: no credentials from it: %w", err)
}

// newTransport is an HTTP transport whose every wait is bounded by
// o.Timeout, trusting o.CAFile's certificates besides the system's.
func newTransport(o Options, secure bool) (*http.Transport, error) {
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: transport: %w", err)
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	tr.DialContext = dialer.DialContext
	tr.TLSHandshakeTimeout = o.Timeout
	tr.ResponseHeaderTimeout = o.Timeout
	tr.ExpectContinueTimeout = time.Second
	if o.CAFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("s3: CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system store (a scratch image): the file alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3: CA file %s: no PEM certificate in it", o.CAFile)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}
