package evidence_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	seed, pub, err := evidence.GenerateKey()
	require.NoError(t, err)
	rawSeed, err := base64.StdEncoding.DecodeString(seed)
	require.NoError(t, err)
	priv := ed25519.NewKeyFromSeed(rawSeed)
	_, otherPub, err := evidence.GenerateKey()
	require.NoError(t, err)

	for _, signing := range []string{seed, base64.StdEncoding.EncodeToString(priv), base64.RawURLEncoding.EncodeToString(rawSeed)} {
		k, err := evidence.LoadKeys(signing, otherPub)
		require.NoError(t, err)
		require.True(t, k.CanSign())
		require.Equal(t, evidence.KeyID(priv.Public().(ed25519.PublicKey)), k.KeyID())
		require.Equal(t, pub, k.PublicKeys()[k.KeyID()])
		require.Len(t, k.TrustedKeyIDs(), 2, "its own key and the configured one")
	}

	cp := store.Checkpoint{Seq: 7, Hash: "ab", Reason: store.CheckpointPeriodic, TakenAt: time.Now().Truncate(time.Microsecond)}
	signer, err := evidence.LoadKeys(seed, "")
	require.NoError(t, err)
	require.NoError(t, signer.SignCheckpoint(&cp))
	verifier, err := evidence.LoadKeys("", otherPub+", "+pub)
	require.NoError(t, err)
	require.False(t, verifier.CanSign())
	require.NoError(t, verifier.VerifyCheckpoint(cp))
	require.NoError(t, signer.SignCheckpoint(&store.Checkpoint{}))
	require.ErrorIs(t, verifier.SignCheckpoint(&store.Checkpoint{}), evidence.ErrNoSigningKey)
	stranger, err := evidence.LoadKeys("", otherPub)
	require.NoError(t, err)
	require.ErrorIs(t, stranger.VerifyCheckpoint(cp), evidence.ErrUntrustedKey)
	cp.Seq++
	require.ErrorIs(t, verifier.VerifyCheckpoint(cp), evidence.ErrBadSignature)
	var none *evidence.Keys
	require.False(t, none.CanSign())
	require.False(t, none.CanVerify())
	require.ErrorIs(t, none.VerifyCheckpoint(cp), evidence.ErrUntrustedKey)

	mismatched := append(append([]byte{}, rawSeed...), make([]byte, 32)...)
	for _, bad := range []struct{ signing, public, want string }{
		{"not base64!", "", "not base64"},
		{base64.StdEncoding.EncodeToString([]byte("short")), "", "32-byte Ed25519 seed"},
		{base64.StdEncoding.EncodeToString(mismatched), "", "does not match its seed"},
		{"", base64.StdEncoding.EncodeToString(rawSeed[:16]), "32-byte Ed25519 public key"},
	} {
		_, err := evidence.LoadKeys(bad.signing, bad.public)
		require.ErrorContains(t, err, bad.want)
	}
}
