package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// A certificate is a TLS certificate read from its files, which reload
// reads again (on SIGHUP) without a restart: connections made afterwards
// get the new one.
type certificate struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// loadCertificate reads a certificate and its key.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again. On an error the certificate in use stays.
func (c *certificate) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("reading -tls-cert %s and -tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert.Store(&cert)
	return nil
}

// logAttrs describe the certificate in use for the log.
func (c *certificate) logAttrs() []any {
	cert := c.cert.Load()
	attrs := []any{"cert", c.certFile}
	if x, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		attrs = append(attrs, "subject", x.Subject.String(), "serial", x.SerialNumber.String(), "not_after", x.NotAfter)
	}
	return attrs
}

// config is a TLS configuration serving the certificate in use.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cert.Load(), nil
		},
	}
}

// reloadAll reloads certs, logging each outcome.
func reloadAll(certs []*certificate, log *slog.Logger) {
	for _, c := range certs {
		if err := c.reload(); err != nil {
			log.Error("pushd: cannot reload the certificate; the one in use stays", "error", err)
			continue
		}
		log.Info("pushd: certificate reloaded", c.logAttrs()...)
	}
}
