// Package certs makes the serving-certificate material nodeclass-guard needs
// outside cert-manager: a throwaway CA and the serving pairs it issues, for
// envtest, the demo and local development. In a cluster, cert-manager issues
// the certificate (deploy/); this package uses cert-manager's own PKI helpers
// so that the certificates it makes are shaped the same way.
package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// File names in a serving certificate directory, as controller-runtime's
// webhook server and `nodeclass-guard serve --cert-dir` expect them.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// CA is a self-signed certificate authority held in memory. Its certificate
// is what a ValidatingWebhookConfiguration's caBundle carries.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// NewCA creates a self-signed CA valid for validity from now, with an ECDSA
// P-256 key.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("certs: the CA needs a common name")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("certs: CA validity must be positive, got %s", validity)
	}
	key, err := pki.GenerateECPrivateKey(pki.ECCurve256)
	if err != nil {
		return nil, fmt.Errorf("certs: generating the CA key: %w", err)
	}
	tmpl, err := pki.CertificateTemplateFromCertificate(&cmapi.Certificate{
		Spec: cmapi.CertificateSpec{
			CommonName: commonName,
			IsCA:       true,
			Duration:   &metav1.Duration{Duration: validity},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: pki.ECCurve256},
			Usages:     []cmapi.KeyUsage{cmapi.UsageCertSign, cmapi.UsageDigitalSignature},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("certs: CA template: %w", err)
	}
	certPEM, cert, err := pki.SignCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: self-signing the CA: %w", err)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

// CertPEM returns the CA certificate, PEM-encoded: the caBundle of a webhook
// configuration and the root a client verifies the serving certificate with.
func (ca *CA) CertPEM() []byte {
	return append([]byte(nil), ca.certPEM...)
}

// Certificate returns the parsed CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Issue signs a serving certificate (server auth) for the given DNS names and
// IP addresses with a fresh ECDSA P-256 key, valid for validity from now (and
// never past the CA). It returns the certificate and the key, PEM-encoded.
func (ca *CA) Issue(dnsNames []string, ips []net.IP, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, nil, errors.New("certs: a serving certificate needs at least one DNS name or IP address")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("certs: certificate validity must be positive, got %s", validity)
	}
	if remaining := time.Until(ca.cert.NotAfter); validity > remaining {
		validity = remaining
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	key, err := pki.GenerateECPrivateKey(pki.ECCurve256)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generating the serving key: %w", err)
	}
	tmpl, err := pki.CertificateTemplateFromCertificate(&cmapi.Certificate{
		Spec: cmapi.CertificateSpec{
			CommonName:  cn,
			DNSNames:    dnsNames,
			IPAddresses: pki.IPAddressesToString(ips),
			Duration:    &metav1.Duration{Duration: validity},
			PrivateKey:  &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: pki.ECCurve256},
			Usages:      []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("certs: serving certificate template: %w", err)
	}
	certPEM, _, err = pki.SignCertificate(tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: signing the serving certificate: %w", err)
	}
	keyPEM, err = pki.EncodePrivateKey(key, cmapi.PKCS8)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: encoding the serving key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// WriteServingPair writes tls.crt and tls.key into dir (created if needed),
// each through a temporary file renamed into place, so that a watcher such
// as controller-runtime's certwatcher never reads half a file. The key is
// written first: a watcher that reloads on the certificate's change then
// finds the matching key already there.
func WriteServingPair(dir string, certPEM, keyPEM []byte) error {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return errors.New("certs: refusing to write an empty certificate or key")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: creating %s: %w", dir, err)
	}
	if err := writeAtomic(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, CertFile), certPEM, 0o644)
}

// writeAtomic replaces path with data via a temporary file in the same
// directory and a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	name := tmp.Name()
	cleanup := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return cleanup(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return cleanup(err)
	}
	if err := tmp.Sync(); err != nil {
		return cleanup(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	return nil
}
