package sink

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
)

// A PEM key does not survive an env file: its newlines need quoting, and docker compose's
// .env parser and a shell's `source` unquote differently (compose turns "\n" into a
// newline, bash keeps the backslash). The base64 of the DER key is one line of characters
// that every reader takes as is, so that is what keygen prints and what the sink reads
// first; PEM stays accepted.

// GenerateKeyBase64 makes an ECDSA P-256 key pair for the webhook: the private key as the
// base64 of its PKCS #8 DER (for Config.WebhookPrivateKeyPEM, or an env file) and the
// public key as SendGrid shows it.
func GenerateKeyBase64() (privateKey, publicKey string, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(der), base64.StdEncoding.EncodeToString(pub), nil
}

// parseWebhookKey reads the signing key in any form it is configured in: the base64 of
// the DER (PKCS #8 or SEC 1) key, the base64 of a PEM key, or PEM, including PEM whose
// newlines arrived as the two characters \n (an old keygen line sourced by a shell).
func parseWebhookKey(s string) (*ecdsa.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		if !strings.Contains(s, "\n") {
			s = strings.ReplaceAll(s, `\n`, "\n")
		}
		return parsePrivateKey(s)
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("want the base64 of a DER private key (as breachflow mailsink keygen prints it) or a PEM private key")
	}
	if bytes.HasPrefix(der, []byte("-----BEGIN")) {
		return parsePrivateKey(string(der))
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if key, err = x509.ParseECPrivateKey(der); err != nil {
			return nil, errors.New("base64 that is neither a PKCS #8 nor a SEC 1 private key")
		}
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return ec, nil
}
