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

	"citybrain/connectors"
	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/freshness"
	"citybrain/internal/instances"
	"citybrain/internal/proc"
	"citybrain/pipelines/lakewriter"
	"citybrain/pipelines/warnings"
	"citybrain/warehouse"
	"citybrain/warehouse/sqlaccess"
)

func serveCmd(g *globals) *cobra.Command {
	var rolesFlag, instanceFlag string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run everything: broker (if embedded), connectors, lake writers, query layer / 启动全部服务",
		Long: `serve runs the whole platform in one process: the embedded Kafka broker when no
broker.bootstrap is configured, every enabled source's connector, one lake writer
per topic, background lake maintenance, and the HTTP query layer.

Stop it with Ctrl-C: it commits what it has read and exits. A kill -9 loses
nothing either: the next start resumes from the lake and the topics.

With --roles it runs only some parts, so that each part can run on its own
machines against a shared Kafka cluster (broker.bootstrap) and a shared
catalog (warehouse.catalog sql or rest): for example
  citybrain serve --roles connectors,lakewriter --instance ingest-1
  citybrain serve --roles models,warnings,query,dashboards --instance serve-1
Every instance publishes a heartbeat to the topic citybrain.instances;
citybrain status, /metrics and 数据健康 show them all as one platform, and an
instance silent for 15 s as down. See docs/roles.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			roles, err := app.ParseRoles(rolesFlag)
			if err != nil {
				return err
			}
			if err := app.CheckRoles(roles, cfg); err != nil {
				return err
			}
			instance := instanceFlag
			if instance == "" {
				instance = app.DefaultInstance()
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
			var engOpts []warehouse.EngineOption
			if !roles.Has(app.RoleQuery) && !roles.Has(app.RoleDashboards) && !roles.Has(app.RoleModels) && !roles.Has(app.RoleWarnings) {
				engOpts = append(engOpts, warehouse.OnDemand()) // no part of this instance reads the views
			}
			eng, err := warehouse.NewEngine(ctx, a.Lake, engOpts...)
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
			rt := &app.Runtime{App: a, Engine: eng, Mux: mux, Auth: users, Commits: app.NewCommitBus(), Fresh: fresh, Roles: roles}
			if a.Client != nil {
				rt.Instances = instances.New(a.Client, instances.Info{Name: instance, Roles: roles.List(), HTTP: ln.Addr().String()}, instances.DefaultInterval, fresh.Rows, log)
				rt.Instances.SetPartitions(func() map[string]map[string][]int { return readPartitions(ctx, rt, roles) })
			}
			if err := rt.WriteOperatorToken(cfg.DataDir); err != nil {
				return err
			}
			if err := app.WriteServeAddr(cfg.DataDir, ln.Addr().String()); err != nil {
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
			before, err = servicesOf(roles, before)
			if err != nil {
				return err
			}
			after, err = servicesOf(roles, after)
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
			if rt.Instances != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := rt.Instances.Run(ctx); err != nil && ctx.Err() == nil {
						log.Error("实例心跳停止 instance heartbeats stopped", "err", err)
					}
				}()
			}
			var names []string
			// The lake writers sharing their topics' partitions with other
			// instances (lake_writer.partitioned) report the partitions they own.
			ownedWriters := map[string]*lakewriter.Writer{}
			var ownedMu sync.Mutex
			if cfg.LakeWriter.Partitioned {
				if rt.Owned == nil {
					rt.Owned = map[app.Role]func() map[string][]int{}
				}
				rt.Owned[app.RoleLakeWriter] = func() map[string][]int {
					out := map[string][]int{}
					ownedMu.Lock()
					defer ownedMu.Unlock()
					for topic, wr := range ownedWriters {
						out[topic] = wr.Owned()
					}
					return out
				}
			}
			for _, d := range cfg.Defs {
				if !d.IsEnabled() || (!roles.Has(app.RoleConnectors) && !roles.Has(app.RoleLakeWriter)) {
					continue
				}
				src, err := a.OpenSource(d.Name)
				if err != nil {
					return err
				}
				names = append(names, d.Name)
				// Neither gives up before serve stops: a start that fails (a
				// broker slow to answer on a busy machine) is retried with
				// backoff and shown on the source's freshness path.
				if roles.Has(app.RoleLakeWriter) {
					wr := a.NewWriter(src)
					wr.Fresh = fresh
					if cfg.LakeWriter.Partitioned {
						ownedMu.Lock()
						ownedWriters[connectors.RawTopic(d.Name)] = wr
						ownedMu.Unlock()
					}
					wr.OnCommit = func(ctx context.Context, table string, snap int64) {
						rt.Commits.Publish(app.Commit{Table: table, Snapshot: snap})
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer wr.Close()
						if err := a.RunWriter(ctx, src, wr); err != nil && ctx.Err() == nil {
							log.Error("lake writer stopped", "source", d.Name, "err", err)
						}
					}()
				}
				if roles.Has(app.RoleConnectors) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := a.RunSource(ctx, src, d.Poll()); err != nil {
							log.Error("source stopped", "source", d.Name, "err", err)
						}
					}()
				}
			}
			for _, s := range after {
				if err := runService(s); err != nil {
					return err
				}
			}
			if !roles.Has(app.RoleLakeWriter) {
				// Other instances write the lake: learn of their commits by looking.
				wg.Add(1)
				go func() { defer wg.Done(); app.WatchCommits(ctx, a.Lake, rt.Commits, 2*time.Second) }()
			}
			if roles.Has(app.RoleLakeWriter) {
				wg.Add(1)
				// Maintenance is background work: a pass waits (≤ 3 min) while
				// the warning engine is behind (freshness.Registry.Yield).
				a.Lake.SetYield(func(ctx context.Context) time.Duration { return fresh.Yield(ctx, 2*time.Second, 3*time.Minute) })
				go func() { defer wg.Done(); a.Lake.RunMaintenance(ctx) }()
			}
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
  Instance 实例:              %[8]s  (roles 角色: %[9]s)
Try 试试 (in another terminal):
  %[7]s sql "select count(*) from raw.weather"
  %[7]s tables
  %[7]s status
`, ln.Addr(), ln.Addr(), brokerDesc, lakeWhere(a.Lake), cfg.Warehouse.Catalog, names, self(), instance, roles)
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
	cmd.Flags().StringVar(&rolesFlag, "roles", "all", app.RolesHelp())
	cmd.Flags().StringVar(&instanceFlag, "instance", "", "this instance's name in status, /metrics and 数据健康 (default <hostname>-<pid>) / 实例名")
	return cmd
}

// readPartitions is, per role that reads Kafka, the partitions of each
// topic this instance reads: the lake writers read every partition of
// their sources' topics, the warning engine every partition of its inputs'.
func readPartitions(ctx context.Context, rt *app.Runtime, roles app.Roles) map[string]map[string][]int {
	a := rt.App
	bySchema := map[string]string{}
	var writerTopics []string
	for _, d := range a.Cfg.Defs {
		if d.IsEnabled() {
			bySchema[d.Name] = d.Schema
			writerTopics = append(writerTopics, connectors.RawTopic(d.Name))
		}
	}
	want := map[string][]string{}
	if roles.Has(app.RoleLakeWriter) {
		want[string(app.RoleLakeWriter)] = writerTopics
	}
	if roles.Has(app.RoleWarnings) {
		for _, in := range warnings.ResolveInputs(bySchema, nil) {
			want[string(app.RoleWarnings)] = append(want[string(app.RoleWarnings)], in.Topic)
		}
	}
	out := map[string]map[string][]int{}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for role, topics := range want {
		if owned := rt.Owned[app.Role(role)]; owned != nil {
			out[role] = owned()
			continue
		}
		if len(topics) == 0 {
			continue
		}
		ps, err := a.Client.Partitions(qctx, topics...)
		if err != nil || len(ps) == 0 {
			continue
		}
		out[role] = ps
	}
	return out
}

// servicesOf keeps the services of the given roles; a service no role
// names is an error (it would run unaccounted on every instance).
func servicesOf(roles app.Roles, ss []app.Service) ([]app.Service, error) {
	var out []app.Service
	for _, s := range ss {
		r, ok := app.ServiceRole(s.Name())
		if !ok {
			return nil, fmt.Errorf("service %q belongs to no role (internal/app/roles.go serviceRoles)", s.Name())
		}
		if roles.Has(r) {
			out = append(out, s)
		}
	}
	return out, nil
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
