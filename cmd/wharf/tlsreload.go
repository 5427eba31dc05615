package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// certReloader serves tls.certFile/keyFile and picks up a replaced pair
// (a renewal by certbot or cert-manager) at the next handshake, without a
// restart: GetCertificate compares the files' modification times, at most
// once a second, and loads them again when either changed. A pair that
// does not load (the cert written, the key not yet) keeps the old
// certificate in service and is tried again at the next check.
type certReloader struct {
	certFile, keyFile string
	log               logrus.FieldLogger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
}

const certRecheck = time.Second

func newCertReloader(certFile, keyFile string, log logrus.FieldLogger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	certMod, keyMod, err := c.mtimes()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.cert, c.certMod, c.keyMod, c.checked = &cert, certMod, keyMod, time.Now()
	return c, nil
}

func (c *certReloader) mtimes() (cert, key time.Time, err error) {
	ci, err := os.Stat(c.certFile)
	if err != nil {
		return cert, key, fmt.Errorf("tls.certFile: %w", err)
	}
	ki, err := os.Stat(c.keyFile)
	if err != nil {
		return cert, key, fmt.Errorf("tls.keyFile: %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= certRecheck {
		c.checked = now
		certMod, keyMod, err := c.mtimes()
		if err == nil && (!certMod.Equal(c.certMod) || !keyMod.Equal(c.keyMod)) {
			if cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err != nil {
				c.log.WithError(err).Warn("TLS certificate changed but does not load; serving the previous one")
			} else {
				c.cert, c.certMod, c.keyMod = &cert, certMod, keyMod
				c.log.WithField("cert", c.certFile).Info("TLS certificate reloaded")
			}
		}
	}
	return c.cert, nil
}

// tlsConfig is the server's TLS configuration around c.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
