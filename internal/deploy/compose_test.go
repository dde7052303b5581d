package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/config"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

// repoRoot holds docker-compose.yml and the Dockerfile, relative to this package.
const repoRoot = "../.."

var (
	composeFile = filepath.Join(repoRoot, "docker-compose.yml")
	apiTLSFile  = filepath.Join(repoRoot, "deploy", "compose.api-tls.yml")
	caddyfile   = filepath.Join(repoRoot, "deploy", "Caddyfile")
	envExample  = filepath.Join(repoRoot, ".env.example")
)

const (
	healthy   = types.ServiceConditionHealthy
	completed = types.ServiceConditionCompletedSuccessfully
)

// service is what docker-compose.yml must say about one service.
type service struct {
	name     string
	image    string            // image repository, pinned by tag; empty: built from the repository's Dockerfile
	command  []string          // leading arguments of breachflow's command line
	requires []string          // settings the breachflow role refuses to start without
	profiles []string          // the only profiles that start it; none: it always runs
	internal bool              // attached to internal networks only: nothing outside the project reaches it
	probe    string            // text the health check must contain; empty: no health check required
	after    map[string]string // dependency → condition
	volumes  map[string]string // named volume → mount point
}

func (s service) built() bool { return s.image == "" }

var services = []service{
	{name: "postgres", image: "postgres", probe: "pg_isready", internal: true,
		volumes: map[string]string{"pgdata": "/var/lib/postgresql/data"}},
	{name: "temporal", image: "temporalio/auto-setup", internal: true,
		// tctl is past its end of support; the image's own setup script uses the temporal CLI.
		probe: "temporal operator cluster health",
		after: map[string]string{"postgres": healthy}},
	{name: "temporal-ui", image: "temporalio/ui",
		after: map[string]string{"temporal": healthy}},
	{name: "migrate", command: []string{"migrate"}, requires: []string{"DATABASE_URL"}, internal: true,
		after: map[string]string{"postgres": healthy}},
	{name: "mailsink", command: []string{"mailsink"}, profiles: []string{"dev"}, probe: "/sink/messages"},
	{name: "worker", command: []string{"worker"}, requires: []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "SENDGRID_API_KEY"},
		after: map[string]string{"migrate": completed, "temporal": healthy, "mailsink": healthy}},
	{name: "api", command: []string{"serve"}, requires: []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "BREACHFLOW_SESSION_KEYS"},
		probe: "/readyz",
		after: map[string]string{"migrate": completed, "temporal": healthy}},
	{name: "proxy", image: "caddy",
		after:   map[string]string{"api": healthy},
		volumes: map[string]string{"caddy-data": "/data", "caddy-config": "/config"}},
}

// lookup returns the expectation for a service.
func lookup(name string) (service, bool) {
	i := slices.IndexFunc(services, func(s service) bool { return s.name == name })
	if i < 0 {
		return service{}, false
	}
	return services[i], true
}

// Values the tests give the variables .env must set.
var (
	pgPassword  = "5f4dcc3b5aa765d61d8327deb882cf99"
	sendgridKey = "SG.compose-test-key"
	sessionKeys = "k1:" + strings.Repeat("0123456789abcdef", 4)
	auditKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// secrets are the variables .env must set: docker-compose.yml gives them no default, so
// loading it fails while one is missing.
var secrets = []struct{ env, value string }{
	{"POSTGRES_PASSWORD", pgPassword},
	{"SENDGRID_API_KEY", sendgridKey},
	{"BREACHFLOW_SESSION_KEYS", sessionKeys},
	{"BREACHFLOW_AUDIT_SIGNING_KEY", auditKey},
}

func secretNames() []string {
	var out []string
	for _, s := range secrets {
		out = append(out, s.env)
	}
	return out
}

func secretVars() []string {
	var out []string
	for _, s := range secrets {
		out = append(out, s.env+"="+s.value)
	}
	return out
}

var (
	roles    = []string{"migrate", "worker", "api"}
	withSink = []string{"migrate", "worker", "api", "mailsink"}
)

// settings are the variables breachflow's services take from .env: the services that get
// each (no other service may, when it is a secret), the value each gets when .env sets
// nothing beyond the secrets, and one a caller might set (with any variable that must change
// with it).
var settings = []struct {
	env, def, set string
	in            []string
	secret        bool
	also          []string
}{
	{env: "DATABASE_URL", def: "postgres://breachflow:" + pgPassword + "@postgres:5432/breachflow?sslmode=disable",
		set: "postgres://notices:pw@db.internal:5432/notices?sslmode=require", in: roles, secret: true},
	{env: "TEMPORAL_ADDRESS", def: "temporal:7233", set: "temporal.internal:7233", in: roles},
	{env: "TEMPORAL_NAMESPACE", def: "default", set: "prod", in: roles},
	{env: "BREACHFLOW_TASK_QUEUE", def: "breachflow", set: "notices", in: roles},
	{env: "SENDGRID_API_URL", def: "https://api.sendgrid.com", set: "https://sendgrid-egress.cloud.example", in: roles},
	{env: "SENDGRID_TIMEOUT", def: "30s", set: "10s", in: roles},
	{env: "BREACHFLOW_MAIL_FROM", def: "security-notices@breachflow.example", set: "notices@cloud.example", in: roles},
	{env: "BREACHFLOW_PUBLIC_URL", def: "https://localhost", set: "https://notices.cloud.example", in: roles,
		also: []string{"BREACHFLOW_DOMAIN=notices.cloud.example"}},
	{env: "BREACHFLOW_NOTICE_URL_HOSTS", def: "", set: "status.cloud.example,trust.cloud.example", in: roles},
	{env: "BREACHFLOW_RESPONDER_EMAILS", def: "", set: "security@cloud.example,privacy@cloud.example", in: roles},
	{env: "BREACHFLOW_METRICS_LISTEN", def: "127.0.0.1:9090", set: "0.0.0.0:9090", in: roles},
	{env: "BREACHFLOW_LOG_LEVEL", def: "info", set: "debug", in: withSink},
	{env: "BREACHFLOW_LOG_FORMAT", def: "json", set: "console", in: withSink},
	{env: "SENDGRID_API_KEY", def: sendgridKey, set: "SG.live-key", in: []string{"worker"}, secret: true},
	{env: "BREACHFLOW_ACK_SECRET", def: "", set: strings.Repeat("ab", 32), in: []string{"worker", "api"}, secret: true},
	{env: "BREACHFLOW_SESSION_KEYS", def: sessionKeys, set: "k2:" + strings.Repeat("fedcba9876543210", 4) + "," + sessionKeys,
		in: []string{"api"}, secret: true},
	{env: "BREACHFLOW_AUDIT_SIGNING_KEY", def: auditKey, set: "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=", in: []string{"worker", "api"}, secret: true},
	{env: "BREACHFLOW_AUDIT_PUBLIC_KEY", def: "", set: "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=", in: roles},
	{env: "BREACHFLOW_AUDIT_CHECKPOINT_INTERVAL", def: "10m", set: "5m", in: roles},
	{env: "BREACHFLOW_IN_DOUBT_GRACE", def: "1m", set: "2m", in: roles},
	{env: "SENDGRID_WEBHOOK_PUBLIC_KEY", def: "", set: "webhook-public-key", in: []string{"api"}},
	{env: "BREACHFLOW_MAILSINK_PRIVATE_KEY", def: "unset: put the output of breachflow mailsink keygen in .env",
		set: "-----BEGIN PRIVATE KEY-----", in: []string{"mailsink"}, secret: true},
}

// internalPorts are the ports of things that must never be reachable from outside the host:
// Temporal's frontend (7233), the mail sink (8025), the Temporal UI (8088), PostgreSQL
// (5432) and /metrics (9090).
var internalPorts = []int{7233, 8025, 8088, 5432, 9090}

// published is one port a service publishes on the host.
type published struct {
	service string
	hostIP  string // empty: every address of the host
	port    string // host side
	target  uint32 // container side
	proto   string
}

func (p published) String() string {
	host := p.hostIP
	if host == "" {
		host = "*"
	}
	return fmt.Sprintf("%s:%s→%d/%s", host, p.port, p.target, p.proto)
}

// scenario is one way of running the compose file, with what it must then publish.
type scenario struct {
	name     string
	override string   // a second compose file, if any
	profiles []string // profiles enabled
	vars     []string // set beyond secrets
	required []string // set by vars, and loading must fail without them
	off      []string // services that must not run
	ports    []published
}

// devKeys is the mail sink's signing key pair for the dev scenarios, as keygen prints it.
var devKeys = sync.OnceValues(func() ([2]string, error) {
	priv, pub, err := sink.GenerateKey()
	return [2]string{priv, pub}, err
})

func scenarios() ([]scenario, error) {
	keys, err := devKeys()
	if err != nil {
		return nil, err
	}
	ui := published{"temporal-ui", "127.0.0.1", "8088", 8080, "tcp"}
	return []scenario{
		{name: "production", off: []string{"mailsink"}, ports: []published{
			{"proxy", "", "80", 80, "tcp"}, {"proxy", "", "443", 443, "tcp"}, ui}},
		{name: "dev", profiles: []string{"dev"},
			vars: []string{"SENDGRID_API_URL=http://mailsink:8025",
				"BREACHFLOW_MAILSINK_PRIVATE_KEY=" + keys[0], "SENDGRID_WEBHOOK_PUBLIC_KEY=" + keys[1]},
			ports: []published{{"proxy", "", "80", 80, "tcp"}, {"proxy", "", "443", 443, "tcp"}, ui,
				{"mailsink", "127.0.0.1", "8025", 8025, "tcp"}}},
		{name: "api-tls", override: apiTLSFile, off: []string{"mailsink", "proxy"},
			vars:     []string{"BREACHFLOW_TLS_DIR=/etc/breachflow/tls", "BREACHFLOW_DOMAIN=notices.cloud.example"},
			required: []string{"BREACHFLOW_TLS_DIR"},
			ports:    []published{{"api", "", "443", 8443, "tcp"}, ui}},
	}, nil
}

// loadProject loads compose files with the Compose specification's own loader, as
// `docker compose config` would, interpolating only the variables in vars (KEY=value): the
// caller's shell must not change the outcome, and CI sets DATABASE_URL for other tests.
func loadProject(ctx context.Context, files, profiles []string, vars ...string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(repoRoot),
		cli.WithEnv(vars),
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// files lists the compose files of a scenario on top of base.
func (sc scenario) files(base string) []string {
	if sc.override == "" {
		return []string{base}
	}
	return []string{base, sc.override}
}

// load loads docker-compose.yml as a scenario would, the secrets and vars set.
func load(t *testing.T, name string, vars ...string) *types.Project {
	t.Helper()
	all, err := scenarios()
	require.NoError(t, err)
	i := slices.IndexFunc(all, func(sc scenario) bool { return sc.name == name })
	require.GreaterOrEqual(t, i, 0, "scenario %s", name)
	sc := all[i]
	p, err := loadProject(t.Context(), sc.files(composeFile), sc.profiles, slices.Concat(secretVars(), sc.vars, vars)...)
	require.NoError(t, err)
	return p
}

// validateFile reports every way the compose file base (with the override files) differs
// from a deployment that runs and exposes nothing it should not, in every scenario. edit, if
// not nil, changes each loaded project before it is checked.
func validateFile(ctx context.Context, base string, edit func(*types.Project)) error {
	all, err := scenarios()
	if err != nil {
		return err
	}
	errs := []error{checkNoDefaults(base, secretNames()...)}
	for _, sc := range all {
		fail := func(err error) {
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", sc.name, err))
			}
		}
		vars := slices.Concat(secretVars(), sc.vars)
		p, err := loadProject(ctx, sc.files(base), sc.profiles, vars...)
		if err != nil {
			fail(err)
			continue
		}
		if edit != nil {
			edit(p)
		}
		fail(validate(p, sc))

		// Every secret is required: without it the file must not load at all.
		for _, name := range slices.Concat(secretNames(), sc.required) {
			without := slices.DeleteFunc(slices.Clone(vars), func(v string) bool { return strings.HasPrefix(v, name+"=") })
			switch _, err := loadProject(ctx, sc.files(base), sc.profiles, without...); {
			case err == nil:
				fail(fmt.Errorf("loads without %s: it must have no default, so that .env has to set it", name))
			case !strings.Contains(err.Error(), name):
				fail(fmt.Errorf("fails without %s, but does not say so: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkNoDefaults checks that every reference to each variable in the file is ${NAME:?…}:
// none gives it a default or lets it be empty.
func checkNoDefaults(file string, names ...string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		re := regexp.MustCompile(`\$\{` + name + `\b(:?[-?+]?)`)
		matches := re.FindAllStringSubmatch(string(b), -1)
		if len(matches) == 0 {
			errs = append(errs, fmt.Errorf("%s: never uses %s", file, name))
		}
		for _, m := range matches {
			if m[1] != ":?" {
				errs = append(errs, fmt.Errorf("%s: ${%s%s…} gives %s a default or lets it be empty; want ${%s:?…}", file, name, m[1], name, name))
			}
		}
	}
	return errors.Join(errs...)
}

// validate reports every way one loaded scenario differs from what breachflow needs to run
// and from what may be exposed.
func validate(p *types.Project, sc scenario) error {
	var errs []error
	for _, want := range services {
		errs = append(errs, checkService(p, want, slices.Contains(sc.off, want.name)))
	}
	errs = append(errs, checkHealthyDependencies(p), checkWiring(p), checkPublished(p, sc.ports), checkNetworks(p),
		checkTemporalUI(p), checkSink(p), checkProxy(p), checkSecretsScoped(p))
	return errors.Join(errs...)
}

// checkService compares one service with its expectation; off: it must not run.
func checkService(p *types.Project, want service, off bool) error {
	s, ok := p.Services[want.name]
	if !ok {
		d, disabled := p.DisabledServices[want.name]
		switch {
		case !disabled:
			return fmt.Errorf("service %s is missing", want.name)
		case !off:
			return fmt.Errorf("service %s does not run (profiles %q)", want.name, d.Profiles)
		case len(want.profiles) > 0 && !slices.Equal(d.Profiles, want.profiles):
			return fmt.Errorf("service %s: profiles %q, want %q", want.name, d.Profiles, want.profiles)
		}
		return nil // the rest is checked where it runs
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{want.name}, args...)...))
	}
	if off {
		fail("runs, but must not here (profiles %q)", s.Profiles)
	}
	if !slices.Equal(s.Profiles, want.profiles) {
		fail("profiles %q, want %q", s.Profiles, want.profiles)
	}

	if want.built() {
		if err := checkBuild(s, want); err != nil {
			fail("%v", err)
		}
	} else {
		repo, tag, ok := strings.Cut(s.Image, ":")
		if repo != want.image || !ok || tag == "" || tag == "latest" {
			fail("image %q, want %s pinned to a tag", s.Image, want.image)
		}
	}

	if want.probe != "" {
		switch hc := s.HealthCheck; {
		case hc == nil || hc.Disable || len(hc.Test) < 2:
			fail("has no health check")
		case !strings.Contains(strings.Join(hc.Test, " "), want.probe):
			fail("health check %q does not run %q", hc.Test, want.probe)
		}
	}

	for dep, cond := range want.after {
		got, ok := s.DependsOn[dep]
		switch {
		case !ok:
			fail("must start after %s with condition %s; depends_on lacks it", dep, cond)
		case got.Condition != cond:
			fail("must start after %s with condition %s, not %s", dep, cond, got.Condition)
		}
		if d, _ := lookup(dep); ok && len(d.profiles) > 0 && got.Required {
			fail("requires %s, which runs only with profile %q: say required: false", dep, d.profiles)
		}
	}

	for name, target := range want.volumes {
		if _, ok := p.Volumes[name]; !ok {
			fail("named volume %s is not declared under volumes", name)
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Source == name && v.Target == target
		}) {
			fail("volume %s is not mounted at %s", name, target)
		}
	}

	for _, st := range settings {
		if _, ok := s.Environment[st.env]; slices.Contains(st.in, want.name) && !ok {
			fail("environment lacks %s", st.env)
		}
	}
	if want.built() {
		if err := checkConfig(s, want); err != nil {
			fail("breachflow would refuse its settings: %v", err)
		}
	}
	return errors.Join(errs...)
}

// checkBuild checks that a breachflow service builds the repository's Dockerfile, runs the
// right role, and that its health check can run in that image.
func checkBuild(s types.ServiceConfig, want service) error {
	if s.Build == nil {
		return errors.New("has neither an image nor a build")
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return err
	}
	if filepath.Clean(s.Build.Context) != root {
		return fmt.Errorf("builds from %s, want the repository root %s", s.Build.Context, root)
	}
	dockerfile := s.Build.Dockerfile
	if !filepath.IsAbs(dockerfile) {
		dockerfile = filepath.Join(s.Build.Context, dockerfile)
	}
	entrypoint, err := dockerfileEntrypoint(dockerfile)
	if err != nil {
		return err
	}
	if len(entrypoint) != 1 {
		return fmt.Errorf("%s: ENTRYPOINT %q must be the breachflow binary alone, so command is its arguments", dockerfile, entrypoint)
	}
	if len(s.Command) < len(want.command) || !slices.Equal([]string(s.Command[:len(want.command)]), want.command) {
		return fmt.Errorf("command %q, want it to start with %q", s.Command, want.command)
	}
	// The runtime image is distroless: no shell, so health checks run the binary directly.
	if hc := s.HealthCheck; hc != nil && len(hc.Test) > 0 {
		if hc.Test[0] != "CMD" || len(hc.Test) < 2 || hc.Test[1] != entrypoint[0] {
			return fmt.Errorf("health check %q must be [\"CMD\", %q, …]: the image has no shell", hc.Test, entrypoint[0])
		}
	}
	return nil
}

// dockerfileEntrypoint returns the exec-form ENTRYPOINT of the Dockerfile's last stage.
func dockerfileEntrypoint(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var entrypoint []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENTRYPOINT "); ok {
			entrypoint = nil
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				return nil, fmt.Errorf("%s: ENTRYPOINT %s is not in exec form: %w", path, rest, err)
			}
		}
	}
	if entrypoint == nil {
		return nil, fmt.Errorf("%s has no ENTRYPOINT", path)
	}
	return entrypoint, nil
}

// checkConfig runs the service's environment through breachflow's own configuration
// checks, as the container would at start.
func checkConfig(s types.ServiceConfig, want service) error {
	getenv := func(k string) (string, bool) { return env(s, k) }
	cfg, err := config.NewLoader(pflag.NewFlagSet(want.name, pflag.ContinueOnError)).Load(getenv, nil)
	if err != nil {
		return err
	}
	return cfg.Require(want.requires...)
}

// checkHealthyDependencies checks that every service waited for as healthy has a health
// check; without one `docker compose up` fails. A dependency that is not running (its
// profile is off) and not required is not waited for.
func checkHealthyDependencies(p *types.Project) error {
	var errs []error
	for _, name := range p.ServiceNames() {
		for dep, d := range p.Services[name].DependsOn {
			if d.Condition != healthy {
				continue
			}
			if _, running := p.Services[dep]; !running && !d.Required {
				continue
			}
			if hc := p.Services[dep].HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
				errs = append(errs, fmt.Errorf("service %s waits for %s to be healthy, but %s has no health check", name, dep, dep))
			}
		}
	}
	return errors.Join(errs...)
}

// checkWiring checks that the addresses and credentials the services give each other agree:
// a breachflow service pointed at the compose PostgreSQL uses its user and password, one
// pointed at the compose Temporal uses the namespace that server creates, and so on. An
// address pointed outside the project (a managed database, SendGrid itself) is not checked.
func checkWiring(p *types.Project) error {
	var errs []error
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{name}, args...)...))
	}
	pg, temporal, sink, api := p.Services["postgres"], p.Services["temporal"], p.Services["mailsink"], p.Services["api"]
	_, haveSink := p.Services["mailsink"]
	_, haveAPI := p.Services["api"]

	pgUser, _ := env(pg, "POSTGRES_USER")
	pgPassword, _ := env(pg, "POSTGRES_PASSWORD")
	pgDB, _ := env(pg, "POSTGRES_DB")
	if v, _ := env(temporal, "POSTGRES_SEEDS"); v == "postgres" {
		if u, _ := env(temporal, "POSTGRES_USER"); u != pgUser {
			fail("temporal", "POSTGRES_USER %q, but postgres creates user %q", u, pgUser)
		}
		if pw, _ := env(temporal, "POSTGRES_PWD"); pw != pgPassword {
			fail("temporal", "POSTGRES_PWD differs from postgres's POSTGRES_PASSWORD")
		}
	}
	namespace, ok := env(temporal, "DEFAULT_NAMESPACE")
	if !ok || namespace == "" {
		namespace = "default" // what auto-setup creates when told nothing
	}
	sinkListen := flagValue(sink.Command, "--listen")
	apiListen, _ := env(api, "BREACHFLOW_LISTEN")

	// A missing service is checkService's to report; nothing here points at it.
	listeners := []struct {
		name, addr string
		present    bool
	}{{"mailsink", sinkListen, haveSink}, {"api", apiListen, haveAPI}}
	for _, l := range listeners {
		if !l.present {
			continue
		}
		if host, _, err := net.SplitHostPort(l.addr); err != nil || net.ParseIP(host).IsLoopback() || host == "localhost" {
			fail(l.name, "listens on %q: other containers and published ports cannot reach a loopback address", l.addr)
		} else if err := listensWherePointed(p.Services[l.name], l.addr); err != nil {
			fail(l.name, "%v", err)
		}
	}
	if haveSink && haveAPI {
		if err := pointsAt(flagValue(sink.Command, "--webhook-url"), "api", apiListen); err != nil {
			fail("mailsink", "--webhook-url: %v", err)
		}
	}
	if err := pointsAt("grpc://"+envValue(p.Services["temporal-ui"], "TEMPORAL_ADDRESS"), "temporal", ":7233"); err != nil {
		fail("temporal-ui", "TEMPORAL_ADDRESS: %v", err)
	}

	for _, want := range services {
		s, ok := p.Services[want.name]
		if !want.built() || !ok {
			continue
		}
		uses := func(setting string) bool { return slices.Contains(want.requires, setting) }
		if u, err := url.Parse(envValue(s, "DATABASE_URL")); uses("DATABASE_URL") && err == nil && u.Hostname() == "postgres" {
			pw, _ := u.User.Password()
			if u.User.Username() != pgUser || pw != pgPassword || strings.Trim(u.Path, "/") != pgDB || u.Port() != "5432" {
				fail(want.name, "DATABASE_URL does not use the user, password and database the postgres service creates")
			}
		}
		if addr := envValue(s, "TEMPORAL_ADDRESS"); uses("TEMPORAL_ADDRESS") && strings.HasPrefix(addr, "temporal:") {
			if err := pointsAt("grpc://"+addr, "temporal", ":7233"); err != nil {
				fail(want.name, "TEMPORAL_ADDRESS: %v", err)
			}
			if ns := envValue(s, "TEMPORAL_NAMESPACE"); ns != namespace {
				fail(want.name, "TEMPORAL_NAMESPACE %q, but the temporal service creates namespace %q", ns, namespace)
			}
		}
		if uses("SENDGRID_API_KEY") {
			apiURL := envValue(s, "SENDGRID_API_URL")
			if u, err := url.Parse(apiURL); err == nil && u.Hostname() == "mailsink" && !haveSink {
				fail(want.name, "SENDGRID_API_URL %s is the mail sink, which runs only with --profile dev", apiURL)
			}
			if haveSink {
				if err := pointsAt(apiURL, "mailsink", sinkListen); err != nil {
					fail(want.name, "SENDGRID_API_URL: %v", err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// pointsAt checks that rawURL, when it names host, uses the port that host listens on.
func pointsAt(rawURL, host, listen string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if u.Hostname() != host {
		return nil
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("%s listens on %q: %w", host, listen, err)
	}
	if u.Port() != port {
		return fmt.Errorf("%s uses port %q, but %s listens on %s", rawURL, u.Port(), host, port)
	}
	return nil
}

// listensWherePointed checks that the ports a service publishes and exposes, and the URL its
// health check probes, are the port it listens on.
func listensWherePointed(s types.ServiceConfig, listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listen, err)
	}
	var errs []error
	for _, p := range s.Ports {
		if fmt.Sprint(p.Target) != port {
			errs = append(errs, fmt.Errorf("publishes container port %d, but listens on %s", p.Target, listen))
		}
	}
	for _, e := range s.Expose {
		if e != port {
			errs = append(errs, fmt.Errorf("exposes port %s, but listens on %s", e, listen))
		}
	}
	if hc := s.HealthCheck; hc != nil {
		for _, arg := range hc.Test {
			if u, err := url.Parse(arg); err == nil && u.Host != "" && u.Port() != port {
				errs = append(errs, fmt.Errorf("health check probes %s, but the service listens on %s", arg, listen))
			}
		}
	}
	return errors.Join(errs...)
}

// checkPublished checks that the running services publish exactly the ports the scenario
// means to, and never one of internalPorts beyond the host's loopback.
func checkPublished(p *types.Project, want []published) error {
	var errs []error
	var got []published
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.NetworkMode == "host" {
			errs = append(errs, fmt.Errorf("service %s uses the host's network: every port it listens on is published", name))
		}
		for _, sp := range s.Ports {
			got = append(got, published{name, sp.HostIP, sp.Published, sp.Target, sp.Protocol})
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			errs = append(errs, fmt.Errorf("service %s publishes %s, which is not meant to be published", g.service, g))
		}
		if !isLoopback(g.hostIP) {
			for _, port := range internalPorts {
				if g.target == uint32(port) || inRange(g.port, port) {
					errs = append(errs, fmt.Errorf("service %s publishes port %d on %s: outside the host's loopback it must never be reachable",
						g.service, port, g))
				}
			}
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			errs = append(errs, fmt.Errorf("service %s does not publish %s", w.service, w))
		}
	}
	return errors.Join(errs...)
}

// isLoopback reports whether a published port's host address is the host's loopback; an
// empty one (every address) is not.
func isLoopback(hostIP string) bool {
	ip := net.ParseIP(strings.Trim(hostIP, "[]"))
	return ip != nil && ip.IsLoopback()
}

// inRange reports whether a published port or range ("8000-8100") includes port.
func inRange(published string, port int) bool {
	lo, hi, isRange := strings.Cut(published, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	return err1 == nil && err2 == nil && l <= port && port <= h
}

// checkNetworks checks that the services marked internal join internal networks only.
func checkNetworks(p *types.Project) error {
	var errs []error
	for _, want := range services {
		s, ok := p.Services[want.name]
		if !ok || !want.internal {
			continue
		}
		if s.NetworkMode != "" {
			errs = append(errs, fmt.Errorf("service %s: network_mode %q; want internal networks only", want.name, s.NetworkMode))
		}
		nets := slices.Sorted(func(yield func(string) bool) {
			for n := range s.Networks {
				if !yield(n) {
					return
				}
			}
		})
		if len(nets) == 0 {
			nets = []string{"default"}
		}
		for _, n := range nets {
			if !p.Networks[n].Internal {
				errs = append(errs, fmt.Errorf("service %s joins network %s, which is not internal: nothing outside the project may reach it", want.name, n))
			}
		}
	}
	return errors.Join(errs...)
}

// checkTemporalUI checks that the Temporal UI, which has no login, can only look.
func checkTemporalUI(p *types.Project) error {
	ui, ok := p.Services["temporal-ui"]
	if !ok {
		return nil
	}
	if v, _ := env(ui, "TEMPORAL_DISABLE_WRITE_ACTIONS"); v != "true" {
		return fmt.Errorf("service temporal-ui: TEMPORAL_DISABLE_WRITE_ACTIONS %q: the UI has no login, so it must be read-only (\"true\")", v)
	}
	return nil
}

// checkSink checks that a running mail sink takes mail only with the worker's key and signs
// its Event Webhook with the key the api verifies.
func checkSink(p *types.Project) error {
	s, ok := p.Services["mailsink"]
	if !ok {
		return nil
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("service mailsink: "+format, args...))
	}
	keys := strings.Split(flagValue(s.Command, "--api-key"), ",")
	keys = slices.DeleteFunc(keys, func(k string) bool { return strings.TrimSpace(k) == "" })
	if len(keys) == 0 {
		fail("no --api-key: it would accept mail with any bearer token")
	}
	if w, ok := p.Services["worker"]; ok {
		if u, err := url.Parse(envValue(w, "SENDGRID_API_URL")); err == nil && u.Hostname() == "mailsink" &&
			!slices.Contains(keys, envValue(w, "SENDGRID_API_KEY")) {
			fail("--api-key %q does not include the worker's SENDGRID_API_KEY: every send would be refused", keys)
		}
	}

	pem, _ := env(s, "BREACHFLOW_MAILSINK_PRIVATE_KEY")
	if pem == "" {
		fail("BREACHFLOW_MAILSINK_PRIVATE_KEY is empty: the sink would sign with a key of its own, which the api cannot verify")
		return errors.Join(errs...)
	}
	sk, err := sink.New(sink.Config{WebhookPrivateKeyPEM: pem}, zap.NewNop())
	if err != nil {
		fail("BREACHFLOW_MAILSINK_PRIVATE_KEY: the sink would not start: %v", err)
		return errors.Join(errs...)
	}
	pub := sk.PublicKey()
	if err := sk.Close(); err != nil {
		fail("%v", err)
	}
	if got := envValue(p.Services["api"], "SENDGRID_WEBHOOK_PUBLIC_KEY"); got != pub {
		fail("its signing key does not match the api's SENDGRID_WEBHOOK_PUBLIC_KEY: the api would refuse every event (make both with breachflow mailsink keygen)")
	}
	return errors.Join(errs...)
}

// upstreamRE finds a Caddyfile's reverse_proxy upstream.
var upstreamRE = regexp.MustCompile(`(?m)^\s*reverse_proxy\s+(?:(?:/\S*|\*)\s+)?(\S+)`)

// checkProxy checks the TLS in front of the api: Caddy proxying to the api, which then
// takes the client address from the header Caddy sets, or, without Caddy, the api serving
// TLS itself and trusting no forwarded-for header. Either way the public URL is https.
func checkProxy(p *types.Project) error {
	api, ok := p.Services["api"]
	if !ok {
		return nil
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	publicURL := envValue(api, "BREACHFLOW_PUBLIC_URL")
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "https" {
		fail("service api: BREACHFLOW_PUBLIC_URL %q: acknowledgement links and console cookies need https", publicURL)
	}
	trusted := envValue(api, "BREACHFLOW_TRUSTED_PROXY_HEADER")

	proxy, haveProxy := p.Services["proxy"]
	if haveProxy {
		if trusted == "" {
			fail("service api: BREACHFLOW_TRUSTED_PROXY_HEADER is empty behind the proxy: every client would have the proxy's address (one rate limit for all, the proxy in the audit log)")
		}
		domain := envValue(proxy, "BREACHFLOW_DOMAIN")
		if u != nil && domain != "" && u.Hostname() != domain {
			fail("service api: BREACHFLOW_PUBLIC_URL %q is not the domain the proxy serves, %q", publicURL, domain)
		}
		i := slices.IndexFunc(proxy.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/etc/caddy/Caddyfile" })
		if i < 0 {
			fail("service proxy: no Caddyfile mounted at /etc/caddy/Caddyfile")
		} else if err := checkCaddyfile(proxy.Volumes[i], envValue(api, "BREACHFLOW_LISTEN"), trusted); err != nil {
			fail("service proxy: %v", err)
		}
	}

	// An api published beyond the loopback has no proxy in front of it.
	if slices.ContainsFunc(api.Ports, func(sp types.ServicePortConfig) bool { return !isLoopback(sp.HostIP) }) {
		if trusted != "" {
			fail("service api: published directly, yet trusts %s: any client could set it and pass for another address", trusted)
		}
		if envValue(api, "BREACHFLOW_TLS_CERT") == "" || envValue(api, "BREACHFLOW_TLS_KEY") == "" {
			fail("service api: published directly without BREACHFLOW_TLS_CERT and BREACHFLOW_TLS_KEY: sessions and acknowledgement links would cross the network in clear")
		}
	}
	return errors.Join(errs...)
}

// checkCaddyfile checks the mounted Caddyfile: read-only, serving BREACHFLOW_DOMAIN,
// proxying to the api's port and setting the header the api trusts.
func checkCaddyfile(v types.ServiceVolumeConfig, apiListen, trusted string) error {
	if v.Type != types.VolumeTypeBind || !v.ReadOnly {
		return fmt.Errorf("Caddyfile %s: want a read-only bind mount", v.Source)
	}
	b, err := os.ReadFile(v.Source)
	if err != nil {
		return err
	}
	text := string(b)
	var errs []error
	if !strings.Contains(text, "{$BREACHFLOW_DOMAIN") {
		errs = append(errs, fmt.Errorf("%s does not serve {$BREACHFLOW_DOMAIN}", v.Source))
	}
	m := upstreamRE.FindAllStringSubmatch(text, -1)
	if len(m) != 1 {
		return errors.Join(append(errs, fmt.Errorf("%s: want one reverse_proxy to the api, found %d", v.Source, len(m)))...)
	}
	upstream := m[0][1]
	if !strings.Contains(upstream, "://") {
		upstream = "http://" + upstream
	}
	if u, err := url.Parse(upstream); err != nil || u.Hostname() != "api" {
		errs = append(errs, fmt.Errorf("%s: reverse_proxy %s, want the api", v.Source, m[0][1]))
	} else if err := pointsAt(upstream, "api", apiListen); err != nil {
		errs = append(errs, fmt.Errorf("%s: reverse_proxy: %v", v.Source, err))
	}
	// Caddy sets X-Forwarded-For itself; any other header the api trusts it must be told to set.
	if trusted != "" && !strings.EqualFold(trusted, "X-Forwarded-For") && !strings.Contains(text, "header_up "+trusted+" ") {
		errs = append(errs, fmt.Errorf("%s does not set %s, which the api trusts for the client address", v.Source, trusted))
	}
	return errors.Join(errs...)
}

// checkSecretsScoped checks that each secret reaches only the services that use it.
func checkSecretsScoped(p *types.Project) error {
	var errs []error
	for _, st := range settings {
		if !st.secret {
			continue
		}
		for _, name := range p.ServiceNames() {
			if _, ok := p.Services[name].Environment[st.env]; ok && !slices.Contains(st.in, name) {
				errs = append(errs, fmt.Errorf("service %s gets %s, which only %s use", name, st.env, strings.Join(st.in, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// env returns a service's resolved environment variable.
func env(s types.ServiceConfig, key string) (string, bool) {
	v, ok := s.Environment[key]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// envValue is env without the presence flag.
func envValue(s types.ServiceConfig, key string) string {
	v, _ := env(s, key)
	return v
}

// flagValue returns the argument after name in a command line, or "".
func flagValue(cmd types.ShellCommand, name string) string {
	for i, a := range cmd {
		if a == name && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// varRefs finds the variables a compose file (${NAME…}) or a Caddyfile ({$NAME…}) reads.
var varRefs = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)|\{\$([A-Z][A-Z0-9_]*)`)

// composeOwn are variables docker compose itself reads from .env.
var composeOwn = []string{"COMPOSE_PROFILES", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME"}

// checkEnvExample checks that the example .env documents (as NAME=… or # NAME=…) every
// variable the files read and nothing else, that it parses as compose reads .env, and that
// it holds no secret: every KEY, SECRET and PASSWORD is left empty.
func checkEnvExample(example string, files ...string) error {
	b, err := os.ReadFile(example)
	if err != nil {
		return err
	}
	if _, err := dotenv.GetEnvFromFile(types.Mapping{}, []string{example}); err != nil {
		return fmt.Errorf("%s does not parse as compose reads .env: %w", example, err)
	}
	var errs []error
	documented := map[string]bool{}
	line := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	for i, l := range strings.Split(string(b), "\n") {
		m := line.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		name, value := m[2], strings.Trim(m[3], `"'`)
		documented[name] = true
		if strings.Contains(name, "KEY") || strings.Contains(name, "SECRET") || strings.Contains(name, "PASSWORD") {
			if value != "" && name != "BREACHFLOW_TLS_KEY" { // a file name, not the key
				errs = append(errs, fmt.Errorf("%s:%d: %s has a value: an example holds no secret", example, i+1, name))
			}
		}
	}
	read := map[string]bool{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, m := range varRefs.FindAllStringSubmatch(string(text), -1) {
			name := m[1] + m[2]
			read[name] = true
			if !documented[name] {
				errs = append(errs, fmt.Errorf("%s reads %s, which %s does not document", f, name, example))
			}
		}
	}
	for name := range documented {
		if !read[name] && !slices.Contains(composeOwn, name) {
			errs = append(errs, fmt.Errorf("%s documents %s, which nothing reads", example, name))
		}
	}
	return errors.Join(errs...)
}

// checkGitIgnored checks, with git itself, that git in dir ignores .env (where the secrets
// go) and neither ignores .env.example nor tracks .env.
func checkGitIgnored(dir string) error {
	git := func(args ...string) error {
		return exec.Command("git", append([]string{"-C", dir}, args...)...).Run()
	}
	var errs []error
	if err := git("check-ignore", "-q", "--no-index", ".env"); err != nil {
		errs = append(errs, fmt.Errorf(".env is not ignored by git (%v): add it to .gitignore", err))
	}
	if err := git("check-ignore", "-q", "--no-index", ".env.example"); err == nil {
		errs = append(errs, errors.New(".env.example is ignored by git: it must be committed"))
	}
	if err := git("ls-files", "--error-unmatch", ".env"); err == nil {
		errs = append(errs, errors.New(".env is tracked by git: git rm --cached .env, and change every secret in it"))
	}
	return errors.Join(errs...)
}

// checkDockerfile checks that no COPY or ADD takes the whole build context (or .env) into a
// layer: .env, beside docker-compose.yml, holds every secret, and the build stage's layers
// stay in the builder's cache.
func checkDockerfile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var errs []error
	for i, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || (!strings.EqualFold(fields[0], "COPY") && !strings.EqualFold(fields[0], "ADD")) {
			continue
		}
		srcs := slices.DeleteFunc(slices.Clone(fields[1:len(fields)-1]), func(f string) bool { return strings.HasPrefix(f, "--") })
		for _, src := range srcs {
			if src == "." || src == "./" || strings.Contains(src, "*") || strings.HasPrefix(filepath.Base(src), ".env") {
				errs = append(errs, fmt.Errorf("%s:%d: %s %s copies the build context, .env with it; bind-mount it in RUN instead", path, i+1, fields[0], src))
			}
		}
	}
	return errors.Join(errs...)
}

func needGit(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if err := exec.Command("git", "-C", dir, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skipf("%s is not a git work tree", dir)
	}
}

func TestComposeFileValidates(t *testing.T) {
	p := load(t, "production")
	require.Equal(t, "breachflow", p.Name)
	require.NoError(t, validateFile(t.Context(), composeFile, nil))
}

func TestComposeServices(t *testing.T) {
	all, err := scenarios()
	require.NoError(t, err)
	for _, sc := range all {
		p := load(t, sc.name)
		for _, want := range services {
			t.Run(sc.name+"/"+want.name, func(t *testing.T) {
				require.NoError(t, checkService(p, want, slices.Contains(sc.off, want.name)))
			})
		}
	}
}

// TestComposePublishes pins what each scenario publishes on the host, port by port.
func TestComposePublishes(t *testing.T) {
	all, err := scenarios()
	require.NoError(t, err)
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			p := load(t, sc.name)
			var got []string
			for _, name := range p.ServiceNames() {
				for _, sp := range p.Services[name].Ports {
					got = append(got, published{name, sp.HostIP, sp.Published, sp.Target, sp.Protocol}.String()+" "+name)
				}
			}
			var want []string
			for _, w := range sc.ports {
				want = append(want, w.String()+" "+w.service)
			}
			require.ElementsMatch(t, want, got)
			require.NoError(t, checkPublished(p, sc.ports))
		})
	}
}

// TestComposeNeverPublishesInternals runs the port rule on every scenario's loaded project:
// none of Temporal, the sink, the UI, PostgreSQL or /metrics is published beyond loopback.
func TestComposeNeverPublishesInternals(t *testing.T) {
	all, err := scenarios()
	require.NoError(t, err)
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			p := load(t, sc.name)
			for _, name := range p.ServiceNames() {
				s := p.Services[name]
				require.NotEqual(t, "host", s.NetworkMode, name)
				for _, sp := range s.Ports {
					for _, port := range internalPorts {
						if sp.Target == uint32(port) || inRange(sp.Published, port) {
							require.True(t, isLoopback(sp.HostIP), "%s publishes %d on %q", name, port, sp.HostIP)
						}
					}
				}
			}
			for _, name := range []string{"postgres", "temporal"} {
				require.Empty(t, p.Services[name].Ports, "%s publishes a port", name)
				for n := range p.Services[name].Networks {
					require.True(t, p.Networks[n].Internal, "%s joins %s", name, n)
				}
			}
		})
	}
}

// TestComposeMailSinkOnlyInDev checks that the sink runs only with --profile dev, and then
// with the worker's key and the signing key the api verifies.
func TestComposeMailSinkOnlyInDev(t *testing.T) {
	prod := load(t, "production")
	require.NotContains(t, prod.Services, "mailsink")
	require.Equal(t, []string{"dev"}, prod.DisabledServices["mailsink"].Profiles)
	require.False(t, prod.Services["worker"].DependsOn["mailsink"].Required)

	dev := load(t, "dev")
	s := dev.Services["mailsink"]
	require.Equal(t, []string{"dev"}, s.Profiles)
	require.Equal(t, sendgridKey, flagValue(s.Command, "--api-key"))
	keys, err := devKeys()
	require.NoError(t, err)
	require.Equal(t, keys[0], envValue(s, "BREACHFLOW_MAILSINK_PRIVATE_KEY"))
	require.NoError(t, checkSink(dev))

	// Without the key pair in .env the sink must not start with a key of its own.
	bare, err := loadProject(t.Context(), []string{composeFile}, []string{"dev"},
		append(secretVars(), "SENDGRID_API_URL=http://mailsink:8025")...)
	require.NoError(t, err)
	require.ErrorContains(t, checkSink(bare), "BREACHFLOW_MAILSINK_PRIVATE_KEY: the sink would not start")
}

// TestComposeKeygenInDotEnv follows the documented steps: `breachflow mailsink keygen`
// appended to .env, read the way compose reads .env, gives a sink the api can verify.
func TestComposeKeygenInDotEnv(t *testing.T) {
	priv, pub, err := sink.GenerateKeyBase64()
	require.NoError(t, err)
	dotEnv := filepath.Join(t.TempDir(), ".env")
	var b strings.Builder
	for _, s := range secrets {
		fmt.Fprintf(&b, "%s=%s\n", s.env, s.value)
	}
	// .env.example's empty lines stay; keygen's, appended after them, win.
	b.WriteString("SENDGRID_API_URL=http://mailsink:8025\nBREACHFLOW_MAILSINK_PRIVATE_KEY=\nSENDGRID_WEBHOOK_PUBLIC_KEY=\n")
	fmt.Fprintf(&b, "BREACHFLOW_MAILSINK_PRIVATE_KEY=%s\nSENDGRID_WEBHOOK_PUBLIC_KEY=%s\n", priv, pub) // as keygen prints them
	require.NoError(t, os.WriteFile(dotEnv, []byte(b.String()), 0o600))

	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithWorkingDirectory(repoRoot), cli.WithEnv(nil),
		cli.WithEnvFiles(dotEnv), cli.WithDotEnv, cli.WithProfiles([]string{"dev"}), cli.WithResolvedPaths(true))
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err)
	require.Equal(t, priv, envValue(p.Services["mailsink"], "BREACHFLOW_MAILSINK_PRIVATE_KEY"))
	require.NoError(t, checkSink(p))
}

// TestComposeSecretsRequired checks that each secret has no default: loading without it
// fails and names it.
func TestComposeSecretsRequired(t *testing.T) {
	for _, s := range secrets {
		t.Run(s.env, func(t *testing.T) {
			vars := slices.DeleteFunc(secretVars(), func(v string) bool { return strings.HasPrefix(v, s.env+"=") })
			_, err := loadProject(t.Context(), []string{composeFile}, nil, vars...)
			require.ErrorContains(t, err, s.env)
			require.ErrorContains(t, err, "in .env")
			require.NoError(t, checkNoDefaults(composeFile, s.env))
		})
	}
}

func TestComposeEnvironmentDefaults(t *testing.T) {
	p := load(t, "production")
	// The sink's settings are read where it runs, with nothing set beyond the secrets.
	dev, err := loadProject(t.Context(), []string{composeFile}, []string{"dev"}, secretVars()...)
	require.NoError(t, err)
	for _, st := range settings {
		t.Run(st.env, func(t *testing.T) {
			for _, name := range st.in {
				s, ok := p.Services[name]
				if !ok {
					s = dev.Services[name]
				}
				got, ok := env(s, st.env)
				require.True(t, ok, "%s lacks %s", name, st.env)
				require.Equal(t, st.def, got, "%s %s", name, st.env)
			}
		})
	}
}

func TestComposeEnvironmentOverrides(t *testing.T) {
	for _, st := range settings {
		t.Run(st.env, func(t *testing.T) {
			p := load(t, "production", append([]string{st.env + "=" + st.set}, st.also...)...)
			for _, name := range st.in {
				if s, ok := p.Services[name]; ok {
					require.Equal(t, st.set, envValue(s, st.env), "%s %s", name, st.env)
				}
			}
			all, err := scenarios()
			require.NoError(t, err)
			require.NoError(t, validate(p, all[0]), "the file must stay valid when %s is set", st.env)
		})
	}
}

// TestComposeSettingsAgree sets the variables that more than one service reads and checks
// that every reader follows.
func TestComposeSettingsAgree(t *testing.T) {
	tests := []struct {
		env  []string
		want map[string]map[string]string // service → variable → value
	}{
		{
			env: []string{"TEMPORAL_NAMESPACE=prod"},
			want: map[string]map[string]string{
				"temporal": {"DEFAULT_NAMESPACE": "prod"},
				"worker":   {"TEMPORAL_NAMESPACE": "prod"},
				"api":      {"TEMPORAL_NAMESPACE": "prod"},
			},
		},
		{
			env: []string{"POSTGRES_USER=notices", "POSTGRES_PASSWORD=s3cret"},
			want: map[string]map[string]string{
				"postgres": {"POSTGRES_USER": "notices", "POSTGRES_PASSWORD": "s3cret"},
				"temporal": {"POSTGRES_USER": "notices", "POSTGRES_PWD": "s3cret"},
				"migrate":  {"DATABASE_URL": "postgres://notices:s3cret@postgres:5432/breachflow?sslmode=disable"},
				"worker":   {"DATABASE_URL": "postgres://notices:s3cret@postgres:5432/breachflow?sslmode=disable"},
				"api":      {"DATABASE_URL": "postgres://notices:s3cret@postgres:5432/breachflow?sslmode=disable"},
			},
		},
		{
			env: []string{"BREACHFLOW_DOMAIN=notices.cloud.example"},
			want: map[string]map[string]string{
				"proxy":  {"BREACHFLOW_DOMAIN": "notices.cloud.example"},
				"worker": {"BREACHFLOW_PUBLIC_URL": "https://notices.cloud.example"},
				"api":    {"BREACHFLOW_PUBLIC_URL": "https://notices.cloud.example"},
			},
		},
	}
	all, err := scenarios()
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, ","), func(t *testing.T) {
			p := load(t, "production", tt.env...)
			for svc, vars := range tt.want {
				for k, v := range vars {
					got, _ := env(p.Services[svc], k)
					require.Equal(t, v, got, "%s %s", svc, k)
				}
			}
			require.NoError(t, validate(p, all[0]))
		})
	}
}

func TestDockerfileKeepsContextOut(t *testing.T) {
	require.NoError(t, checkDockerfile(filepath.Join(repoRoot, "Dockerfile")))
	for _, bad := range []string{"COPY . .", "COPY --chown=0:0 ./ /src/", "ADD *.go /src/", "COPY .env /src/"} {
		file := filepath.Join(t.TempDir(), "Dockerfile")
		require.NoError(t, os.WriteFile(file, []byte("FROM golang:1.26 AS build\n"+bad+"\n"), 0o600))
		require.ErrorContains(t, checkDockerfile(file), "copies the build context", bad)
	}
}

func TestEnvExampleDocumentsEverySetting(t *testing.T) {
	require.NoError(t, checkEnvExample(envExample, composeFile, apiTLSFile, caddyfile))
}

// TestEnvExampleFilledIn copies .env.example to .env, fills in only the secrets (and, for
// dev, the keygen output and the sink's URL), and loads it as compose would.
func TestEnvExampleFilledIn(t *testing.T) {
	example, err := os.ReadFile(envExample)
	require.NoError(t, err)
	priv, pub, err := sink.GenerateKey()
	require.NoError(t, err)
	fill := map[string]string{}
	for _, s := range secrets {
		fill[s.env] = s.value
	}
	devFill := map[string]string{"SENDGRID_API_URL": "http://mailsink:8025",
		"BREACHFLOW_MAILSINK_PRIVATE_KEY": strconv.Quote(priv), "SENDGRID_WEBHOOK_PUBLIC_KEY": pub}
	all, err := scenarios()
	require.NoError(t, err)
	for _, tc := range []struct {
		sc   scenario
		fill []map[string]string
	}{{all[0], []map[string]string{fill}}, {all[1], []map[string]string{fill, devFill}}} {
		t.Run(tc.sc.name, func(t *testing.T) {
			lines := strings.Split(string(example), "\n")
			for i, l := range lines {
				name, _, ok := strings.Cut(strings.TrimLeft(l, "# "), "=")
				for _, f := range tc.fill {
					if v, set := f[name]; ok && set {
						lines[i] = name + "=" + v
					}
				}
			}
			dotEnv := filepath.Join(t.TempDir(), ".env")
			require.NoError(t, os.WriteFile(dotEnv, []byte(strings.Join(lines, "\n")), 0o600))
			opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithWorkingDirectory(repoRoot), cli.WithEnv(nil),
				cli.WithEnvFiles(dotEnv), cli.WithDotEnv, cli.WithProfiles(tc.sc.profiles), cli.WithResolvedPaths(true))
			require.NoError(t, err)
			p, err := opts.LoadProject(t.Context())
			require.NoError(t, err)
			require.NoError(t, validate(p, tc.sc))
		})
	}
}

func TestEnvExampleRejects(t *testing.T) {
	original, err := os.ReadFile(envExample)
	require.NoError(t, err)
	tests := []struct {
		name    string
		edit    func(string) string
		wantErr string
	}{
		{"a setting undocumented", func(s string) string {
			return regexp.MustCompile(`(?m)^#?\s*BREACHFLOW_METRICS_LISTEN=.*\n`).ReplaceAllString(s, "")
		}, "reads BREACHFLOW_METRICS_LISTEN, which"},
		{"a real secret", func(s string) string {
			return regexp.MustCompile(`(?m)^POSTGRES_PASSWORD=.*$`).ReplaceAllString(s, "POSTGRES_PASSWORD=hunter2hunter2")
		}, "POSTGRES_PASSWORD has a value"},
		{"a setting nothing reads", func(s string) string { return s + "\nBREACHFLOW_OLD_SETTING=1\n" },
			"documents BREACHFLOW_OLD_SETTING, which nothing reads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edited := tt.edit(string(original))
			require.NotEqual(t, string(original), edited, "the edit must change something")
			file := filepath.Join(t.TempDir(), ".env.example")
			require.NoError(t, os.WriteFile(file, []byte(edited), 0o600))
			require.ErrorContains(t, checkEnvExample(file, composeFile, apiTLSFile, caddyfile), tt.wantErr)
		})
	}
}

func TestEnvFileIgnoredByGit(t *testing.T) {
	needGit(t, repoRoot)
	require.NoError(t, checkGitIgnored(repoRoot))
}

// TestGitIgnoreRejects proves checkGitIgnored can fail, on .gitignore files of its own.
func TestGitIgnoreRejects(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	tests := []struct {
		name, gitignore, wantErr string
	}{
		{"ours", "", ""},
		{".env missing", "/bin/\n*.test\n", ".env is not ignored"},
		{"everything like .env", ".env*\n", ".env.example is ignored"},
		{"ignored then unignored", ".env\n!.env\n", ".env is not ignored"},
	}
	ours, err := os.ReadFile(filepath.Join(repoRoot, ".gitignore"))
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, exec.Command("git", "init", "-q", dir).Run())
			content := tt.gitignore
			if tt.name == "ours" {
				content = string(ours)
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(content), 0o600))
			err := checkGitIgnored(dir)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestValidateRejects proves the checks can fail: each mutation breaks the compose file the
// way an edit could, and validateFile must say so.
func TestValidateRejects(t *testing.T) {
	original, err := os.ReadFile(composeFile)
	require.NoError(t, err)

	// Each text mutation must match exactly once, or it would test nothing.
	replace := func(old, with string) func(t *testing.T, yaml string) string {
		return func(t *testing.T, yaml string) string {
			require.Equal(t, 1, strings.Count(yaml, old), "mutation target %q", old)
			return strings.Replace(yaml, old, with, 1)
		}
	}
	// replaceAll replaces every match, of which there must be several.
	replaceAll := func(old, with string) func(t *testing.T, yaml string) string {
		return func(t *testing.T, yaml string) string {
			require.Greater(t, strings.Count(yaml, old), 1, "mutation target %q", old)
			return strings.ReplaceAll(yaml, old, with)
		}
	}
	// cut removes the text from the line starting with from up to the one starting with to.
	cut := func(from, to string) func(t *testing.T, yaml string) string {
		return func(t *testing.T, yaml string) string {
			require.Equal(t, 1, strings.Count(yaml, from), "mutation target %q", from)
			i := strings.Index(yaml, from)
			j := strings.Index(yaml[i:], to)
			require.Positive(t, j, "mutation end %q", to)
			return yaml[:i] + yaml[i+j:]
		}
	}
	editService := func(name string, edit func(*types.ServiceConfig)) func(*types.Project) {
		return func(p *types.Project) {
			if s, ok := p.Services[name]; ok {
				edit(&s)
				p.Services[name] = s
			}
		}
	}
	// A Caddyfile that proxies to a port the api does not listen on.
	wrongCaddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	caddy, err := os.ReadFile(caddyfile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(wrongCaddyfile, []byte(strings.Replace(string(caddy), "reverse_proxy api:8080", "reverse_proxy api:9000", 1)), 0o600))

	const sinkKeyArg = ",\n      " + `"--api-key", "${SENDGRID_API_KEY:?set SENDGRID_API_KEY in .env}"`
	const pgRequired = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"

	tests := []struct {
		name    string
		yaml    func(t *testing.T, yaml string) string // edits the file's text before loading
		project func(p *types.Project)                 // edits each loaded project
		wantErr string
	}{
		{name: "service removed", project: func(p *types.Project) { delete(p.Services, "mailsink") },
			wantErr: "dev: service mailsink is missing"},
		{name: "UI removed", yaml: cut("  temporal-ui:\n", "  migrate:\n"),
			wantErr: "service temporal-ui is missing"},
		{name: "postgres health check removed", yaml: cut("    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready", "  temporal:\n"),
			wantErr: "service postgres: has no health check"},
		{name: "temporal health check disabled",
			project: editService("temporal", func(s *types.ServiceConfig) { s.HealthCheck.Disable = true }),
			wantErr: "service temporal: has no health check"},
		{name: "api health check removed", project: editService("api", func(s *types.ServiceConfig) { s.HealthCheck = nil }),
			wantErr: "service api: has no health check"},
		{name: "health check through a shell", yaml: replace(`test: ["CMD", "/usr/local/bin/breachflow", "probe", "http://127.0.0.1:8080/readyz"]`,
			`test: ["CMD-SHELL", "/usr/local/bin/breachflow probe http://127.0.0.1:8080/readyz"]`),
			wantErr: "the image has no shell"},
		{name: "worker no longer waits for the mail sink", yaml: replace("      mailsink:\n        condition: service_healthy\n        required: false\n", ""),
			wantErr: "dev: service worker: must start after mailsink"},
		{name: "worker requires the sink that production lacks", yaml: replace("        condition: service_healthy\n        required: false\n",
			"        condition: service_healthy\n"),
			wantErr: `production: service "worker" depends on undefined service "mailsink"`},
		{name: "api starts before migrations finish",
			project: editService("api", func(s *types.ServiceConfig) { delete(s.DependsOn, "migrate") }),
			wantErr: "service api: must start after migrate"},
		{name: "worker only waits for migrate to start",
			project: editService("worker", func(s *types.ServiceConfig) {
				s.DependsOn["migrate"] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
			}),
			wantErr: "service worker: must start after migrate with condition service_completed_successfully"},
		{name: "temporal no longer waits for postgres",
			project: editService("temporal", func(s *types.ServiceConfig) { delete(s.DependsOn, "postgres") }),
			wantErr: "service temporal: must start after postgres"},
		{name: "proxy starts before the api is healthy",
			project: editService("proxy", func(s *types.ServiceConfig) { delete(s.DependsOn, "api") }),
			wantErr: "service proxy: must start after api"},
		{name: "UI port moved", yaml: replace(`"127.0.0.1:8088:8080"`, `"127.0.0.1:8089:8080"`),
			wantErr: "service temporal-ui does not publish 127.0.0.1:8088→8080/tcp"},
		{name: "data volume unmounted", yaml: replace("    volumes:\n      - pgdata:/var/lib/postgresql/data\n", ""),
			wantErr: "volume pgdata is not mounted"},
		{name: "image unpinned", yaml: replace("image: postgres:15", "image: postgres"),
			wantErr: "service postgres: image"},
		{name: "proxy image unpinned", yaml: replace("image: caddy:2", "image: caddy:latest"),
			wantErr: "service proxy: image"},
		{name: "api built elsewhere", yaml: replace("  api:\n    build: .", "  api:\n    build: ./cmd"),
			wantErr: "service api: builds from"},
		{name: "worker runs the API", yaml: replace(`command: ["worker"]`, `command: ["serve"]`),
			wantErr: "service worker: command"},
		{name: "setting dropped", yaml: replace("  TEMPORAL_ADDRESS: ${TEMPORAL_ADDRESS:-temporal:7233}\n", ""),
			wantErr: "environment lacks TEMPORAL_ADDRESS"},
		{name: "setting breachflow refuses", yaml: replace("${BREACHFLOW_LOG_LEVEL:-info}", "${BREACHFLOW_LOG_LEVEL:-loud}"),
			wantErr: "breachflow would refuse its settings"},
		{name: "api without session keys", yaml: replace("      BREACHFLOW_SESSION_KEYS: ${BREACHFLOW_SESSION_KEYS:?set BREACHFLOW_SESSION_KEYS in .env}\n", ""),
			wantErr: "BREACHFLOW_SESSION_KEYS is required"},
		{name: "api listens on loopback only", yaml: replace("BREACHFLOW_LISTEN: 0.0.0.0:8080", "BREACHFLOW_LISTEN: 127.0.0.1:8080"),
			wantErr: "service api: listens on \"127.0.0.1:8080\": other containers"},
		{name: "api listens where nothing points", yaml: replace("BREACHFLOW_LISTEN: 0.0.0.0:8080", "BREACHFLOW_LISTEN: 0.0.0.0:8081"),
			wantErr: "health check probes http://127.0.0.1:8080/readyz, but the service listens on 0.0.0.0:8081"},
		{name: "mail sink on another port", yaml: replace(`"--listen", "0.0.0.0:8025"`, `"--listen", "0.0.0.0:9025"`),
			wantErr: "SENDGRID_API_URL"},
		{name: "namespace the server does not create", yaml: replace("TEMPORAL_NAMESPACE: ${TEMPORAL_NAMESPACE:-default}", "TEMPORAL_NAMESPACE: prod"),
			wantErr: "but the temporal service creates namespace"},
		{name: "password only postgres knows", yaml: replace("POSTGRES_PASSWORD: "+pgRequired, "POSTGRES_PASSWORD: other"),
			wantErr: "DATABASE_URL does not use the user, password and database"},

		// Nothing published that should not be.
		{name: "temporal published", yaml: replace("    # Never published", "    ports:\n      - \"7233:7233\"\n    # Never published"),
			wantErr: "service temporal publishes port 7233 on *:7233→7233/tcp"},
		{name: "temporal published on loopback", yaml: replace("    # Never published", "    ports:\n      - \"127.0.0.1:7233:7233\"\n    # Never published"),
			wantErr: "service temporal publishes 127.0.0.1:7233→7233/tcp, which is not meant to be published"},
		{name: "temporal on another host port", yaml: replace("    # Never published", "    ports:\n      - \"17233:7233\"\n    # Never published"),
			wantErr: "service temporal publishes port 7233 on *:17233→7233/tcp"},
		{name: "temporal on the host's network",
			project: editService("temporal", func(s *types.ServiceConfig) { s.NetworkMode, s.Networks = "host", nil }),
			wantErr: "service temporal uses the host's network"},
		{name: "postgres published", yaml: replace("    networks: [backend]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready",
			"    ports:\n      - \"5432:5432\"\n    networks: [backend]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready"),
			wantErr: "service postgres publishes port 5432"},
		{name: "postgres reachable from the edge network", yaml: replace("    networks: [backend]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready",
			"    networks: [backend, edge]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready"),
			wantErr: "service postgres joins network edge, which is not internal"},
		{name: "backend network no longer internal", yaml: replace("  backend:\n    internal: true\n", "  backend: {}\n"),
			wantErr: "service temporal joins network backend, which is not internal"},
		{name: "mail sink on every address", yaml: replace(`"127.0.0.1:8025:8025"`, `"8025:8025"`),
			wantErr: "service mailsink publishes port 8025 on *:8025→8025/tcp"},
		{name: "mail sink on 0.0.0.0", yaml: replace(`"127.0.0.1:8025:8025"`, `"0.0.0.0:8025:8025"`),
			wantErr: "service mailsink publishes port 8025 on 0.0.0.0:8025→8025/tcp"},
		{name: "UI on every address", yaml: replace(`"127.0.0.1:8088:8080"`, `"8088:8080"`),
			wantErr: "service temporal-ui publishes port 8088 on *:8088→8080/tcp"},
		{name: "UI on 0.0.0.0", yaml: replace(`"127.0.0.1:8088:8080"`, `"0.0.0.0:8088:8080"`),
			wantErr: "service temporal-ui publishes port 8088 on 0.0.0.0:8088→8080/tcp"},
		{name: "UI may act", yaml: replace(`TEMPORAL_DISABLE_WRITE_ACTIONS: "true"`, `TEMPORAL_DISABLE_WRITE_ACTIONS: "false"`),
			wantErr: "TEMPORAL_DISABLE_WRITE_ACTIONS \"false\""},
		{name: "UI read-only setting dropped", yaml: replace(`      TEMPORAL_DISABLE_WRITE_ACTIONS: "true"`+"\n", ""),
			wantErr: "the UI has no login, so it must be read-only"},
		{name: "metrics published", yaml: replace(`    expose: ["8080"]`, "    expose: [\"8080\"]\n    ports:\n      - \"9090:9090\""),
			wantErr: "service api publishes port 9090 on *:9090→9090/tcp"},
		{name: "metrics published on a range", yaml: replace(`    expose: ["8080"]`, "    expose: [\"8080\"]\n    ports:\n      - \"9000-9100:9090\""),
			wantErr: "service api publishes port 9090"},
		{name: "api published beside the proxy", yaml: replace(`    expose: ["8080"]`, "    expose: [\"8080\"]\n    ports:\n      - \"8080:8080\""),
			wantErr: "service api: published directly, yet trusts X-Forwarded-For"},
		{name: "proxy on another port", yaml: replace(`      - "443:443"`, `      - "8443:443"`),
			wantErr: "service proxy does not publish *:443→443/tcp"},

		// The mail sink: dev only, and never without its keys.
		{name: "mail sink profile removed", yaml: replace(`    profiles: ["dev"]`+"\n", ""),
			wantErr: "production: service mailsink: runs, but must not here"},
		{name: "mail sink in another profile", yaml: replace(`profiles: ["dev"]`, `profiles: ["dev", "debug"]`),
			wantErr: `service mailsink: profiles ["dev" "debug"], want ["dev"]`},
		{name: "mail sink takes any key", yaml: replace(sinkKeyArg, ""),
			wantErr: "no --api-key: it would accept mail with any bearer token"},
		{name: "mail sink takes another key", yaml: replace(sinkKeyArg, `, "--api-key", "SG.other"`),
			wantErr: "does not include the worker's SENDGRID_API_KEY"},
		{name: "mail sink signs with a key of its own", yaml: replace(`      BREACHFLOW_MAILSINK_PRIVATE_KEY: "${BREACHFLOW_MAILSINK_PRIVATE_KEY:-unset: put the output of breachflow mailsink keygen in .env}"`+"\n", ""),
			wantErr: "BREACHFLOW_MAILSINK_PRIVATE_KEY is empty"},
		{name: "worker mails the sink in production", yaml: replace("${SENDGRID_API_URL:-https://api.sendgrid.com}", "${SENDGRID_API_URL:-http://mailsink:8025}"),
			wantErr: "production: service worker: SENDGRID_API_URL http://mailsink:8025 is the mail sink, which runs only with --profile dev"},

		// Secrets: from .env, no default, only where used.
		{name: "a default postgres password", yaml: replaceAll(pgRequired, "${POSTGRES_PASSWORD:-breachflow}"),
			wantErr: "loads without POSTGRES_PASSWORD: it must have no default"},
		{name: "a default postgres password in one place", yaml: replace(":"+pgRequired+"@postgres", ":${POSTGRES_PASSWORD:-breachflow}@postgres"),
			wantErr: "${POSTGRES_PASSWORD:-…} gives POSTGRES_PASSWORD a default"},
		{name: "postgres password may be empty", yaml: replaceAll(pgRequired, "${POSTGRES_PASSWORD}"),
			wantErr: "loads without POSTGRES_PASSWORD"},
		{name: "audit signing key optional", yaml: replace("at each incident close.\n      BREACHFLOW_AUDIT_SIGNING_KEY: ${BREACHFLOW_AUDIT_SIGNING_KEY:?set BREACHFLOW_AUDIT_SIGNING_KEY in .env}",
			"at each incident close.\n      BREACHFLOW_AUDIT_SIGNING_KEY: ${BREACHFLOW_AUDIT_SIGNING_KEY:-}"),
			wantErr: "gives BREACHFLOW_AUDIT_SIGNING_KEY a default or lets it be empty"},
		{name: "default session keys", yaml: replace("${BREACHFLOW_SESSION_KEYS:?set BREACHFLOW_SESSION_KEYS in .env}",
			"${BREACHFLOW_SESSION_KEYS:-k1:"+strings.Repeat("x", 32)+"}"),
			wantErr: "loads without BREACHFLOW_SESSION_KEYS"},
		{name: "SendGrid key given to the api", yaml: replace("      BREACHFLOW_LISTEN: 0.0.0.0:8080\n",
			"      BREACHFLOW_LISTEN: 0.0.0.0:8080\n      SENDGRID_API_KEY: ${SENDGRID_API_KEY:?set SENDGRID_API_KEY in .env}\n"),
			wantErr: "service api gets SENDGRID_API_KEY, which only worker use"},
		{name: "session keys given to the worker", project: editService("worker", func(s *types.ServiceConfig) {
			s.Environment["BREACHFLOW_SESSION_KEYS"] = &sessionKeys
		}),
			wantErr: "service worker gets BREACHFLOW_SESSION_KEYS"},

		// TLS: through the proxy, which the api trusts for the client address.
		{name: "proxy removed", yaml: cut("  proxy:\n", "networks:\n"),
			wantErr: "service proxy is missing"},
		{name: "api does not trust the proxy", yaml: replace("      BREACHFLOW_TRUSTED_PROXY_HEADER: X-Forwarded-For\n", ""),
			wantErr: "BREACHFLOW_TRUSTED_PROXY_HEADER is empty behind the proxy"},
		{name: "api trusts a header the proxy does not set", yaml: replace("BREACHFLOW_TRUSTED_PROXY_HEADER: X-Forwarded-For", "BREACHFLOW_TRUSTED_PROXY_HEADER: X-Real-IP"),
			wantErr: "does not set X-Real-IP"},
		{name: "proxy to the wrong port", project: editService("proxy", func(s *types.ServiceConfig) {
			for i, v := range s.Volumes {
				if v.Target == "/etc/caddy/Caddyfile" {
					s.Volumes[i].Source = wrongCaddyfile
				}
			}
		}),
			wantErr: "reverse_proxy: http://api:9000 uses port \"9000\", but api listens on 8080"},
		{name: "Caddyfile writable", yaml: replace("./deploy/Caddyfile:/etc/caddy/Caddyfile:ro", "./deploy/Caddyfile:/etc/caddy/Caddyfile"),
			wantErr: "want a read-only bind mount"},
		{name: "public URL in clear", yaml: replace("${BREACHFLOW_PUBLIC_URL:-https://${BREACHFLOW_DOMAIN:-localhost}}", "${BREACHFLOW_PUBLIC_URL:-http://${BREACHFLOW_DOMAIN:-localhost}}"),
			wantErr: "acknowledgement links and console cookies need https"},
		{name: "public URL another host than the proxy's", yaml: replace("${BREACHFLOW_PUBLIC_URL:-https://${BREACHFLOW_DOMAIN:-localhost}}", "${BREACHFLOW_PUBLIC_URL:-https://notices.example}"),
			wantErr: "is not the domain the proxy serves"},
		{name: "api TLS without its certificate", project: editService("api", func(s *types.ServiceConfig) {
			delete(s.Environment, "BREACHFLOW_TLS_CERT")
		}),
			wantErr: "api-tls: service api: published directly without BREACHFLOW_TLS_CERT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := string(original)
			if tt.yaml != nil {
				yaml = tt.yaml(t, yaml)
			}
			file := filepath.Join(t.TempDir(), "docker-compose.yml")
			require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
			err := validateFile(t.Context(), file, tt.project)
			require.ErrorContains(t, err, tt.wantErr)
			t.Log(err)
		})
	}
}

// TestComposeHealthChecksEveryLongRunningService: in every setup, each service that keeps
// running (all but the one-shot migrate) has a health check, so `docker compose ps` and
// depends_on can tell it is up.
func TestComposeHealthChecksEveryLongRunningService(t *testing.T) {
	all, err := scenarios()
	require.NoError(t, err)
	for _, sc := range all {
		p := load(t, sc.name)
		for name, svc := range p.Services {
			if name == "migrate" {
				continue
			}
			require.NotNil(t, svc.HealthCheck, "%s: %s has no health check", sc.name, name)
			require.False(t, svc.HealthCheck.Disable, "%s: %s", sc.name, name)
			require.NotEmpty(t, svc.HealthCheck.Test, "%s: %s", sc.name, name)
		}
	}
}
