// Package cli is the citybrain command: serve, ingest, sql, tables, status.
// Each command is a thin layer over internal/app.
package cli

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"citybrain/internal/app"
	"citybrain/internal/config"
	"citybrain/warehouse"
)

type globals struct {
	configPath string
	dataDir    string
	logLevel   string
	out        io.Writer
	errOut     io.Writer
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := &globals{out: stdout, errOut: stderr}
	root := &cobra.Command{
		Use:   "citybrain",
		Short: "CityBrain Lakehouse — 西城城市大脑数据平台 (Xicheng city-brain data platform)",
		Long: `citybrain pulls department feeds into Kafka, writes them exactly once into an
Apache Iceberg lake, and answers SQL over it with DuckDB.

城市大脑数据底座：部门数据 → Kafka → Iceberg 数据湖 → DuckDB 查询。

Start with:  citybrain serve        (everything, embedded defaults)
Then:        citybrain sql "select count(*) from raw.weather"`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "citybrain.yaml", "config file (optional when it is the default and absent); see docs/config.md")
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", "", "data directory (overrides data_dir and CITYBRAIN_DATA_DIR)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	root.AddCommand(serveCmd(g), ingestCmd(g), sqlCmd(g), tablesCmd(g), statusCmd(g), connectorsCmd(g), dlqCmd(g), modelsCmd(g), usersCmd(g), simCmd(g))
	root.AddCommand(extractsCmd(g), airflowCmd(g))
	root.AddCommand(warningsCmd(g), responsesCmd(g), inspectionsCmd(g), lakeCmd(g))
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "错误 error: %v\n", err)
	}
	return err
}

func (g *globals) load(cmd *cobra.Command) (config.Config, *slog.Logger, error) {
	optional := !cmd.Flags().Changed("config") && g.configPath == "citybrain.yaml"
	cfg, err := config.Load(g.configPath, optional)
	if err != nil {
		return cfg, nil, err
	}
	if g.dataDir != "" {
		cfg.DataDir = g.dataDir
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level))); err != nil {
		return cfg, nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(g.errOut, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(g.errOut, opts)
	}
	logger := slog.New(h)
	stdlog.SetFlags(0)
	stdlog.SetOutput(libraryLog{logger})
	return cfg, logger, nil
}

// libraryLog carries what libraries print through the standard log package
// (iceberg-go's warnings) into the structured log. A REST catalog server
// removes old metadata files itself, so iceberg-go's "Failed to delete old
// metadata file … does not exist" after every commit is expected there:
// debug, not warning.
type libraryLog struct{ log *slog.Logger }

func (l libraryLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "Failed to delete old metadata file") && strings.Contains(msg, "does not exist") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, "from", "library")
	return len(p), nil
}

func quietLogger(g *globals, cfg config.Config) *slog.Logger {
	if cfg.Log.Level == "debug" || cfg.Log.Level == "info" && g.logLevel == "info" {
		return slog.New(slog.NewTextHandler(g.errOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(g.errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Main is what cmd/citybrain calls; it returns the exit code.
func Main(ctx context.Context) int {
	if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		return 1
	}
	return 0
}

// open loads the configuration and opens the platform for a command that
// is not serve (quiet log; mode says whether it attaches to serve's
// broker).
func (g *globals) open(cmd *cobra.Command, mode app.BrokerMode) (*app.App, config.Config, error) {
	cfg, _, err := g.load(cmd)
	if err != nil {
		return nil, cfg, err
	}
	a, err := app.Open(cmd.Context(), cfg, quietLogger(g, cfg), mode)
	return a, cfg, err
}

// openEngine opens the platform without a broker and a query engine on
// its lake; done closes both. On an object store the engine fetches only
// what the command's statements read (warehouse.OnDemand).
func (g *globals) openEngine(cmd *cobra.Command) (a *app.App, eng *warehouse.Engine, done func(), err error) {
	a, _, err = g.open(cmd, app.NoBroker)
	if err != nil {
		return nil, nil, nil, err
	}
	eng, err = warehouse.NewEngine(cmd.Context(), a.Lake, warehouse.OnDemand())
	if err != nil {
		a.Close()
		return nil, nil, nil, err
	}
	return a, eng, func() { eng.Close(); a.Close() }, nil
}
