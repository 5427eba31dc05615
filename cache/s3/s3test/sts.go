package s3test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TempCredentials are temporary credentials for the server's root user
// from its STS AssumeRole, as AWS STS hands a role's: an access key, a
// secret key and the session token that must go with them. A server just
// started refuses STS until its IAM is loaded ("Server not initialized"),
// so it is asked again for up to 30 s.
func (s *Server) TempCredentials(t testing.TB) credentials.Value {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // only ever 127.0.0.1
	defer tr.CloseIdleConnections()
	sts := &credentials.STSAssumeRole{
		Client:      &http.Client{Transport: tr, Timeout: 10 * time.Second},
		STSEndpoint: s.Endpoint,
		Options:     credentials.STSAssumeRoleOptions{AccessKey: s.User, SecretKey: s.Key, DurationSeconds: 900},
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := sts.Retrieve()
		if err == nil {
			return v
		}
		select {
		case <-deadline:
			t.Fatal(fmt.Errorf("s3test: AssumeRole: %w", err))
		case <-tick.C:
		}
	}
}
