// Package evidence proves what breachflow did: it signs the audit chain's head into
// checkpoints, verifies the chain against them, and builds evidence packs (a zip of who
// was told what and when, with a signed manifest) that verify offline.
//
// One Ed25519 key signs both checkpoints and manifests. It comes from the configuration
// (BREACHFLOW_AUDIT_SIGNING_KEY), never from the database it protects: whoever can
// rewrite the database cannot sign. Verifiers need only the public key
// (BREACHFLOW_AUDIT_PUBLIC_KEY).
package evidence

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/breachflow/breachflow/internal/store"
)

// Keys signs with one private key (when configured) and trusts its public key and any
// others configured (keys that signed before a rotation). A nil *Keys neither signs nor
// trusts anything.
type Keys struct {
	priv    ed25519.PrivateKey
	keyID   string
	trusted map[string]ed25519.PublicKey // by key id
}

// ErrNoSigningKey is returned when something must be signed and no signing key is
// configured.
var ErrNoSigningKey = errors.New("no audit signing key configured (BREACHFLOW_AUDIT_SIGNING_KEY)")

// ErrUntrustedKey is matched by signatures made by a key that is not trusted.
var ErrUntrustedKey = errors.New("signed by a key that is not trusted")

// ErrBadSignature is matched by signatures that do not verify.
var ErrBadSignature = errors.New("signature does not verify")

// LoadKeys builds Keys from the configured signing key (base64 of a 32-byte Ed25519 seed
// or a 64-byte private key; empty: cannot sign) and public keys (base64, comma-separated;
// the signing key's own is trusted anyway).
func LoadKeys(signing, public string) (*Keys, error) {
	k := &Keys{trusted: map[string]ed25519.PublicKey{}}
	if strings.TrimSpace(signing) != "" {
		priv, err := ParseSigningKey(signing)
		if err != nil {
			return nil, fmt.Errorf("BREACHFLOW_AUDIT_SIGNING_KEY: %w", err)
		}
		pub := priv.Public().(ed25519.PublicKey)
		k.priv, k.keyID = priv, KeyID(pub)
		k.trusted[k.keyID] = pub
	}
	pubs, err := ParsePublicKeys(public)
	if err != nil {
		return nil, fmt.Errorf("BREACHFLOW_AUDIT_PUBLIC_KEY: %w", err)
	}
	for _, p := range pubs {
		k.trusted[KeyID(p)] = p
	}
	return k, nil
}

// ParseSigningKey decodes a base64 Ed25519 seed (32 bytes) or private key (64 bytes,
// whose public half must match its seed).
func ParseSigningKey(s string) (ed25519.PrivateKey, error) {
	raw, err := decode64(s)
	if err != nil {
		return nil, err
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(raw[ed25519.SeedSize:])) {
			return nil, errors.New("the private key's public half does not match its seed")
		}
		return priv, nil
	}
	return nil, fmt.Errorf("want base64 of a 32-byte Ed25519 seed or a 64-byte private key, got %d bytes", len(raw))
}

// ParsePublicKeys decodes comma-separated base64 Ed25519 public keys.
func ParsePublicKeys(s string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		raw, err := decode64(part)
		if err != nil {
			return nil, err
		}
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("want base64 of a 32-byte Ed25519 public key, got %d bytes", len(raw))
		}
		out = append(out, ed25519.PublicKey(raw))
	}
	return out, nil
}

func decode64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			return raw, nil
		}
	}
	return nil, errors.New("not base64")
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a new key pair and returns the seed and the public key in base64.
func GenerateKey() (signing, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub), nil
}

// CanSign reports whether a signing key is configured.
func (k *Keys) CanSign() bool { return k != nil && k.priv != nil }

// CanVerify reports whether any public key is trusted.
func (k *Keys) CanVerify() bool { return k != nil && len(k.trusted) > 0 }

// KeyID is the signing key's id ("" when none).
func (k *Keys) KeyID() string {
	if k == nil {
		return ""
	}
	return k.keyID
}

// TrustedKeyIDs lists the ids of the trusted public keys, sorted.
func (k *Keys) TrustedKeyIDs() []string {
	if k == nil {
		return nil
	}
	out := make([]string, 0, len(k.trusted))
	for id := range k.trusted {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// PublicKeys returns the trusted public keys in base64, by key id.
func (k *Keys) PublicKeys() map[string]string {
	out := map[string]string{}
	if k != nil {
		for id, p := range k.trusted {
			out[id] = base64.StdEncoding.EncodeToString(p)
		}
	}
	return out
}

// sign signs msg, returning the key id and the signature.
func (k *Keys) sign(msg []byte) (string, []byte, error) {
	if !k.CanSign() {
		return "", nil, ErrNoSigningKey
	}
	return k.keyID, ed25519.Sign(k.priv, msg), nil
}

// verify checks sig over msg with the trusted key keyID.
func (k *Keys) verify(keyID string, msg, sig []byte) error {
	var pub ed25519.PublicKey
	if k != nil {
		pub = k.trusted[keyID]
	}
	if pub == nil {
		return fmt.Errorf("%w (key %s)", ErrUntrustedKey, keyID)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w (key %s)", ErrBadSignature, keyID)
	}
	return nil
}

// checkpointDomain and manifestDomain open every signed message, so that no signature
// of one kind can pass for the other.
const (
	checkpointDomain = "breachflow-audit-checkpoint-v1\n"
	manifestDomain   = "breachflow-evidence-manifest-v1\n"
)

// CheckpointMessage is the exact bytes a checkpoint's signature covers: every field but
// its id (assigned when stored) and the signature itself.
func CheckpointMessage(c store.Checkpoint) []byte {
	var b strings.Builder
	b.WriteString(checkpointDomain)
	line := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
	line("seq", strconv.FormatInt(c.Seq, 10))
	line("hash", c.Hash)
	line("incident", c.IncidentID)
	line("incident_rows", strconv.FormatInt(c.IncidentRows, 10))
	line("incident_digest", c.IncidentDigest)
	line("reason", c.Reason)
	line("taken_at", c.TakenAt.UTC().Format(time.RFC3339Nano))
	line("key", c.KeyID)
	return []byte(b.String())
}

// SignCheckpoint signs c with the signing key, setting its KeyID and Signature.
func (k *Keys) SignCheckpoint(c *store.Checkpoint) error {
	if !k.CanSign() {
		return ErrNoSigningKey
	}
	c.KeyID = k.keyID
	_, sig, err := k.sign(CheckpointMessage(*c))
	if err != nil {
		return err
	}
	c.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

// VerifyCheckpoint checks c's signature with the trusted keys.
func (k *Keys) VerifyCheckpoint(c store.Checkpoint) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrBadSignature)
	}
	return k.verify(c.KeyID, CheckpointMessage(c), sig)
}
