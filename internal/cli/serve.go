package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/freshness"
	"citybrain/internal/proc"
	"citybrain/warehouse"
	"citybrain/warehouse/sqlaccess"
)

func serveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run everything: broker (if embedded), connectors, lake writers, query layer / 启动全部服务",
		Long: `serve runs the whole platform in one process: the embedded Kafka broker when no
broker.bootstrap is configured, every enabled source's connector, one lake writer
per topic, background lake maintenance, and the HTTP query layer.

Stop it with Ctrl-C: it commits what it has read and exits. A kill -9 loses
nothing either: the next start resumes from the lake and the topics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			restarted := proc.Restarted()
			if restarted != "" {
				log.Warn("serve restarted itself in place / 服务已自动重启", "why", restarted)
			}
			servePprof(log)
			a, err := app.Open(ctx, cfg, log, app.OwnBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.LockServe(); err != nil {
				return err
			}
			eng, err := warehouse.NewEngine(ctx, a.Lake)
			if err != nil {
				return err
			}
			defer eng.Close()
			ln, err := net.Listen("tcp", cfg.HTTP.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (set http.addr to another port)", cfg.HTTP.Addr, err)
			}
			users, err := auth.Open(cfg.Auth, cfg.DataDir)
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			a.Mount(mux, eng, users)
			fresh := freshness.New(time.Now, freshness.DefaultThresholds())
			a.Fresh = fresh
			rt := &app.Runtime{App: a, Engine: eng, Mux: mux, Auth: users, Commits: app.NewCommitBus(), Fresh: fresh}
			if err := rt.WriteOperatorToken(cfg.DataDir); err != nil {
				return err
			}
			rt.MountMetrics()
			rt.ReportMemory(eng.Memory)
			// Damaged tables (isolated by the engine) show on their query
			// path: status, 数据健康 and /metrics say so from the start.
			for table, why := range eng.Damaged() {
				fresh.Update(sqlaccess.QueryPath(table), func(s *freshness.State) {
					s.Err = why
				})
			}
			rt.Commits.OnCommit(func(c app.Commit) {
				if err := eng.Refresh(ctx, c.Table); err != nil {
					log.Warn("refresh view", "table", c.Table, "err", err)
				}
			})
			before, after, err := app.Services(rt)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			var wg sync.WaitGroup
			runService := func(s app.Service) error {
				if err := s.Start(ctx, rt); err != nil {
					return fmt.Errorf("%s: %w", s.Name(), err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.Run(ctx); err != nil && ctx.Err() == nil {
						log.Error("service stopped", "service", s.Name(), "err", err)
					}
				}()
				return nil
			}
			for _, s := range before {
				if err := runService(s); err != nil {
					return err
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("http server stopped", "err", err)
				}
			}()
			var names []string
			for _, d := range cfg.Defs {
				if !d.IsEnabled() {
					continue
				}
				src, err := a.OpenSource(d.Name)
				if err != nil {
					return err
				}
				names = append(names, d.Name)
				wr := a.NewWriter(src)
				wr.Fresh = fresh
				wr.OnCommit = func(ctx context.Context, table string, snap int64) {
					rt.Commits.Publish(app.Commit{Table: table, Snapshot: snap})
				}
				wg.Add(2)
				// Neither gives up before serve stops: a start that fails (a
				// broker slow to answer on a busy machine) is retried with
				// backoff and shown on the source's freshness path.
				go func() {
					defer wg.Done()
					defer wr.Close()
					if err := a.RunWriter(ctx, src, wr); err != nil && ctx.Err() == nil {
						log.Error("lake writer stopped", "source", d.Name, "err", err)
					}
				}()
				go func() {
					defer wg.Done()
					if _, err := a.RunSource(ctx, src, d.Poll()); err != nil {
						log.Error("source stopped", "source", d.Name, "err", err)
					}
				}()
			}
			for _, s := range after {
				if err := runService(s); err != nil {
					return err
				}
			}
			wg.Add(1)
			// Maintenance is background work: a pass waits (≤ 3 min) while
			// the warning engine is behind (freshness.Registry.Yield).
			a.Lake.SetYield(func(ctx context.Context) time.Duration { return fresh.Yield(ctx, 2*time.Second, 3*time.Minute) })
			go func() { defer wg.Done(); a.Lake.RunMaintenance(ctx) }()
			brokerDesc := fmt.Sprintf("%v", cfg.Broker.Bootstrap)
			if a.Embedded != nil {
				brokerDesc = a.Embedded.Addr() + " (embedded, log in " + cfg.DataDir + "/broker)"
			}
			fmt.Fprintf(g.out, `
CityBrain Lakehouse is running / 城市大脑数据平台已启动
  HTTP query layer 查询接口:  http://%s/api/status   curl -u analyst:PASSWORD 'http://%s/api/sql?q=select+count(*)+from+raw.weather'
  Kafka broker 消息队列:      %s
  Lake 数据湖 (Iceberg):      %s  (catalog: %s)
  Sources 数据源:             %[6]v
Try 试试 (in another terminal):
  %[7]s sql "select count(*) from raw.weather"
  %[7]s tables
  %[7]s status
`, ln.Addr(), ln.Addr(), brokerDesc, lakeWhere(a.Lake), cfg.Warehouse.Catalog, names, self())
			for _, l := range rt.BannerLines() {
				fmt.Fprintln(g.out, "  "+l)
			}
			if restarted != "" {
				fmt.Fprintln(g.out, "  已自动重启 restarted in place: "+restarted)
			}
			fmt.Fprintln(g.out, "Stop with Ctrl-C / 按 Ctrl-C 停止.")
			<-ctx.Done()
			log.Info("stopping: committing what was read")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			wg.Wait()
			return nil
		},
	}
}

// self is how the user invoked this binary, for the commands the banner suggests.
func self() string {
	if len(os.Args) > 0 && strings.Contains(os.Args[0], "/") {
		return os.Args[0]
	}
	return "citybrain"
}

// lakeWhere is where the lake's tables are, as the banner says it: the
// warehouse directory, or the object store and the local cache.
func lakeWhere(l *warehouse.Lake) string {
	if l.Remote() {
		return l.Location() + " (local copies in " + l.LocalRoot() + ")"
	}
	return l.Dir()
}
