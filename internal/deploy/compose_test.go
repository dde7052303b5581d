package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/config"
)

// repoRoot holds docker-compose.yml and the Dockerfile, relative to this package.
const repoRoot = "../.."

const (
	healthy   = types.ServiceConditionHealthy
	completed = types.ServiceConditionCompletedSuccessfully
)

// port is one published port: host side and container side.
type port struct {
	published string
	target    uint32
}

// service is what docker-compose.yml must say about one service.
type service struct {
	name     string
	image    string            // image repository, pinned by tag; empty: built from the repository's Dockerfile
	command  []string          // leading arguments of breachflow's command line
	requires []string          // settings the breachflow role refuses to start without
	ports    []port            // published ports
	probe    string            // text the health check must contain; empty: no health check required
	after    map[string]string // dependency → condition
	volumes  map[string]string // named volume → mount point
}

func (s service) built() bool { return s.image == "" }

var services = []service{
	{name: "postgres", image: "postgres", probe: "pg_isready",
		volumes: map[string]string{"pgdata": "/var/lib/postgresql/data"}},
	{name: "temporal", image: "temporalio/auto-setup", ports: []port{{"7233", 7233}},
		// tctl is past its end of support; the image's own setup script uses the temporal CLI.
		probe: "temporal operator cluster health",
		after: map[string]string{"postgres": healthy}},
	{name: "temporal-ui", image: "temporalio/ui", ports: []port{{"8088", 8080}},
		after: map[string]string{"temporal": healthy}},
	{name: "migrate", command: []string{"migrate"}, requires: []string{"DATABASE_URL"},
		after: map[string]string{"postgres": healthy}},
	{name: "mailsink", command: []string{"mailsink"}, ports: []port{{"8025", 8025}}, probe: "/sink/messages"},
	{name: "worker", command: []string{"worker"}, requires: []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "SENDGRID_API_KEY"},
		after: map[string]string{"migrate": completed, "temporal": healthy, "mailsink": healthy}},
	{name: "api", command: []string{"serve"}, requires: []string{"DATABASE_URL", "TEMPORAL_ADDRESS"},
		ports: []port{{"8080", 8080}}, probe: "/readyz",
		after: map[string]string{"migrate": completed, "temporal": healthy}},
}

// settings are the variables every breachflow service takes from the caller's environment,
// with the value each gets when the caller sets nothing and one a caller might set.
var settings = []struct{ env, def, set string }{
	{"DATABASE_URL", "postgres://breachflow:breachflow@postgres:5432/breachflow?sslmode=disable",
		"postgres://notices:pw@db.internal:5432/notices?sslmode=require"},
	{"TEMPORAL_ADDRESS", "temporal:7233", "temporal.internal:7233"},
	{"TEMPORAL_NAMESPACE", "default", "prod"},
	{"SENDGRID_API_KEY", "SG.compose-sink-key", "SG.live-key"},
	{"SENDGRID_API_URL", "http://mailsink:8025", "https://api.sendgrid.com"},
	{"SENDGRID_WEBHOOK_PUBLIC_KEY", "", "webhook-public-key"},
	{"BREACHFLOW_MAIL_FROM", "security-notices@breachflow.example", "notices@cloud.example"},
	{"BREACHFLOW_PUBLIC_URL", "http://localhost:8080", "https://notices.cloud.example"},
	{"BREACHFLOW_LOG_LEVEL", "info", "debug"},
}

// loadProject loads a compose file with the Compose specification's own loader, as
// `docker compose config` would, interpolating only the variables in vars (KEY=value): the
// caller's shell must not change the outcome, and CI sets DATABASE_URL for other tests.
func loadProject(ctx context.Context, file string, vars ...string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(repoRoot),
		cli.WithEnv(vars),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

func load(t *testing.T, vars ...string) *types.Project {
	t.Helper()
	p, err := loadProject(t.Context(), filepath.Join(repoRoot, "docker-compose.yml"), vars...)
	require.NoError(t, err)
	return p
}

// validate reports every way the project differs from what breachflow needs to run.
func validate(p *types.Project) error {
	var errs []error
	for _, want := range services {
		errs = append(errs, checkService(p, want))
	}
	errs = append(errs, checkHealthyDependencies(p), checkWiring(p))
	return errors.Join(errs...)
}

// checkService compares one service with its expectation.
func checkService(p *types.Project, want service) error {
	s, ok := p.Services[want.name]
	if !ok {
		return fmt.Errorf("service %s is missing", want.name)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: "+format, append([]any{want.name}, args...)...))
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

	for _, wp := range want.ports {
		if !slices.ContainsFunc(s.Ports, func(sp types.ServicePortConfig) bool {
			return sp.Published == wp.published && sp.Target == wp.target
		}) {
			fail("port %s→%d is not published", wp.published, wp.target)
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
		switch got, ok := s.DependsOn[dep]; {
		case !ok:
			fail("must start after %s with condition %s; depends_on lacks it", dep, cond)
		case got.Condition != cond:
			fail("must start after %s with condition %s, not %s", dep, cond, got.Condition)
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

	if want.built() {
		for _, st := range settings {
			if _, ok := s.Environment[st.env]; !ok {
				fail("environment lacks %s", st.env)
			}
		}
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
// check; without one `docker compose up` fails.
func checkHealthyDependencies(p *types.Project) error {
	var errs []error
	for _, name := range p.ServiceNames() {
		for dep, d := range p.Services[name].DependsOn {
			if d.Condition != healthy {
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
		} else if err := listensOnPublished(p.Services[l.name], l.addr); err != nil {
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
		if uses("SENDGRID_API_KEY") && haveSink {
			if err := pointsAt(envValue(s, "SENDGRID_API_URL"), "mailsink", sinkListen); err != nil {
				fail(want.name, "SENDGRID_API_URL: %v", err)
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

// listensOnPublished checks that a service listens on the container port it publishes.
func listensOnPublished(s types.ServiceConfig, listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listen, err)
	}
	for _, p := range s.Ports {
		if fmt.Sprint(p.Target) == port {
			return nil
		}
	}
	return fmt.Errorf("listens on %s, which no published port targets", listen)
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

func TestComposeFileValidates(t *testing.T) {
	p := load(t)
	require.Equal(t, "breachflow", p.Name)
	require.NoError(t, validate(p))
}

func TestComposeServices(t *testing.T) {
	p := load(t)
	for _, want := range services {
		t.Run(want.name, func(t *testing.T) {
			require.NoError(t, checkService(p, want))
		})
	}
}

func TestComposeEnvironmentDefaults(t *testing.T) {
	p := load(t)
	for _, st := range settings {
		t.Run(st.env, func(t *testing.T) {
			for _, want := range services {
				if !want.built() {
					continue
				}
				got, ok := env(p.Services[want.name], st.env)
				require.True(t, ok, "%s lacks %s", want.name, st.env)
				require.Equal(t, st.def, got, "%s %s", want.name, st.env)
			}
		})
	}
}

func TestComposeEnvironmentOverrides(t *testing.T) {
	for _, st := range settings {
		t.Run(st.env, func(t *testing.T) {
			p := load(t, st.env+"="+st.set)
			for _, want := range services {
				if !want.built() {
					continue
				}
				got, _ := env(p.Services[want.name], st.env)
				require.Equal(t, st.set, got, "%s %s", want.name, st.env)
			}
			require.NoError(t, validate(p), "the file must stay valid when %s is set", st.env)
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
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, ","), func(t *testing.T) {
			p := load(t, tt.env...)
			for svc, vars := range tt.want {
				for k, v := range vars {
					got, _ := env(p.Services[svc], k)
					require.Equal(t, v, got, "%s %s", svc, k)
				}
			}
			require.NoError(t, validate(p))
		})
	}
}

// TestValidateRejects proves the checks can fail: each mutation breaks the compose file the
// way an edit could, and validate must say so.
func TestValidateRejects(t *testing.T) {
	original, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	require.NoError(t, err)

	// Each text mutation must match exactly once, or it would test nothing.
	replace := func(old, with string) func(t *testing.T, yaml string) string {
		return func(t *testing.T, yaml string) string {
			require.Equal(t, 1, strings.Count(yaml, old), "mutation target %q", old)
			return strings.Replace(yaml, old, with, 1)
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
			s := p.Services[name]
			edit(&s)
			p.Services[name] = s
		}
	}

	tests := []struct {
		name    string
		yaml    func(t *testing.T, yaml string) string // edits the file's text before loading
		project func(p *types.Project)                 // edits the loaded project
		wantErr string
	}{
		{name: "service removed", project: func(p *types.Project) { delete(p.Services, "mailsink") },
			wantErr: "service mailsink is missing"},
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
		{name: "worker no longer waits for the mail sink", yaml: replace("      mailsink:\n        condition: service_healthy\n", ""),
			wantErr: "service worker: must start after mailsink"},
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
		{name: "UI port moved", yaml: replace(`"8088:8080"`, `"8089:8080"`),
			wantErr: "service temporal-ui: port 8088→8080 is not published"},
		{name: "data volume unmounted", yaml: replace("    volumes:\n      - pgdata:/var/lib/postgresql/data\n", ""),
			wantErr: "volume pgdata is not mounted"},
		{name: "image unpinned", yaml: replace("image: postgres:15", "image: postgres"),
			wantErr: "service postgres: image"},
		{name: "api built elsewhere", yaml: replace("  api:\n    build: .", "  api:\n    build: ./cmd"),
			wantErr: "service api: builds from"},
		{name: "worker runs the API", yaml: replace(`command: ["worker"]`, `command: ["serve"]`),
			wantErr: "service worker: command"},
		{name: "setting dropped", yaml: replace("  TEMPORAL_ADDRESS: ${TEMPORAL_ADDRESS:-temporal:7233}\n", ""),
			wantErr: "environment lacks TEMPORAL_ADDRESS"},
		{name: "setting breachflow refuses", yaml: replace("${BREACHFLOW_LOG_LEVEL:-info}", "${BREACHFLOW_LOG_LEVEL:-loud}"),
			wantErr: "breachflow would refuse its settings"},
		{name: "api listens on loopback only", yaml: replace("BREACHFLOW_LISTEN: 0.0.0.0:8080", "BREACHFLOW_LISTEN: 127.0.0.1:8080"),
			wantErr: "service api: listens on \"127.0.0.1:8080\": other containers"},
		{name: "mail sink on another port", yaml: replace(`"--listen", "0.0.0.0:8025"`, `"--listen", "0.0.0.0:9025"`),
			wantErr: "SENDGRID_API_URL"},
		{name: "namespace the server does not create", yaml: replace("TEMPORAL_NAMESPACE: ${TEMPORAL_NAMESPACE:-default}", "TEMPORAL_NAMESPACE: prod"),
			wantErr: "but the temporal service creates namespace"},
		{name: "password only postgres knows", yaml: replace("POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-breachflow}", "POSTGRES_PASSWORD: other"),
			wantErr: "DATABASE_URL does not use the user, password and database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := string(original)
			if tt.yaml != nil {
				yaml = tt.yaml(t, yaml)
			}
			file := filepath.Join(t.TempDir(), "docker-compose.yml")
			require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
			p, err := loadProject(t.Context(), file)
			require.NoError(t, err, "the mutated file must still load, so that validate is what rejects it")
			if tt.project != nil {
				tt.project(p)
			}
			err = validate(p)
			require.ErrorContains(t, err, tt.wantErr)
			t.Log(err)
		})
	}
}
