package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

// keygenNames are the variables keygen prints: the sink reads the first (cmd mailsink),
// the API the second (config's SENDGRID_WEBHOOK_PUBLIC_KEY).
var keygenNames = []string{"BREACHFLOW_MAILSINK_PRIVATE_KEY", "SENDGRID_WEBHOOK_PUBLIC_KEY"}

// sourced is what bash reads name as after `set -a; source file`, in an empty environment.
func sourced(t *testing.T, file, name string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", `set -a; source "$1"; printenv "$2"`, "bash", file, name)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "bash: %s", stderr.String())
	require.Empty(t, stderr.String())
	return strings.TrimSuffix(string(out), "\n")
}

// TestMailsinkKeygenLinesSourceAndLoad follows the documented steps: keygen appended to an
// .env (after .env.example's empty lines) is read to the same values by bash's `source`
// and by docker compose's .env parser; the private key starts the sink, whose public key
// is the one printed, and the API's verifier with that public key accepts the webhook
// events the sink signs.
func TestMailsinkKeygenLinesSourceAndLoad(t *testing.T) {
	out, err := run(t, context.Background(), "mailsink", "keygen")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, len(keygenNames), out)
	for i, name := range keygenNames {
		require.True(t, strings.HasPrefix(lines[i], name+"="), "line %d: %s", i+1, lines[i])
	}

	file := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(file, []byte("BREACHFLOW_MAILSINK_PRIVATE_KEY=\nSENDGRID_WEBHOOK_PUBLIC_KEY=\n"+out), 0o600))
	compose, err := dotenv.GetEnvFromFile(map[string]string{}, []string{file})
	require.NoError(t, err)
	values := map[string]string{}
	for _, name := range keygenNames {
		v := sourced(t, file, name)
		require.NotEmpty(t, v, name)
		require.Equal(t, compose[name], v, "%s: compose and bash read different values", name)
		values[name] = v
	}
	priv, pub := values[keygenNames[0]], values[keygenNames[1]]

	// The sink as `breachflow mailsink` starts it, posting to a receiver that verifies as
	// the API does.
	verifier, err := mail.NewVerifier(pub)
	require.NoError(t, err)
	var mu sync.Mutex
	var verified []mail.Event
	var failures []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events, err := verifier.Verify(r.Header.Get(mail.SignatureHeader), r.Header.Get(mail.TimestampHeader), body, time.Now(), 0)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failures = append(failures, err.Error())
			w.WriteHeader(http.StatusForbidden)
			return
		}
		verified = append(verified, events...)
	}))
	defer receiver.Close()
	s, err := sink.New(sink.Config{WebhookPrivateKeyPEM: priv, WebhookURL: receiver.URL, WebhookAttempts: 1}, nil)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, pub, s.PublicKey())

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	msg, err := json.Marshal(map[string]any{
		"from":             map[string]any{"email": "notices@provider.example"},
		"subject":          "Incident notice",
		"content":          []any{map[string]any{"type": "text/plain", "value": "Hello"}},
		"personalizations": []any{map[string]any{"to": []any{map[string]any{"email": "dpo@tenant.example"}}}},
	})
	require.NoError(t, err)
	req, err := http.NewRequest("POST", srv.URL+"/v3/mail/send", bytes.NewReader(msg))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer SG.test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NoError(t, s.FlushWebhooks(t.Context()))

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, failures, "the API's verifier refused the sink's signature")
	require.NotEmpty(t, verified, "no signed events arrived")
}
