package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"citybrain/internal/app"
	"citybrain/models"
)

// modelsEnv is what every models subcommand opens.
type modelsEnv struct {
	a      *app.App
	runner *models.Runner
}

func (g *globals) openModels(cmd *cobra.Command, projectDir string, needLake bool) (*modelsEnv, func(), error) {
	cfg, _, err := g.load(cmd)
	if err != nil {
		return nil, nil, err
	}
	mc := cfg.Models
	if projectDir != "" {
		mc.ProjectDir = projectDir
	}
	p, err := mc.LoadProject()
	if err != nil {
		return nil, nil, err
	}
	env := &modelsEnv{runner: &models.Runner{Project: p, Progress: g.out, Threads: mc.Threads, MemoryLimit: mc.MemoryLimit}}
	if !needLake {
		return env, func() {}, nil
	}
	a, err := app.Open(cmd.Context(), cfg, quietLogger(g, cfg), app.NoBroker)
	if err != nil {
		return nil, nil, err
	}
	env.a = a
	env.runner.Lake = a.Lake
	env.runner.Log = quietLogger(g, cfg)
	return env, a.Close, nil
}

func modelsCmd(g *globals) *cobra.Command {
	var projectDir string
	root := &cobra.Command{
		Use:   "models",
		Short: "Run, test and inspect the SQL models (marts.*) / 模型运行与测试",
		Long: `models runs the SQL project (models/project, dbt-compatible: ref, source, config,
is_incremental, var) over the lake and materialises table and incremental
models as Iceberg tables in the marts namespace: risk portraits
(marts.enterprise_risk and its daily history), roll-ups per street, community
and industry, the street chief's lists and the plan KPIs.

模型：安全生产风险画像、街道/社区/行业汇总、清单与规划指标，结果写入 marts.*。

  citybrain models ls                          the models, their kind and description
  citybrain models run                         run every model (incremental ones incrementally)
  citybrain models run --select enterprise_risk_daily+   one model and what depends on it
  citybrain models run --start 2026-06-01 --as-of 2026-06-30   backfill a date range
  citybrain models test                        data tests (not_null, unique, …)
  citybrain models lineage --select +enterprise_risk
  citybrain models freshness                   source freshness (warn / error after)
  citybrain models reproduce RUN_ID            recompute a past run from its snapshots and compare`,
	}
	root.PersistentFlags().StringVar(&projectDir, "project-dir", "", "use this project directory instead of the configured one (models.project_dir)")

	var sel []string
	var fullRefresh bool
	var varsYAML, asOf, start string
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the models and materialise marts.* / 运行模型",
		Long: `run renders and runs the selected models in dependency order, one progress line
per model, and records the run (input snapshots, vars, outputs) in
marts.model_runs. A failing model is named with its file; the models that
depend on it are skipped, the others still run.

Selectors: name, name+ (and downstream), +name (and upstream).
Incremental models recompute the last lookback_days days (late data); --start
backfills from that date up to --as-of (default today, Asia/Shanghai).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, done, err := g.openModels(cmd, projectDir, true)
			if err != nil {
				return err
			}
			defer done()
			vars, err := parseVars(varsYAML)
			if err != nil {
				return err
			}
			for k, v := range map[string]string{"as_of_date": asOf, "start_date": start} {
				if v == "" {
					continue
				}
				if _, err := time.Parse(time.DateOnly, v); err != nil {
					return fmt.Errorf("--%s %q: want YYYY-MM-DD / 日期格式应为 YYYY-MM-DD", map[string]string{"as_of_date": "as-of", "start_date": "start"}[k], v)
				}
				vars[k] = v
			}
			if app.ServeRunning(env.a.Cfg.DataDir) {
				// Both commit marts.*: the runner retries a commit that
				// loses the race (models.Runner, "commit conflict").
				fmt.Fprintln(g.out, "citybrain serve is running too: it also runs the models; a commit that collides with its run is retried / serve 正在运行，提交冲突时自动重试")
			}
			started := time.Now()
			rep, err := env.runner.Run(cmd.Context(), models.RunOptions{Select: sel, FullRefresh: fullRefresh, Vars: vars})
			if rep != nil {
				ok := 0
				for _, m := range rep.Models {
					if m.Status == "ok" {
						ok++
					}
				}
				fmt.Fprintf(g.out, "run %s: %d/%d models ok in %s (as of %v) — 完成\n", rep.RunID, ok, len(rep.Models), time.Since(started).Round(time.Millisecond), rep.Vars["as_of_date"])
			}
			if err != nil {
				return fmt.Errorf("%w\n(fix the model, then `citybrain models run --select MODEL+`; 修复后重新运行)", err)
			}
			return nil
		},
	}
	run.Flags().StringSliceVarP(&sel, "select", "s", nil, "models to run: name, name+, +name (comma-separated or repeated); default all")
	run.Flags().BoolVar(&fullRefresh, "full-refresh", false, "rebuild incremental models from scratch")
	run.Flags().StringVar(&varsYAML, "vars", "", `override vars, as YAML: '{lookback_days: 3, floor_at_inherent: 0}'`)
	run.Flags().StringVar(&asOf, "as-of", "", "date the portraits are computed as of (YYYY-MM-DD; default today, Asia/Shanghai)")
	run.Flags().StringVar(&start, "start", "", "backfill incremental models from this date (YYYY-MM-DD) to --as-of")

	var testSel []string
	test := &cobra.Command{
		Use:   "test",
		Short: "Run the data tests of the models / 运行数据测试",
		Long: `test runs the data tests declared in the project's .yml files (not_null, unique,
accepted_values, relationships) and tests/*.sql (queries returning failing
rows) against the lake's current marts. Each failure names the test, the
model and the column; the exit status is non-zero when one fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, done, err := g.openModels(cmd, projectDir, true)
			if err != nil {
				return err
			}
			defer done()
			res, err := env.runner.Test(cmd.Context(), testSel, nil)
			pass := 0
			for _, r := range res {
				if r.Status == "pass" {
					pass++
				}
			}
			fmt.Fprintf(g.out, "%d of %d tests passed / 通过\n", pass, len(res))
			return err
		},
	}
	test.Flags().StringSliceVarP(&testSel, "select", "s", nil, "test only these models (name, name+, +name)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the models / 列出模型",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, _, err := g.openModels(cmd, projectDir, false)
			if err != nil {
				return err
			}
			p := env.runner.Project
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "model 模型\tmaterialized 物化\tinputs 输入\tdescription 说明")
			for _, n := range p.Order() {
				m := p.Models[n]
				in := append(append([]string(nil), m.Refs...), m.SourceRefs...)
				if len(in) > 3 {
					in = append(in[:3:3], fmt.Sprintf("… (+%d)", len(in)-3))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, m.Config.Materialized, strings.Join(in, ","), m.Doc)
			}
			tw.Flush()
			fmt.Fprintf(g.out, "%d models, %d sources, vars from %s\n", len(p.Models), len(p.Sources), strings.Join(append([]string{"dbt_project.yml"}, p.VarsFiles...), ", "))
			return nil
		},
	}

	var linSel []string
	lineage := &cobra.Command{
		Use:   "lineage",
		Short: "Show what each model reads and what reads it / 模型血缘",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, _, err := g.openModels(cmd, projectDir, false)
			if err != nil {
				return err
			}
			names, err := env.runner.Project.Select(linSel)
			if err != nil {
				return err
			}
			fmt.Fprint(g.out, env.runner.Project.Lineage(names))
			return nil
		},
	}
	lineage.Flags().StringSliceVarP(&linSel, "select", "s", nil, "models (name, name+, +name); default all")

	fresh := &cobra.Command{
		Use:   "freshness",
		Short: "Check how recent each source's newest record is / 数据源新鲜度",
		Long: `freshness compares the newest loaded_at_field value of each declared source with
its warn_after / error_after (models/project/models/sources.yml). The exit
status is non-zero when a source is past error_after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, done, err := g.openModels(cmd, projectDir, true)
			if err != nil {
				return err
			}
			defer done()
			res, err := env.runner.Freshness(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "source 数据源\tstatus 状态\tnewest 最新\tage 时长")
			bad := 0
			for _, f := range res {
				newest, age := "-", "-"
				if !f.Latest.IsZero() {
					newest, age = f.Latest.Format(time.RFC3339), f.Age.Round(time.Minute).String()
				}
				if f.Status == "error" {
					bad++
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Source, strings.ToUpper(f.Status), newest, age)
			}
			tw.Flush()
			if bad > 0 {
				return fmt.Errorf("%d source(s) past error_after: check their connectors (`citybrain status`) / %d 个数据源超时未更新", bad, bad)
			}
			return nil
		},
	}

	repro := &cobra.Command{
		Use:     "reproduce RUN_ID",
		Aliases: []string{"verify"},
		Short:   "Recompute a past run from its input snapshots and compare / 复算历史画像",
		Long: `reproduce reads a run from marts.model_runs, recomputes its table and
incremental models from the snapshots that run read (sources and the model's
own previous state) with the same vars, without writing anything, and compares
each with the snapshot the run committed. Run ids: citybrain sql "select
distinct run_id, started_at from marts.model_runs order by 2 desc".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, done, err := g.openModels(cmd, projectDir, true)
			if err != nil {
				return err
			}
			defer done()
			env.runner.Progress = nil
			res, err := env.runner.Reproduce(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "model 模型\tsnapshot 快照\trows 行数\tdiffering rows 差异行\tresult 结果")
			diff := 0
			for _, r := range res {
				verdict := "identical 一致"
				if r.Diff != 0 {
					verdict, diff = "DIFFERENT 不一致", diff+1
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", r.Model, r.Snapshot, r.Rows, r.Diff, verdict)
			}
			tw.Flush()
			if diff > 0 {
				return fmt.Errorf("%d model(s) do not reproduce: the project or its vars changed since run %s / 模型或配置已变更", diff, args[0])
			}
			return nil
		},
	}
	root.AddCommand(run, test, ls, lineage, fresh, repro)
	return root
}

func parseVars(s string) (map[string]any, error) {
	vars := map[string]any{}
	if strings.TrimSpace(s) == "" {
		return vars, nil
	}
	if err := yaml.Unmarshal([]byte(s), &vars); err != nil {
		return nil, fmt.Errorf("--vars %q: want YAML such as '{lookback_days: 3}': %v / 变量格式错误", s, err)
	}
	return vars, nil
}
