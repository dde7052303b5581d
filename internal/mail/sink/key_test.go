package sink_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

// TestWebhookKeyForms: the signing key is read in every form it is configured in — what
// keygen prints now (base64 of the PKCS #8 DER), the base64 of a SEC 1 DER or of a PEM
// key, PEM itself, and PEM as bash reads the quoted line keygen used to print (newlines
// as the two characters \n) — and each gives the same public key; what is not a P-256
// private key is refused.
func TestWebhookKeyForms(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	pub := base64.StdEncoding.EncodeToString(pubDER)
	pkcs8PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	sec1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))

	// The old keygen line, sourced by bash: what the sink used to refuse with "no PEM block".
	file := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(file, []byte("BREACHFLOW_MAILSINK_PRIVATE_KEY="+strconv.Quote(pkcs8PEM)+"\n"), 0o600))
	out, err := exec.Command("bash", "-c", `set -a; source "$1"; printenv BREACHFLOW_MAILSINK_PRIVATE_KEY`, "bash", file).Output()
	require.NoError(t, err)
	oldSourced := strings.TrimSuffix(string(out), "\n")
	require.Contains(t, oldSourced, `\n`)

	for name, form := range map[string]string{
		"base64 PKCS #8 DER":       base64.StdEncoding.EncodeToString(pkcs8),
		"base64 SEC 1 DER":         base64.StdEncoding.EncodeToString(sec1),
		"base64 of PEM":            base64.StdEncoding.EncodeToString([]byte(pkcs8PEM)),
		"base64 with a newline":    base64.StdEncoding.EncodeToString(pkcs8) + "\n",
		"PKCS #8 PEM":              pkcs8PEM,
		"SEC 1 PEM":                sec1PEM,
		"PEM with escaped newline": oldSourced,
	} {
		s, err := sink.New(sink.Config{WebhookPrivateKeyPEM: form}, nil)
		require.NoError(t, err, name)
		require.Equal(t, pub, s.PublicKey(), name)
		require.NoError(t, s.Close())
	}

	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p384, err := x509.MarshalPKCS8PrivateKey(other)
	require.NoError(t, err)
	for name, form := range map[string]string{
		"not a key":         "not a key",
		"base64 of junk":    base64.StdEncoding.EncodeToString([]byte("junk")),
		"a public key":      pub,
		"P-384":             base64.StdEncoding.EncodeToString(p384),
		"truncated base64":  base64.StdEncoding.EncodeToString(pkcs8)[:40],
		"PEM of a public":   string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		"URL-safe base64":   strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(pkcs8)) + "-_",
		"quoted, unsourced": strconv.Quote(base64.StdEncoding.EncodeToString(pkcs8)),
	} {
		_, err := sink.New(sink.Config{WebhookPrivateKeyPEM: form}, nil)
		require.Error(t, err, name)
	}

	// What keygen prints: a pair that verifies.
	priv, pub2, err := sink.GenerateKeyBase64()
	require.NoError(t, err)
	require.NotContains(t, priv, "\n")
	s, err := sink.New(sink.Config{WebhookPrivateKeyPEM: priv}, nil)
	require.NoError(t, err)
	require.Equal(t, pub2, s.PublicKey())
	require.NoError(t, s.Close())
	_, err = mail.NewVerifier(pub2)
	require.NoError(t, err)
}
