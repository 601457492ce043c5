package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"citybrain/internal/sim"
)

func simCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulator of Xicheng: world, history, live feeds / 西城区模拟器",
		Long: `sim generates a reproducible Xicheng District — the 15 real streets, communities,
a 250 m grid, venues, 24,000 units with 20,759 risk sources, inspectors, shelters,
fire stations, sensors, plans and drills — and the eight department feeds over
their real protocols, with injected incidents written to ground_truth.jsonl.

西城区模拟器：生成可复现的区情数据与八个部门的数据流（含注入事件及其真值）。

Inside citybrain serve it runs when sim.enabled is true (make run does that).
These commands use it on its own:
  citybrain sim world    --out DIR            reference data only
  citybrain sim backfill --out DIR --days 7   reference data and N days of every feed, fast
  citybrain sim run      --out DIR            live: file drops, MQTT broker, HTTP APIs
See docs/simulator.md.`,
	}
	var (
		out   string
		scale int
		seed  int64
	)
	base := func(cmd *cobra.Command) (sim.Config, error) {
		cfg, _, err := g.load(cmd)
		if err != nil {
			return sim.Config{}, err
		}
		c := cfg.Sim
		if cmd.Flags().Changed("scale") {
			c.Scale = scale
		}
		if cmd.Flags().Changed("seed") {
			c.Seed = seed
		}
		return c, c.Validate()
	}
	addCommon := func(c *cobra.Command) {
		c.Flags().StringVar(&out, "out", "sim-out", "output directory")
		c.Flags().IntVar(&scale, "scale", 1, "1 (Xicheng), 10 or 100 (≈ Beijing-wide, ~262k grid cells)")
		c.Flags().Int64Var(&seed, "seed", sim.DefaultConfig().Seed, "random seed (same seed → byte-identical output)")
	}
	world := &cobra.Command{
		Use:   "world",
		Short: "Write the reference data (streets … charging points) as CSV / 生成区情基础数据",
		Long: `world writes every reference table as DIR/world/<table>.csv (header = canonical
field names) and reports counts and generation speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := base(cmd)
			if err != nil {
				return err
			}
			t0 := time.Now()
			w, err := sim.NewWorld(c, time.Now().In(sim.Shanghai).Truncate(time.Hour))
			if err != nil {
				return err
			}
			gen := time.Since(t0)
			rows, err := w.WriteWorld(out)
			if err != nil {
				return err
			}
			el := time.Since(t0)
			printTables(g, w)
			fmt.Fprintf(g.out, "scale %d: %d grid cells, %d rows in %s (generated in %s), %.0f rows/s → %s\n",
				c.Scale, len(w.Cells), rows, el.Round(time.Millisecond), gen.Round(time.Millisecond), float64(rows)/el.Seconds(), filepath.Join(out, sim.WorldDir))
			return nil
		},
	}
	addCommon(world)
	var (
		days  int
		until string
	)
	backfill := &cobra.Command{
		Use:   "backfill",
		Short: "Write the world and N days of every feed, fast / 快速生成 N 天历史数据",
		Long: `backfill writes the world, N days of history of every feed ending at --until
(file drops as CSV; the MQTT water messages, the Open311 requests and the
emergency calls as JSON Lines) and ground_truth.jsonl, and reports the
generation speed. The same seed, scale and --until give byte-identical files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := base(cmd)
			if err != nil {
				return err
			}
			end := time.Now().In(sim.Shanghai).Truncate(24 * time.Hour)
			if until != "" {
				if end, err = time.Parse(time.RFC3339, until); err != nil {
					return fmt.Errorf("--until %q: 需 RFC 3339 时间 / want RFC 3339, e.g. 2026-10-08T00:00:00+08:00", until)
				}
			}
			if days < 1 {
				return errors.New("--days: 至少 1 天 / at least 1")
			}
			t0 := time.Now()
			res, err := sim.Generate(c, out, end, days, func(d, rows int) {
				el := time.Since(t0)
				fmt.Fprintf(g.errOut, "\rday %d/%d  %d feed rows  %.0f rows/s   ", d, days, rows, float64(rows)/el.Seconds())
			})
			fmt.Fprintln(g.errOut)
			if err != nil {
				return err
			}
			total := 0
			var feeds []string
			for k, v := range res.FeedRows {
				total += v
				feeds = append(feeds, k)
			}
			sort.Strings(feeds)
			for _, k := range feeds {
				fmt.Fprintf(g.out, "  %-16s %10d rows\n", k, res.FeedRows[k])
			}
			fmt.Fprintf(g.out, "scale %d, %d cells: world %d rows in %s; %d days of feeds, %d rows in %s (%.0f rows/s); %d incidents in %s\n",
				c.Scale, res.Cells, res.WorldRows, res.WorldTime.Round(time.Millisecond), days, total, res.FeedTime.Round(time.Millisecond),
				float64(total)/res.FeedTime.Seconds(), res.Incidents, filepath.Join(out, sim.GroundTruthFile))
			return nil
		},
	}
	addCommon(backfill)
	backfill.Flags().IntVar(&days, "days", 7, "days of history")
	backfill.Flags().StringVar(&until, "until", "", "end of the history (RFC 3339); default today 00:00 Beijing time")
	var httpAddr string
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the feeds live without citybrain serve / 独立运行模拟数据流",
		Long: `run writes the world, backfills sim.backfill_days of history, then follows the
simulated clock (sim.clock, sim.speed): file drops below DIR/feeds, water telemetry
on an embedded MQTT broker (sim.mqtt.addr), and the Open311 and emergency-call
APIs on --http. Point a citybrain (or anything else) at them. Ctrl-C stops it;
a restart with the same DIR continues the same timeline.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := base(cmd)
			if err != nil {
				return err
			}
			_, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := sim.NewRunner(c, out, log)
			if err != nil {
				return err
			}
			if c.EmbeddedMQTT() {
				b, err := sim.StartBroker(c.MQTT.Addr, log)
				if err != nil {
					return err
				}
				defer b.Close()
				r.Broker = b
			}
			if err := r.Prepare(ctx); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", httpAddr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (use --http with a free port)", httpAddr, err)
			}
			// The feeds need the token of CITYBRAIN_SIM_TOKEN (made for this
			// run when unset, and printed): a citybrain reading them sends it
			// (auth.token_env of its http sources).
			r.Token = os.Getenv(sim.TokenEnv)
			madeToken := r.Token == ""
			if madeToken {
				r.Token = rand.Text()
			}
			mux := http.NewServeMux()
			r.Mount(mux)
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go srv.Serve(ln)
			defer srv.Shutdown(context.Background())
			fmt.Fprintf(g.out, "Simulator running / 模拟器运行中: history from %s, live from %s (%s ×%g)\n  files:   %s\n  Open311: http://%s%s\n  calls:   http://%s%s\n  status:  http://%s%s\n",
				r.Epoch().Format(time.RFC3339), r.Start().Format(time.RFC3339), c.Clock, c.Speed, filepath.Join(out, sim.FeedsDir),
				ln.Addr(), sim.Open311Path, ln.Addr(), sim.CallsPath, ln.Addr(), sim.StatusPath)
			if r.Broker != nil {
				fmt.Fprintf(g.out, "  MQTT:    %s (topics %s/#)\n", r.Broker.URL(), c.MQTT.TopicPrefix)
			}
			if madeToken {
				fmt.Fprintf(g.out, "  token 令牌 (HTTP feeds need it; give it to the citybrain that reads them):\n    export %s=%s\n", sim.TokenEnv, r.Token)
			} else {
				fmt.Fprintf(g.out, "  token 令牌: from $%s\n", sim.TokenEnv)
			}
			return r.Run(ctx)
		},
	}
	addCommon(run)
	run.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8090", "address of the Open311 and emergency-call APIs")
	cmd.AddCommand(world, backfill, run)
	return cmd
}

func printTables(g *globals, w *sim.World) {
	var names []string
	for n := range w.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(g.out, "  %-20s %8d rows\n", n, len(w.Tables[n].Rows))
	}
}
