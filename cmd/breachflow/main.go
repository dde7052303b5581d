// Command breachflow runs breachflow's server roles (dev, serve, worker, migrate,
// mailsink, temporal, tenants, audit) and its client commands (apikey, incident,
// partner).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/config"
	"github.com/breachflow/breachflow/internal/logging"
	"github.com/breachflow/breachflow/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a, root := newApp()
	code := a.execute(ctx, root, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// app carries what every command shares: the configuration loader and, once loaded,
// the configuration and logger of the server commands; the API settings and --json of
// the client commands.
type app struct {
	loader *config.Loader
	cfg    config.Config
	log    *zap.Logger

	// api is --url and --api-key of the client commands (apikey, incident, partner).
	api client.Settings
	// json is their --json: machine-readable output, errors included.
	json bool
	// running is set once a command's own code runs: an error before it is a usage error
	// (a flag, an argument, an unknown command).
	running bool
}

// Settings each server command reads, by environment variable; the long-running roles
// (dev, serve, worker) read them all.
var (
	logSettings     = []string{"BREACHFLOW_LOG_LEVEL", "BREACHFLOW_LOG_FORMAT"}
	migrateSettings = append([]string{"DATABASE_URL"}, logSettings...)
	sinkSettings    = append([]string{"BREACHFLOW_MAILSINK_LISTEN"}, logSettings...)
	auditSettings   = append([]string{"DATABASE_URL", "BREACHFLOW_AUDIT_SIGNING_KEY", "BREACHFLOW_AUDIT_PUBLIC_KEY"}, logSettings...)
)

func newRoot() *cobra.Command {
	_, root := newApp()
	return root
}

func newApp() (*app, *cobra.Command) {
	a := &app{loader: config.NewLoader()}
	root := &cobra.Command{
		Use:           "breachflow",
		Short:         "Notify affected customer tenants of a reportable security incident, durably",
		SilenceUsage:  true,
		SilenceErrors: true,
		// No command of ours has a pre-run hook of its own, so this one runs for all.
		PersistentPreRun: func(*cobra.Command, []string) { a.running = true },
	}
	// Server settings are flags of the server commands only, each command showing those
	// it reads; the client commands take --url, --api-key and --json instead.
	tenants := a.tenantsCmd()
	a.serverFlags(subcommand(tenants, "import"), migrateSettings...)
	audit := a.auditCmd()
	for _, name := range []string{"verify", "checkpoints"} {
		a.serverFlags(subcommand(audit, name), auditSettings...)
	}
	root.AddCommand(
		a.serverFlags(a.devCmd()),
		a.serverFlags(a.serveCmd()),
		a.serverFlags(a.workerCmd()),
		a.serverFlags(a.migrateCmd(), migrateSettings...),
		a.serverFlags(a.benchCmd(), migrateSettings...),
		a.serverFlags(a.mailsinkCmd(), sinkSettings...),
		a.serverFlags(a.temporalCmd(), "BREACHFLOW_LOG_FORMAT"),
		tenants,
		audit,
		a.probeCmd(),
		a.clientFlags(a.apikeyCmd()),
		a.clientFlags(a.incidentCmd()),
		a.clientFlags(a.partnerCmd()),
		a.evidenceCmd(),
	)
	a.refuseUnknownSubcommands(root)
	return a, root
}

// refuseUnknownSubcommands makes every command group below root answer an unknown
// subcommand with a usage error: cobra would print the group's help and succeed.
func (a *app) refuseUnknownSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		a.refuseUnknownSubcommands(c)
		if !c.HasSubCommands() || c.Runnable() {
			continue
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			a.running = false // a usage error, for errorOf and the exit status
			return client.Errorf("invalid", "", "unknown command %q for %q", args[0], cmd.CommandPath())
		}
	}
}

// serverFlags registers on cmd the flags of the settings named by their environment
// variables (all when none is named); a flag cmd defines itself is kept.
func (a *app) serverFlags(cmd *cobra.Command, envs ...string) *cobra.Command {
	a.loader.Bind(cmd.Flags(), envs...)
	return cmd
}

// clientFlags gives cmd and its subcommands --url, --api-key and --json.
func (a *app) clientFlags(cmd *cobra.Command) *cobra.Command {
	a.api.Register(cmd.PersistentFlags())
	cmd.PersistentFlags().BoolVar(&a.json, "json", false, `machine-readable output: JSON on stdout; errors as {"error":{"code","message","field"}} on stderr`)
	return cmd
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name {
			return c
		}
	}
	panic("no command " + cmd.Name() + " " + name)
}

// apiClient is the client of the client commands: --url and --api-key, else
// BREACHFLOW_URL and BREACHFLOW_API_KEY.
func (a *app) apiClient() (*client.Client, error) {
	return a.api.Resolve(os.LookupEnv).Client()
}

// execute runs root with args and reports an error on stderr: as text, or in the API's
// error shape when --json was given. It returns the exit status: 0, 1 for an error,
// 2 for a usage error.
func (a *app) execute(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	e := a.errorOf(err)
	status := 1
	if !a.running {
		status = 2
	}
	if a.json || jsonAsked(args) {
		raw, merr := json.Marshal(map[string]*client.APIError{"error": e})
		if merr == nil {
			fmt.Fprintln(stderr, string(raw))
			return status
		}
	}
	fmt.Fprintln(stderr, "breachflow:", err)
	if !a.running && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return status
}

// jsonAsked reports whether args ask for --json, for errors found before the flags were
// parsed.
func jsonAsked(args []string) bool {
	for _, arg := range args {
		switch arg {
		case "--":
			return false
		case "--json", "--json=true", "--json=1":
			return true
		}
	}
	return false
}

// errorOf is err in the API's error shape: the API's own answer, an error the CLI typed,
// or a code given by what err is.
func (a *app) errorOf(err error) *client.APIError {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae
	}
	e := &client.APIError{Code: "internal", Message: err.Error()}
	var (
		notExist *pflag.NotExistError
		needsVal *pflag.ValueRequiredError
		badValue *pflag.InvalidValueError
		fieldErr *store.FieldError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &fieldErr):
		e.Code, e.Field = "invalid", fieldErr.Field
	case errors.Is(err, store.ErrNotFound):
		e.Code = "not_found"
	case errors.As(err, &notExist):
		e.Code, e.Field = "invalid", notExist.GetSpecifiedName()
	case errors.As(err, &needsVal):
		e.Code, e.Field = "invalid", needsVal.GetFlag().Name
	case errors.As(err, &badValue):
		e.Code, e.Field = "invalid", badValue.GetFlag().Name
	case !a.running:
		e.Code = "invalid" // an argument, a required flag, an unknown command
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Code = "canceled"
	case errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED), strings.HasPrefix(err.Error(), "no PostgreSQL server answers"):
		e.Code = "unavailable"
	case strings.HasPrefix(err.Error(), "configuration:"):
		e.Code = "invalid"
	}
	return e
}

// load reads and checks the configuration; overrides replace defaults for one role and
// required names the settings the role cannot run without.
func (a *app) load(overrides map[string]string, required ...string) error {
	cfg, err := a.loader.Load(os.LookupEnv, overrides)
	if err == nil {
		err = cfg.Require(required...)
	}
	if err != nil {
		return fmt.Errorf("configuration:\n%w", indent(err))
	}
	a.cfg = cfg
	a.log, err = logging.New(cfg.LogFormat, cfg.LogLevel)
	return err
}

func indent(err error) error {
	var msgs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			msgs = append(msgs, fmt.Errorf("  %w", e))
		}
		return errors.Join(msgs...)
	}
	return fmt.Errorf("  %w", err)
}
