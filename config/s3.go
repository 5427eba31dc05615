package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// S3 puts the content (blobs and manifests by digest) in a bucket of an
// S3-compatible store instead of the data directory. The section is off
// unless one of its settings differs from its default (S3.On); then
// Endpoint and Bucket are required. The index and the staging of fills
// stay in the data directory; upload sessions in progress are kept in the
// bucket, so that any replica takes a push's next request.
type S3 struct {
	// Endpoint is the store's URL, https://host[:port] (http:// for a
	// store on a trusted network), with no path. Default "" (off).
	Endpoint string `yaml:"endpoint"`
	// Bucket holds the content; it must exist. Default "".
	Bucket string `yaml:"bucket"`
	// Region is the bucket's region. Default "": asked of the store.
	Region string `yaml:"region"`
	// Prefix is put before every key ("mirror" → mirror/blobs/…), so one
	// bucket can hold other data too. Default "".
	Prefix string `yaml:"prefix"`
	// PathStyle puts the bucket in the URL's path (host/bucket/key), as
	// MinIO, Ceph RGW and SeaweedFS expect behind a plain host name. nil
	// (the default): the client chooses, virtual-hosted for AWS.
	PathStyle *bool `yaml:"pathStyle"`
	// CAFile names a PEM file of CA certificates trusted for the store
	// besides the system's. Default "".
	CAFile string `yaml:"caFile"`
	// AccessKey and SecretKey sign the store's requests. With none of
	// AccessKey, SecretKey and SecretKeyFile set and no IAMRole, Load
	// takes them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
	// SessionToken from AWS_SESSION_TOKEN); without those either,
	// requests are anonymous. Default "".
	AccessKey string `yaml:"accessKey"`
	SecretKey Secret `yaml:"secretKey"`
	// SessionToken goes with temporary keys (from AWS STS: an assumed
	// role, aws sts get-session-token). They expire, and wharf cannot
	// renew them: for a role's credentials that renew, use IAMRole.
	// Default "".
	SessionToken Secret `yaml:"sessionToken"`
	// IAMRole takes the credentials from the role wharf runs as, renewed
	// before they expire: the Kubernetes service account's (IRSA, whose
	// AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN EKS sets), the
	// container's (ECS, EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_*),
	// or else the EC2 instance profile. Not with keys. Default false.
	IAMRole *bool `yaml:"iamRole"`
	// SecretKeyFile names a file holding the secret key (a mounted
	// secret). Load reads it, trims trailing newlines, stores the result
	// in SecretKey and clears this field, as for upstream.passwordFile.
	// Not together with SecretKey. Default "".
	SecretKeyFile string `yaml:"secretKeyFile"`
	// PartSize is the size of each part of a multipart upload, 5MiB..5GiB
	// (S3's limits). Default 16MiB.
	PartSize ByteSize `yaml:"partSize"`
	// Timeout bounds each wait on the store: connecting, a response's
	// headers, a body that stops moving. Must be > 0. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// MaxSize caps the bytes of content in the bucket: past it, eviction
	// deletes objects, least recently used images first, between the
	// storage watermarks. storage.maxSize then caps the data directory's
	// copies of the content (the local tier) instead. In a cluster one
	// replica at a time evicts, under a lease; without one, one wharf per
	// bucket and prefix. Must be >= 0. Default 0: no cap.
	MaxSize ByteSize `yaml:"maxSize"`
	// AbandonedUploadAge is how old an unfinished multipart upload under
	// Prefix must be for wharf to abort it at start, as the leftover of a
	// crash. Must be > 0. Default 24h.
	AbandonedUploadAge Duration `yaml:"abandonedUploadAge"`
}

const (
	minPartSize = 5 << 20 // S3's smallest part (except the last)
	maxPartSize = 5 << 30 // and its largest
)

// AWS's own variables, read when storage.s3 names no credentials, as
// every AWS tool reads them.
const (
	awsAccessKeyEnv    = "AWS_ACCESS_KEY_ID"
	awsSecretKeyEnv    = "AWS_SECRET_ACCESS_KEY"
	awsSessionTokenEnv = "AWS_SESSION_TOKEN"
)

func defaultS3() S3 {
	return S3{
		PartSize:           16 << 20,
		Timeout:            Duration(30 * time.Second),
		AbandonedUploadAge: Duration(24 * time.Hour),
	}
}

// On reports whether the content lives in the S3 store: whether any
// setting of the section differs from its default. A switch set to false
// is its default, however given.
func (s S3) On() bool {
	if !s.PathStyleOn() {
		s.PathStyle = nil
	}
	if !s.IAMRoleOn() {
		s.IAMRole = nil
	}
	return s != defaultS3()
}

// PathStyleOn reports whether pathStyle is set.
func (s S3) PathStyleOn() bool { return s.PathStyle != nil && *s.PathStyle }

// IAMRoleOn reports whether iamRole is set.
func (s S3) IAMRoleOn() bool { return s.IAMRole != nil && *s.IAMRole }

// Location is where the content lives, for logs and messages:
// "s3://bucket/prefix at https://host". It holds no credentials.
func (s S3) Location() string {
	loc := "s3://" + s.Bucket
	if p := strings.Trim(s.Prefix, "/"); p != "" {
		loc += "/" + p
	}
	return loc + " at " + s.Endpoint
}

// problems checks the section when it is on.
func (s S3) problems() []*fieldError {
	if !s.On() {
		return nil
	}
	var ps []*fieldError
	add := func(field, format string, args ...any) {
		ps = append(ps, &fieldError{path: "storage.s3." + field, err: fmt.Errorf(format, args...)})
	}
	if err := checkS3Endpoint(s.Endpoint); err != nil {
		add("endpoint", "%w", err)
	}
	if s.Bucket == "" {
		add("bucket", "is required with storage.s3")
	}
	hasSecret := s.SecretKey != "" || s.SecretKeyFile != ""
	switch {
	case s.SecretKey != "" && s.SecretKeyFile != "":
		add("secretKey", "set together with storage.s3.secretKeyFile; use one")
	case hasSecret && s.AccessKey == "":
		add("accessKey", "required when a secret key is set")
	case !hasSecret && s.AccessKey != "":
		add("secretKey", "required when an access key is set (or set storage.s3.secretKeyFile)")
	}
	switch {
	case s.IAMRoleOn() && (s.AccessKey != "" || hasSecret):
		add("iamRole", "set together with keys; use the role or the keys")
	case s.IAMRoleOn() && s.SessionToken != "":
		add("sessionToken", "not with storage.s3.iamRole, whose credentials carry their own")
	case s.SessionToken != "" && s.AccessKey == "":
		add("sessionToken", "goes with the temporary keys it was issued with: set storage.s3.accessKey and secretKey with it (AWS_SESSION_TOKEN goes with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if s.PartSize < minPartSize || s.PartSize > maxPartSize {
		add("partSize", "%s is outside S3's part sizes, 5MiB..5GiB", s.PartSize)
	}
	if s.Timeout <= 0 {
		add("timeout", "%s must be more than 0", s.Timeout)
	}
	if s.MaxSize < 0 {
		add("maxSize", "%d is negative; use 0 for no cap", int64(s.MaxSize))
	}
	if s.AbandonedUploadAge <= 0 {
		add("abandonedUploadAge", "%s must be more than 0", s.AbandonedUploadAge)
	}
	return ps
}

// checkS3Endpoint accepts an http(s) URL of a host alone. It never quotes
// a URL that carries user info: that would print a secret.
func checkS3Endpoint(raw string) error {
	if raw == "" {
		return errors.New("is required with storage.s3 (e.g. https://s3.eu-west-1.amazonaws.com)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	switch {
	case u.User != nil:
		return errors.New("URL must not carry credentials; use storage.s3.accessKey and storage.s3.secretKey")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with https:// or http://", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q must be scheme and host only, without a path or query (the bucket is storage.s3.bucket, a key prefix storage.s3.prefix)", raw)
	}
	return nil
}

// resolveS3 does what Load does for the section once it is valid: the
// secret key from its file, or both keys (and a session token) from AWS's
// variables when the section names neither keys nor the IAM role. No
// secret is ever put in a message.
func (l *loader) resolveS3() {
	s := &l.cfg.Storage.S3
	if !s.On() {
		return
	}
	if s.SecretKeyFile != "" && s.SecretKey == "" { // both set is a validation error
		if key, ok := l.readSecretFile(s.SecretKeyFile, "storage.s3.secretKeyFile"); ok {
			s.SecretKey, s.SecretKeyFile = key, ""
		}
		return
	}
	if s.AccessKey != "" || s.SecretKey != "" || s.IAMRoleOn() {
		return
	}
	id, _ := l.lookup(awsAccessKeyEnv)
	key, _ := l.lookup(awsSecretKeyEnv)
	switch {
	case id != "" && key != "":
		token, _ := l.lookup(awsSessionTokenEnv)
		s.AccessKey, s.SecretKey, s.SessionToken = id, Secret(key), Secret(token)
	case id != "":
		l.fail(fmt.Errorf("storage.s3: %s is set without %s", awsAccessKeyEnv, awsSecretKeyEnv))
	case key != "":
		l.fail(fmt.Errorf("storage.s3: %s is set without %s", awsSecretKeyEnv, awsAccessKeyEnv))
	}
}
