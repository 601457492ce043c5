package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"citybrain/pipelines/airflow"
)

func airflowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "airflow",
		Short: "Schedule extracts and model runs with Apache Airflow / 使用 Airflow 调度",
		Long: `airflow writes DAG files for Apache Airflow whose tasks call this binary
(one DAG per extract schedule, one for the model run), and triggers and
watches DAG runs through Airflow's stable REST API: Airflow 3 (/api/v2,
token from /auth/token) or Airflow 2 (/api/v1, basic auth).

The API server and user come from --url/--user or AIRFLOW_URL/AIRFLOW_USER;
the password from AIRFLOW_PASSWORD. See docs/airflow.md.

Examples:
  citybrain airflow dags --out $AIRFLOW_HOME/dags
  citybrain airflow trigger citybrain_extracts_0_6_x_x_x_asia_shanghai --watch
  citybrain airflow watch citybrain_models manual__2026-11-28T06:00:00+00:00`,
	}
	cmd.AddCommand(airflowDagsCmd(g), airflowTriggerCmd(g), airflowWatchCmd(g))
	return cmd
}

type airflowConn struct {
	url, user, api string
}

func (c *airflowConn) flags(cmd *cobra.Command) {
	def := func(env, d string) string {
		if v := os.Getenv(env); v != "" {
			return v
		}
		return d
	}
	cmd.Flags().StringVar(&c.url, "url", def("AIRFLOW_URL", "http://127.0.0.1:8080"), "Airflow API server (env AIRFLOW_URL)")
	cmd.Flags().StringVar(&c.user, "user", def("AIRFLOW_USER", "admin"), "Airflow user (env AIRFLOW_USER); the password is AIRFLOW_PASSWORD")
	cmd.Flags().StringVar(&c.api, "api", "", "v2 (Airflow 3) or v1 (Airflow 2); default: detect")
}

func (c *airflowConn) client() (*airflow.Client, error) {
	return airflow.NewClient(c.url, c.user, os.Getenv("AIRFLOW_PASSWORD"), airflow.API(c.api))
}

func airflowDagsCmd(g *globals) *cobra.Command {
	var out, binary, modelsCron, modelsTZ string
	var retries int
	var retryDelay time.Duration
	cmd := &cobra.Command{
		Use:   "dags --out DIR",
		Short: "Write Airflow DAG files for the extracts and the model run / 生成 DAG 文件",
		Long: `dags writes one DAG file per extract schedule (cron + zone; every extract on
it is a task running "citybrain extracts run NAME --period <scheduled time>")
and one for the model run ("citybrain models run"). Copy them — or write
them directly with --out — into Airflow's dags folder, and turn the
built-in scheduler off (extracts.scheduler.enabled: false) so that runs
are not made twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out DIR is required (Airflow's dags folder, e.g. $AIRFLOW_HOME/dags)")
			}
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			defs, err := cfg.Extracts.All()
			if err != nil {
				return err
			}
			if binary == "" {
				if binary, err = os.Executable(); err != nil {
					return err
				}
			}
			o := airflow.DagOptions{Binary: abs(binary), DataDir: abs(cfg.DataDir), Retries: retries,
				RetryDelaySeconds: int(retryDelay.Seconds()), ModelsCron: modelsCron, ModelsTimezone: modelsTZ}
			if _, err := os.Stat(g.configPath); err == nil {
				o.Config = abs(g.configPath)
			}
			files, err := airflow.Dags(defs, o)
			if err != nil {
				return err
			}
			if err := airflow.WriteDags(out, files); err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(g.out, "%s\t%s (%s)\n", filepath.Join(out, f.Name), f.DagID, strings.Join(f.Tasks, ", "))
			}
			fmt.Fprintf(g.out, "wrote %d DAG file(s) 已生成. Next: unpause and trigger them, e.g. citybrain airflow trigger %s --watch\n", len(files), files[len(files)-1].DagID)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the DAG files to (Airflow's dags folder)")
	cmd.Flags().StringVar(&binary, "binary", "", "citybrain executable the Airflow workers run (default: this one)")
	cmd.Flags().StringVar(&modelsCron, "models-cron", "*/15 * * * *", `schedule of the model-run DAG ("" = no model DAG)`)
	cmd.Flags().StringVar(&modelsTZ, "models-timezone", "Asia/Shanghai", "time zone of --models-cron")
	cmd.Flags().IntVar(&retries, "retries", 2, "Airflow retries per task")
	cmd.Flags().DurationVar(&retryDelay, "retry-delay", time.Minute, "wait between Airflow task retries")
	return cmd
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func printRun(g *globals, r airflow.DAGRun, tis []airflow.TaskInstance) {
	var ts []string
	for _, t := range tis {
		ts = append(ts, t.TaskID+"="+t.StateString())
	}
	fmt.Fprintf(g.errOut, "%s %s: %s  %s\n", time.Now().Format("15:04:05"), r.RunID, r.State, strings.Join(ts, " "))
}

func airflowTriggerCmd(g *globals) *cobra.Command {
	var conn airflowConn
	var logical, runID string
	var watch, noUnpause bool
	var poll, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "trigger DAG_ID",
		Short: "Unpause a DAG, trigger a run and optionally watch it / 触发 DAG 运行",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = contextWithTimeout(ctx, timeout)
				defer cancel()
			}
			if !noUnpause {
				if _, err := c.SetPaused(ctx, args[0], false); err != nil {
					return fmt.Errorf("unpause %s: %w", args[0], err)
				}
			}
			tr := airflow.TriggerRequest{RunID: runID}
			if logical != "" {
				t, err := time.Parse(time.RFC3339, logical)
				if err != nil {
					return fmt.Errorf("--logical-date %q: want RFC 3339, e.g. 2026-11-28T06:00:00+08:00", logical)
				}
				tr.LogicalDate = &t
			}
			r, err := c.Trigger(ctx, args[0], tr)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "triggered 已触发 %s run %s (%s)\n", args[0], r.RunID, r.State)
			if !watch {
				fmt.Fprintf(g.out, "watch it: citybrain airflow watch %s %s\n", args[0], r.RunID)
				return nil
			}
			r, err = c.Watch(ctx, args[0], r.RunID, poll, func(r airflow.DAGRun, tis []airflow.TaskInstance) { printRun(g, r, tis) })
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "run %s: %s\n", r.RunID, r.State)
			return nil
		},
	}
	conn.flags(cmd)
	cmd.Flags().StringVar(&logical, "logical-date", "", "scheduled time the run covers (RFC 3339); default: none (Airflow 3) / now (Airflow 2)")
	cmd.Flags().StringVar(&runID, "run-id", "", "run id (default: Airflow's)")
	cmd.Flags().BoolVar(&watch, "watch", false, "watch the run to its end (exit status 1 if it fails)")
	cmd.Flags().BoolVar(&noUnpause, "no-unpause", false, "do not unpause the DAG first")
	cmd.Flags().DurationVar(&poll, "poll", 2*time.Second, "how often to poll while watching")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0 = never)")
	return cmd
}

func airflowWatchCmd(g *globals) *cobra.Command {
	var conn airflowConn
	var poll, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "watch DAG_ID RUN_ID",
		Short: "Watch a DAG run to its end / 跟踪 DAG 运行",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = contextWithTimeout(ctx, timeout)
				defer cancel()
			}
			r, err := c.Watch(ctx, args[0], args[1], poll, func(r airflow.DAGRun, tis []airflow.TaskInstance) { printRun(g, r, tis) })
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "run %s: %s\n", r.RunID, r.State)
			return nil
		},
	}
	conn.flags(cmd)
	cmd.Flags().DurationVar(&poll, "poll", 2*time.Second, "how often to poll")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0 = never)")
	return cmd
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
