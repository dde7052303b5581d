// Package config reads breachflow's settings from the environment and flags and checks
// them, reporting every bad value at once.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/breachflow/breachflow/internal/notice"
)

// Config holds every setting of every role.
type Config struct {
	DatabaseURL       string
	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string
	SendGridAPIKey    string
	SendGridAPIURL    string
	SendGridTimeout   time.Duration
	InDoubtGrace      time.Duration
	WebhookPublicKey  string
	MailFrom          string
	SenderOrg         string
	SenderSignature   string
	ReplyTo           string
	Listen            string
	PublicURL         string
	MailsinkListen    string
	LogLevel          string
	LogFormat         string
	AckSecret         string
	ResponderEmails   string
	MetricsListen     string
	SessionKeys       string
	TrustedProxy      string
	NoticeURLHosts    string
	TLSCert           string
	TLSKey            string

	// AuditSigningKey signs audit checkpoints and evidence manifests (base64 Ed25519 seed
	// or private key); empty: nothing is signed.
	AuditSigningKey string
	// AuditPublicKey lists the public keys whose signatures verifiers trust (base64,
	// comma-separated), besides the signing key's own.
	AuditPublicKey string
	// AuditCheckpointInterval is how often serve checkpoints the audit chain's head.
	AuditCheckpointInterval time.Duration
}

// SessionKey is one console session signing key and its id.
type SessionKey struct {
	ID     string
	Secret []byte
}

// ConsoleKeys returns the console session keys, the signing key first; the others are
// still accepted so that a rotation does not end live sessions.
func (c Config) ConsoleKeys() []SessionKey {
	var out []SessionKey
	for _, p := range strings.Split(c.SessionKeys, ",") {
		if id, secret, ok := strings.Cut(strings.TrimSpace(p), ":"); ok {
			out = append(out, SessionKey{ID: id, Secret: []byte(secret)})
		}
	}
	return out
}

// URLHosts returns the hosts that custom notice templates may link to.
func (c Config) URLHosts() []string {
	var out []string
	for _, h := range strings.Split(c.NoticeURLHosts, ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// Responders returns the responder addresses.
func (c Config) Responders() []string {
	var out []string
	for _, e := range strings.Split(c.ResponderEmails, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// setting describes one configuration value: its environment variable, flag and default.
type setting struct {
	env, flag, def, usage string
	str                   *string
	dur                   *time.Duration
	check                 func(string) error
}

func (c *Config) settings() []setting {
	return []setting{
		{env: "DATABASE_URL", flag: "database-url", def: "postgres://postgres@127.0.0.1:5432/breachflow?sslmode=disable",
			usage: "PostgreSQL URL", str: &c.DatabaseURL, check: checkPostgresURL},
		{env: "TEMPORAL_ADDRESS", flag: "temporal-address", def: "127.0.0.1:7233",
			usage: "Temporal frontend host:port", str: &c.TemporalAddress, check: checkHostPort},
		{env: "TEMPORAL_NAMESPACE", flag: "temporal-namespace", def: "default",
			usage: "Temporal namespace", str: &c.TemporalNamespace, check: checkName},
		{env: "BREACHFLOW_TASK_QUEUE", flag: "task-queue", def: "breachflow",
			usage: "Temporal task queue", str: &c.TaskQueue, check: checkName},
		{env: "SENDGRID_API_KEY", flag: "sendgrid-api-key", def: "",
			usage: "SendGrid API key", str: &c.SendGridAPIKey},
		{env: "SENDGRID_API_URL", flag: "sendgrid-api-url", def: "https://api.sendgrid.com",
			usage: "SendGrid API base URL", str: &c.SendGridAPIURL, check: checkHTTPURL},
		{env: "SENDGRID_TIMEOUT", flag: "sendgrid-timeout", def: "30s",
			usage: "timeout of one SendGrid request", dur: &c.SendGridTimeout},
		{env: "BREACHFLOW_IN_DOUBT_GRACE", flag: "in-doubt-grace", def: "1m",
			usage: "how long a notice whose send got no answer waits for its delivery events before it is sent again (as a possible duplicate)", dur: &c.InDoubtGrace},
		{env: "SENDGRID_WEBHOOK_PUBLIC_KEY", flag: "sendgrid-webhook-public-key", def: "",
			usage: "base64 public key that signs SendGrid's Event Webhook", str: &c.WebhookPublicKey},
		{env: "BREACHFLOW_MAIL_FROM", flag: "mail-from", def: "security-notices@breachflow.example",
			usage: "sender address of notices", str: &c.MailFrom, check: checkEmail},
		{env: "BREACHFLOW_SENDER_ORG", flag: "sender-org", def: "Breachflow Cloud", // api.DefaultSenderOrganisation
			usage: "organisation that notices come from: the From name and the processor named in every notice", str: &c.SenderOrg, check: checkSenderOrg},
		{env: "BREACHFLOW_SENDER_SIGNATURE", flag: "sender-signature", def: "",
			usage: "closing of every notice, e.g. \"Security and Privacy Team\" (empty: each language's own)", str: &c.SenderSignature, check: checkSignature},
		{env: "BREACHFLOW_REPLY_TO", flag: "reply-to", def: "",
			usage: "address replies to notices go to (empty: the sender address)", str: &c.ReplyTo, check: checkOptionalEmail},
		{env: "BREACHFLOW_LISTEN", flag: "listen", def: "127.0.0.1:8080",
			usage: "HTTP listen address", str: &c.Listen, check: checkHostPort},
		{env: "BREACHFLOW_PUBLIC_URL", flag: "public-url", def: "http://127.0.0.1:8080",
			usage: "public base URL used in acknowledgement links", str: &c.PublicURL, check: checkHTTPURL},
		{env: "BREACHFLOW_MAILSINK_LISTEN", flag: "mailsink-listen", def: "127.0.0.1:8025",
			usage: "listen address of the mail sink", str: &c.MailsinkListen, check: checkHostPort},
		{env: "BREACHFLOW_ACK_SECRET", flag: "ack-secret", def: "",
			usage: "secret that derives acknowledgement links (empty: one generated once and kept in the database)", str: &c.AckSecret, check: checkSecret},
		{env: "BREACHFLOW_RESPONDER_EMAILS", flag: "responder-emails", def: "",
			usage: "comma-separated addresses that receive deadline and partner alerts", str: &c.ResponderEmails, check: checkEmailList},
		{env: "BREACHFLOW_METRICS_LISTEN", flag: "metrics-listen", def: "127.0.0.1:9090",
			usage: "listen address of /metrics (a listener of its own, not the public one)", str: &c.MetricsListen, check: checkHostPort},
		{env: "BREACHFLOW_SESSION_KEYS", flag: "session-keys", def: "",
			usage: "console session keys as id:secret[,id:secret…]; the first signs, the others are still accepted (rotation)", str: &c.SessionKeys, check: checkSessionKeys},
		{env: "BREACHFLOW_TRUSTED_PROXY_HEADER", flag: "trusted-proxy-header", def: "",
			usage: "header a trusted reverse proxy sets to the client address (X-Forwarded-For: its last entry); empty: the TCP peer", str: &c.TrustedProxy, check: checkHeaderName},
		{env: "BREACHFLOW_NOTICE_URL_HOSTS", flag: "notice-url-hosts", def: "",
			usage: "comma-separated hosts custom notice templates may link to, besides the public URL's", str: &c.NoticeURLHosts, check: checkHostList},
		{env: "BREACHFLOW_TLS_CERT", flag: "tls-cert", def: "",
			usage: "PEM certificate file: serve HTTPS (with BREACHFLOW_TLS_KEY)", str: &c.TLSCert},
		{env: "BREACHFLOW_TLS_KEY", flag: "tls-key", def: "",
			usage: "PEM private key file of BREACHFLOW_TLS_CERT", str: &c.TLSKey},
		{env: "BREACHFLOW_AUDIT_SIGNING_KEY", flag: "audit-signing-key", def: "",
			usage: "base64 Ed25519 seed (or private key) that signs audit checkpoints and evidence packs; keep it out of the database (breachflow audit keygen); empty: nothing is signed and verification says so",
			str:   &c.AuditSigningKey, check: checkSigningKey},
		{env: "BREACHFLOW_AUDIT_PUBLIC_KEY", flag: "audit-public-key", def: "",
			usage: "comma-separated base64 Ed25519 public keys whose audit checkpoints and evidence packs verifiers trust (keys used before a rotation); the signing key's own is trusted anyway",
			str:   &c.AuditPublicKey, check: checkPublicKeys},
		{env: "BREACHFLOW_AUDIT_CHECKPOINT_INTERVAL", flag: "audit-checkpoint-interval", def: "10m",
			usage: "how often serve signs the audit chain's head into a checkpoint (when it moved)", dur: &c.AuditCheckpointInterval},
		{env: "BREACHFLOW_LOG_LEVEL", flag: "log-level", def: "info",
			usage: "debug, info, warn or error", str: &c.LogLevel, check: oneOf("debug", "info", "warn", "error")},
		{env: "BREACHFLOW_LOG_FORMAT", flag: "log-format", def: "json",
			usage: "json or console", str: &c.LogFormat, check: oneOf("json", "console")},
	}
}

// Loader binds flags to FlagSets and builds a Config from them and the environment.
type Loader struct {
	// vals holds one value per bound flag, shared by every FlagSet it is bound to: only
	// one command's flags are parsed per run.
	vals map[string]*string
}

// NewLoader returns a loader with every setting's flag registered on each of fss (none:
// flags are registered later, per command, with Bind).
func NewLoader(fss ...*pflag.FlagSet) *Loader {
	l := &Loader{vals: map[string]*string{}}
	for _, fs := range fss {
		l.Bind(fs)
	}
	return l
}

// Bind registers on fs the flags of the settings named by their environment variables,
// or of every setting when none is named, so that a command shows only the settings it
// reads. A flag fs already defines (a command's own --listen, say) is left alone. An
// unknown name panics: it is a mistake in the caller's code, not in its input.
func (l *Loader) Bind(fs *pflag.FlagSet, envs ...string) {
	var c Config
	all := c.settings()
	for _, e := range envs {
		if !slices.ContainsFunc(all, func(s setting) bool { return s.env == e }) {
			panic("config: no setting " + e)
		}
	}
	for _, s := range all {
		if len(envs) > 0 && !slices.Contains(envs, s.env) || fs.Lookup(s.flag) != nil {
			continue
		}
		v := l.vals[s.flag]
		if v == nil {
			v = new(string)
			l.vals[s.flag] = v
		}
		fs.StringVar(v, s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
}

// Load resolves each setting (flag, then environment, then default), parses and checks
// it, and returns every problem joined. overrides replace defaults for one role (dev
// uses its own database name, for instance).
func (l *Loader) Load(getenv func(string) (string, bool), overrides map[string]string) (Config, error) {
	var cfg Config
	var errs []error
	for _, s := range cfg.settings() {
		v, from := s.def, "default"
		if d, ok := overrides[s.env]; ok {
			v = d
		}
		if e, ok := getenv(s.env); ok && e != "" {
			v, from = e, s.env
		}
		if f := l.vals[s.flag]; f != nil && *f != "" {
			v, from = *f, "--"+s.flag
		}
		if s.dur != nil {
			d, err := time.ParseDuration(v)
			if err == nil && d <= 0 {
				err = errors.New("must be positive")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (from %s): want a duration such as 30s: %v", s.env, v, from, err))
			}
			*s.dur = d
			continue
		}
		*s.str = v
		if s.check != nil {
			if err := s.check(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (from %s): %v", s.env, redact(s.env, v), from, err))
			}
		}
	}
	return cfg, errors.Join(errs...)
}

// Require checks that each named setting is set, for the roles that need it.
func (c Config) Require(envs ...string) error {
	var errs []error
	for _, s := range c.settings() {
		for _, e := range envs {
			if e == s.env && s.str != nil && *s.str == "" {
				errs = append(errs, fmt.Errorf("%s is required (flag --%s): %s", s.env, s.flag, s.usage))
			}
		}
	}
	return errors.Join(errs...)
}

func redact(env, v string) string {
	if strings.Contains(env, "KEY") || strings.Contains(env, "PASSWORD") || strings.Contains(env, "SECRET") {
		return "<redacted>"
	}
	if env == "DATABASE_URL" {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				return u.String()
			}
		}
	}
	return v
}

func checkPostgresURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("want a URL such as postgres://user@host:5432/dbname")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("missing database name")
	}
	return nil
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port such as 127.0.0.1:8080")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL")
	}
	return nil
}

func checkName(v string) error {
	if v == "" || len(v) > 200 || strings.ContainsAny(v, " \t\r\n") {
		return errors.New("want a non-empty name without spaces")
	}
	return nil
}

func checkEmail(v string) error {
	at := strings.LastIndexByte(v, '@')
	if at < 1 || at == len(v)-1 || strings.ContainsAny(v, " <>") || !strings.Contains(v[at:], ".") {
		return errors.New("want an email address")
	}
	return nil
}

func checkOptionalEmail(v string) error {
	if v == "" {
		return nil
	}
	return checkEmail(v)
}

// checkSenderOrg keeps the organisation to one printable line, as the From name needs.
func checkSenderOrg(v string) error {
	if strings.TrimSpace(v) == "" || utf8.RuneCountInString(v) > 200 || strings.ContainsFunc(v, unicode.IsControl) {
		return errors.New("want one line of at most 200 characters")
	}
	return nil
}

func checkSignature(v string) error {
	if utf8.RuneCountInString(v) > 500 || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
		return errors.New("want at most 500 characters, without control characters other than line breaks")
	}
	return nil
}

// Sender returns who notices come from.
func (c Config) Sender() notice.Sender {
	return notice.Sender{Organisation: c.SenderOrg, Signature: c.SenderSignature, ReplyTo: c.ReplyTo}
}

func checkSecret(v string) error {
	if v != "" && len(v) < 32 {
		return errors.New("want at least 32 characters")
	}
	return nil
}

// checkSigningKey checks the form of an Ed25519 signing key (internal/evidence parses it).
func checkSigningKey(v string) error {
	if v == "" {
		return nil
	}
	if n := base64Len(v); n != 32 && n != 64 {
		return errors.New("want base64 of a 32-byte Ed25519 seed or a 64-byte private key (breachflow audit keygen)")
	}
	return nil
}

func checkPublicKeys(v string) error {
	for _, k := range strings.Split(v, ",") {
		if k = strings.TrimSpace(k); k != "" && base64Len(k) != 32 {
			return fmt.Errorf("%q: want base64 of a 32-byte Ed25519 public key", k)
		}
	}
	return nil
}

// base64Len is the decoded length of standard base64 v (padded or not), -1 when it is not base64.
func base64Len(v string) int {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(strings.TrimSpace(v)); err == nil {
			return len(raw)
		}
	}
	return -1
}

func checkSessionKeys(v string) error {
	if v == "" {
		return nil
	}
	seen := map[string]bool{}
	for _, p := range strings.Split(v, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(p), ":")
		switch {
		case !ok || id == "" || len(id) > 32 || strings.ContainsAny(id, ". \t"):
			return errors.New("want id:secret pairs separated by commas, each id 1-32 characters without dots or spaces")
		case len(secret) < 32:
			return fmt.Errorf("key %q: want a secret of at least 32 characters", id)
		case seen[id]:
			return fmt.Errorf("key id %q appears twice", id)
		}
		seen[id] = true
	}
	return nil
}

func checkHeaderName(v string) error {
	for _, r := range v {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return errors.New("want a header name such as X-Forwarded-For")
		}
	}
	return nil
}

func checkHostList(v string) error {
	for _, h := range strings.Split(v, ",") {
		if h = strings.TrimSpace(h); h != "" && (strings.ContainsAny(h, "/:@ ") || !strings.Contains(h, ".")) {
			return fmt.Errorf("%q: want a host name such as status.example.com", h)
		}
	}
	return nil
}

func checkEmailList(v string) error {
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			if err := checkEmail(e); err != nil {
				return fmt.Errorf("%q: %v", e, err)
			}
		}
	}
	return nil
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(vals, ", "))
	}
}
