package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// Words says in a few words why an attempt got no answer, for people: the
// status page, and the reason a down upstream gives in its errors. The
// error itself (addresses, the whole chain) belongs in the log.
func Words(err error) string {
	var (
		dns     *net.DNSError
		record  tls.RecordHeaderError
		timeout interface{ Timeout() bool }
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrHeaderTimeout):
		return "no response headers in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "host name not found"
		}
		return "DNS lookup failed"
	case UntrustedCertificate(err):
		return "TLS certificate not trusted"
	case errors.Is(err, http.ErrSchemeMismatch):
		return "plain HTTP server behind an https:// URL"
	case errors.As(err, &record):
		return "TLS handshake failed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	var ue *url.Error
	if errors.As(err, &ue) { // drop `Get "https://…"`: the upstream is named already
		err = ue.Err
	}
	return clip(fmt.Sprint(err))
}

// maxWords caps Words' fallback: an error can quote what the upstream sent
// (net/http's "malformed HTTP response" quotes its whole status line, up to
// the header limit), and the words go into every DownError and the status
// page.
const maxWords = 200

func clip(s string) string {
	if len(s) <= maxWords {
		return s
	}
	return strings.ToValidUTF8(s[:maxWords], "") + "…"
}

// UntrustedCertificate reports whether err is the server's TLS certificate
// failing verification: the one test for it, shared by Words and the
// start-up probe so that both call the same failures a certificate's.
func UntrustedCertificate(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
