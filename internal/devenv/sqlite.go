package devenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	serverlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver the schema step opens directly

	"github.com/breachflow/breachflow/internal/logging"
)

// SQLite server defaults.
const (
	DefaultSQLiteListen    = "127.0.0.1:0"
	DefaultSQLiteNamespace = "default"
	DefaultSQLiteRetention = 24 * time.Hour
	// DefaultSQLiteLogLevel keeps the server quiet: it logs warnings routinely on start and stop.
	DefaultSQLiteLogLevel = "error"
)

// clusterName is the single cluster's name, fixed because it is persisted in the file.
const clusterName = "active"

// readyTimeout bounds the wait for the frontend to answer for the namespace after start.
const readyTimeout = 30 * time.Second

// SQLiteOptions configures StartSQLiteTemporal.
type SQLiteOptions struct {
	// DBFile is the SQLite file: created with Temporal's schema when missing or empty, reused
	// otherwise, so workflows survive a restart. Its directory is created if missing.
	DBFile string
	// Listen is the frontend's host:port (default 127.0.0.1:0; port 0 picks a free one, an
	// empty host or "localhost" means 127.0.0.1).
	Listen string
	// Namespace is registered if missing (default "default").
	Namespace string
	// Retention applies to a namespace this start registers (default 24h).
	Retention time.Duration
	// LogLevel of the server's own logs: debug, info, warn, error (default) or none.
	LogLevel string
	// Logger receives the server's logs (default JSON on stderr).
	Logger *zap.Logger
}

// SQLiteTemporal is a single-process Temporal server (frontend, history, matching and
// worker services) persisted to a SQLite file.
type SQLiteTemporal struct {
	srv       temporal.Server
	log       *zap.Logger
	level     zap.AtomicLevel
	lvl       zapcore.Level
	addr      string
	namespace string
	dbFile    string
	stopOnce  sync.Once
}

// StartSQLiteTemporal starts a Temporal server on opts.DBFile and returns once its frontend
// answers for the namespace.
func StartSQLiteTemporal(opts SQLiteOptions) (*SQLiteTemporal, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	zl, level, err := serverLogger(opts.Logger, opts.LogLevel)
	if err != nil {
		return nil, err
	}
	frontendIP, port, err := frontendAddr(opts.Listen)
	if err != nil {
		return nil, err
	}
	if err := ensureSchema(opts.DBFile); err != nil {
		return nil, err
	}
	port, ports, err := freePorts(frontendIP, port)
	if err != nil {
		return nil, err
	}
	dial := net.JoinHostPort(dialableIP(frontendIP), strconv.Itoa(port))
	sqlCfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: opts.DBFile,
		// WAL with synchronous=normal loses nothing a killed process committed (the
		// operating system still holds it) and spares an fsync per transaction.
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal", "busy_timeout": "10000"},
	}
	if err := registerNamespace(sqlCfg, opts.Namespace, opts.Retention); err != nil {
		return nil, err
	}
	cfg := serverConfig(sqlCfg, frontendIP, port, ports, dial)
	serverLog := serverlog.NewZapLogger(zl)
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(dial),
		primitives.HistoryService:  static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))),
		primitives.MatchingService: static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))),
		primitives.WorkerService:   static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))),
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(serverLog),
		temporal.WithDynamicConfigClient(devDynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("build Temporal server on %s: %w", opts.DBFile, err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Stop()
		return nil, fmt.Errorf("start Temporal server on %s: %w", opts.DBFile, err)
	}
	t := &SQLiteTemporal{srv: srv, log: zl, level: level, lvl: level.Level(), addr: dial, namespace: opts.Namespace, dbFile: opts.DBFile}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := waitReady(ctx, dial, opts.Namespace); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

// Address is the frontend's host:port as a client dials it.
func (t *SQLiteTemporal) Address() string { return t.addr }

// Namespace is the namespace registered at start.
func (t *SQLiteTemporal) Namespace() string { return t.namespace }

// DBFile is the absolute path of the SQLite file.
func (t *SQLiteTemporal) DBFile() string { return t.dbFile }

// Stop shuts the server down; later calls do nothing.
func (t *SQLiteTemporal) Stop() {
	t.stopOnce.Do(func() {
		// The services log errors routinely while they stop one another (calls cut off
		// mid-flight); below debug or info, they are noise.
		if t.lvl >= zapcore.WarnLevel {
			t.level.SetLevel(zapcore.FatalLevel)
		}
		err := t.srv.Stop()
		t.level.SetLevel(t.lvl)
		if err != nil {
			t.log.Error("stop Temporal server", zap.Error(err))
		}
	})
}

func (o *SQLiteOptions) defaults() error {
	if o.DBFile == "" {
		return errors.New("temporal: a SQLite database file is required")
	}
	// The server builds a "file:" URI from the path without escaping it.
	if strings.ContainsAny(o.DBFile, "?#") {
		return fmt.Errorf("temporal: database file %q: no '?' or '#' allowed", o.DBFile)
	}
	abs, err := filepath.Abs(o.DBFile)
	if err != nil {
		return fmt.Errorf("temporal: database file: %w", err)
	}
	o.DBFile = abs
	if o.Listen == "" {
		o.Listen = DefaultSQLiteListen
	}
	if o.Namespace == "" {
		o.Namespace = DefaultSQLiteNamespace
	}
	if o.Retention == 0 {
		o.Retention = DefaultSQLiteRetention
	}
	if o.LogLevel == "" {
		o.LogLevel = DefaultSQLiteLogLevel
	}
	return nil
}

// serverLogger returns the logger for the server's own logs, filtered by the returned
// level, which starts at level ("none": a logger that drops everything).
func serverLogger(base *zap.Logger, level string) (*zap.Logger, zap.AtomicLevel, error) {
	if level == "none" {
		return zap.NewNop(), zap.NewAtomicLevelAt(zapcore.FatalLevel), nil
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("temporal: log level %q: want debug, info, warn, error or none", level)
	}
	if base == nil {
		if base, err = logging.New("json", "debug"); err != nil {
			return nil, zap.AtomicLevel{}, err
		}
	}
	// zap refuses a level below the base logger's own: that one applies then.
	atom := zap.NewAtomicLevelAt(max(lvl, zapcore.LevelOf(base.Core())))
	return base.WithOptions(zap.IncreaseLevel(atom)), atom, nil
}

// ensureSchema creates Temporal's schema in a missing or empty file in one transaction, so a
// process killed during its first start leaves a file that the next start sets up again.
func ensureSchema(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("temporal: database directory: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rwc&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("temporal: open %s: %w", path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("temporal: open %s: %w", path, err)
	}
	defer func() { _ = tx.Rollback() }()
	var tables, namespaces int
	err = tx.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE name = 'namespaces') FROM sqlite_master WHERE type = 'table'`).
		Scan(&tables, &namespaces)
	if err != nil {
		return fmt.Errorf("temporal: read %s: %w", path, err)
	}
	switch {
	case namespaces == 1:
		return nil
	case tables > 0:
		return fmt.Errorf("temporal: %s holds tables but not Temporal's", path)
	}
	if err := sqliteschema.SetupSchemaOnDB(schemaTx{ctx: ctx, tx: tx}); err != nil {
		return fmt.Errorf("temporal: create schema in %s: %w", path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("temporal: create schema in %s: %w", path, err)
	}
	return nil
}

// schemaTx runs the schema statements inside one transaction. SetupSchemaOnDB only calls
// Exec; the embedded nil interface stands for the admin operations it never uses.
type schemaTx struct {
	sqlplugin.AdminDB
	ctx context.Context
	tx  *sql.Tx
}

func (s schemaTx) Exec(stmt string, args ...any) error {
	_, err := s.tx.ExecContext(s.ctx, stmt, args...)
	return err
}

// registerNamespace writes the namespace into the file unless it is there: the server's
// namespace registry then has it from the start, with no refresh to wait for.
func registerNamespace(cfg *config.SQL, name string, retention time.Duration) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, nil)
	if err != nil {
		return fmt.Errorf("temporal: namespace %q: %w", name, err)
	}
	ns.Detail.Config.Retention = durationpb.New(retention)
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return fmt.Errorf("temporal: register namespace %q: %w", name, err)
	}
	return nil
}

// serverConfig is a one-shard, one-cluster configuration; history, matching and worker
// listen on loopback at ports, the frontend on frontendIP:port.
func serverConfig(sqlCfg *config.SQL, frontendIP string, port int, ports []int, dial string) *config.Config {
	var c config.Config
	c.Global.Membership.MaxJoinDuration = 30 * time.Second
	c.Global.Membership.BroadcastAddress = "127.0.0.1"
	c.Persistence.DefaultStore = "sqlite-default"
	c.Persistence.VisibilityStore = "sqlite-default"
	c.Persistence.NumHistoryShards = 1
	c.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlCfg}}
	c.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: dial},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	internal := func(p int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: p, BindOnIP: "127.0.0.1"}}
	}
	c.Services = map[string]config.Service{
		"frontend": {RPC: config.RPC{GRPCPort: port, BindOnIP: frontendIP}},
		"history":  internal(ports[0]),
		"matching": internal(ports[1]),
		"worker":   internal(ports[2]),
	}
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	c.PublicClient.HostPort = dial
	return &c
}

// devDynamicConfig is the temporal CLI dev server's defaults (search attributes and Nexus
// endpoints visible at once, persistence QPS raised to match) with smaller caches.
func devDynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.ForceNexusEndpointRefreshOnRead.Key():              true,
		dynamicconfig.FrontendPersistenceMaxQPS.Key():                    10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():                     45000,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8192,
		dynamicconfig.EventsHostLevelCacheMaxSizeBytes.Key():             32 << 20,
	}
}

// frontendAddr splits listen into the IP the frontend binds and its port (0: any).
func frontendAddr(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("temporal: listen address %q: want host:port", listen)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("temporal: listen address %q: want an IP address or localhost", listen)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("temporal: listen address %q: bad port", listen)
	}
	return host, port, nil
}

// freePorts checks that the frontend's port on frontendIP is free, or picks one when it is
// 0, and picks three loopback ports for history, matching and worker. All are held until all
// are picked so none repeats. The server binds them a moment later (a port taken in between,
// rare on loopback, makes it exit the process), so a taken port is reported here instead.
func freePorts(frontendIP string, port int) (int, []int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	take := func(ip string, port int) (int, error) {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return 0, fmt.Errorf("temporal: listen on %s: %w", addr, err)
		}
		lns = append(lns, ln)
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	port, err := take(frontendIP, port)
	if err != nil {
		return 0, nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		p, err := take("127.0.0.1", 0)
		if err != nil {
			return 0, nil, err
		}
		ports[i] = p
	}
	return port, ports, nil
}

// dialableIP maps an unspecified bind address to loopback, where a local client reaches it.
func dialableIP(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.IsUnspecified() {
		if parsed.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return ip
}

// waitReady returns once the frontend at addr reports itself serving and describes
// namespace. It asks the gRPC health service first: an early API call is answered, and
// logged by the server as an error, with "Frontend is not healthy yet".
func waitReady(ctx context.Context, addr, namespace string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("temporal: frontend at %s: %w", addr, err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	service := workflowservice.NewWorkflowServiceClient(conn)
	for {
		var resp *healthpb.HealthCheckResponse
		resp, err = health.Check(ctx, &healthpb.HealthCheckRequest{Service: workflowservice.WorkflowService_ServiceDesc.ServiceName})
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("frontend %s", resp.GetStatus())
		}
		if err == nil {
			_, err = service.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal: namespace %q not ready at %s: %w", namespace, addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
