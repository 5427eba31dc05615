package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// withTLS returns base with the upstream's TLS settings: caFile's
// certificates trusted on top of the system pool, or no verification at
// all. Without either, base is returned as it is. base is cloned, never
// changed, since callers may share it.
func withTLS(base http.RoundTripper, caFile string, insecure bool) (http.RoundTripper, error) {
	if caFile == "" && !insecure {
		return base, nil
	}
	t, ok := base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("CA file or insecure TLS needs an *http.Transport, not %T", base)
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool() // no system pool (some minimal images): the file alone
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("CA file " + caFile + " holds no PEM certificate")
		}
		t.TLSClientConfig.RootCAs = pool
	}
	t.TLSClientConfig.InsecureSkipVerify = insecure //nolint:gosec // asked for, lab use
	return t, nil
}
