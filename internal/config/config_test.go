package config_test

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"

	"github.com/breachflow/breachflow/internal/config"
)

func load(t *testing.T, env map[string]string, args ...string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	l := config.NewLoader(fs)
	require.NoError(t, fs.Parse(args))
	return l.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", cfg.Listen)
	require.Equal(t, "https://api.sendgrid.com", cfg.SendGridAPIURL)
	require.Equal(t, 30*time.Second, cfg.SendGridTimeout)
	require.Equal(t, "default", cfg.TemporalNamespace)
	require.Equal(t, notice.Sender{Organisation: "Breachflow Cloud"}, cfg.Sender())
}

func TestFlagBeatsEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, map[string]string{"BREACHFLOW_LISTEN": "127.0.0.1:9000", "TEMPORAL_ADDRESS": "temporal:7233"},
		"--listen", "0.0.0.0:8081")
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:8081", cfg.Listen)
	require.Equal(t, "temporal:7233", cfg.TemporalAddress)
}

func TestBadValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "mysql://x/y"}, `DATABASE_URL="mysql://x/y" (from DATABASE_URL): want a URL such as postgres://`},
		{map[string]string{"DATABASE_URL": "postgres://u:secret@db:5432/"}, "missing database name"},
		{map[string]string{"TEMPORAL_ADDRESS": "temporal"}, "TEMPORAL_ADDRESS=\"temporal\" (from TEMPORAL_ADDRESS): want host:port"},
		{map[string]string{"BREACHFLOW_LISTEN": "127.0.0.1:99999"}, "port must be a number from 0 to 65535"},
		{map[string]string{"BREACHFLOW_PUBLIC_URL": "ftp://example"}, "BREACHFLOW_PUBLIC_URL"},
		{map[string]string{"SENDGRID_API_URL": "api.sendgrid.com"}, "want an http:// or https:// URL"},
		{map[string]string{"SENDGRID_TIMEOUT": "soon"}, "SENDGRID_TIMEOUT=\"soon\""},
		{map[string]string{"SENDGRID_TIMEOUT": "-1s"}, "must be positive"},
		{map[string]string{"BREACHFLOW_LOG_LEVEL": "loud"}, "want one of debug, info, warn, error"},
		{map[string]string{"BREACHFLOW_MAIL_FROM": "nobody"}, "want an email address"},
		{map[string]string{"BREACHFLOW_SENDER_ORG": " "}, "want one line of at most 200 characters"},
		{map[string]string{"BREACHFLOW_SENDER_ORG": "Example\nCloud"}, "want one line of at most 200 characters"},
		{map[string]string{"BREACHFLOW_SENDER_SIGNATURE": "Team\x00"}, "without control characters"},
		{map[string]string{"BREACHFLOW_REPLY_TO": "privacy"}, "want an email address"},
		{map[string]string{"TEMPORAL_NAMESPACE": "my ns"}, "without spaces"},
	}
	for _, tc := range cases {
		_, err := load(t, tc.env)
		require.ErrorContains(t, err, tc.want, tc.env)
	}
}

func TestEveryBadValueReportedAtOnce(t *testing.T) {
	t.Parallel()
	_, err := load(t, map[string]string{"BREACHFLOW_LISTEN": "nope", "BREACHFLOW_LOG_FORMAT": "xml"}, "--temporal-address", "x")
	require.Error(t, err)
	require.ErrorContains(t, err, "BREACHFLOW_LISTEN")
	require.ErrorContains(t, err, "BREACHFLOW_LOG_FORMAT")
	require.ErrorContains(t, err, "TEMPORAL_ADDRESS=\"x\" (from --temporal-address)")
}

func TestSecretsAreNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := load(t, map[string]string{"DATABASE_URL": "postgres://app:hunter2@db/"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestRequire(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, nil)
	require.NoError(t, err)
	require.ErrorContains(t, cfg.Require("SENDGRID_API_KEY"), "SENDGRID_API_KEY is required (flag --sendgrid-api-key)")
	require.NoError(t, cfg.Require("DATABASE_URL"))
}
