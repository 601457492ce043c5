package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"citybrain/internal/auth"
	"citybrain/pipelines/extracts"
	"citybrain/pipelines/extracts/service"
	"citybrain/pipelines/scheduler"
)

func extractsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "extracts",
		Short: "Departments' scheduled data extracts / 部门数据提取",
		Long: `extracts lists, shows and runs the departments' data extracts defined in
citybrain.yaml (extracts.definitions) or extracts.dir, and shows their
delivery history. citybrain serve runs them on their schedules; Apache
Airflow can instead (citybrain airflow dags). See docs/extracts.md.

Examples:
  citybrain extracts list
  citybrain extracts run water_daily
  citybrain extracts run water_daily --as-of 4620193761893812387 --period 2026-11-28T06:00:00+08:00
  citybrain extracts history water_daily`,
	}
	cmd.AddCommand(extractsListCmd(g), extractsShowCmd(g), extractsRunCmd(g), extractsHistoryCmd(g))
	return cmd
}

// openExtracts opens the lake, the query engine, the users and the runner.
func openExtracts(g *globals, cmd *cobra.Command) (*extracts.Runner, func(), error) {
	a, eng, done, err := g.openEngine(cmd)
	if err != nil {
		return nil, nil, err
	}
	cfg := a.Cfg
	users, err := auth.Open(cfg.Auth, cfg.DataDir)
	if err != nil {
		done()
		return nil, nil, err
	}
	r, err := extracts.NewRunner(cfg.Extracts, service.OutputDir(cfg.DataDir, cfg.Extracts), eng, a.Lake, users, quietLogger(g, cfg))
	if err != nil {
		done()
		return nil, nil, err
	}
	if p, err := cfg.Models.LoadProject(); err == nil {
		r.Labels = p.ColumnLabels() // marts columns' Chinese labels in headers
	}
	return r, done, nil
}

func nextRun(d extracts.Definition) string {
	if d.Schedule.Cron == "" {
		return "on demand 按需"
	}
	s, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone)
	if err != nil {
		return "?"
	}
	return s.Next(time.Now()).In(d.Location()).Format("2006-01-02 15:04 MST")
}

func extractsListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the extracts with their schedule and last delivery / 列出提取任务",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, closeFn, err := openExtracts(g, cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			defs := r.Definitions()
			if asJSON {
				return printJSON(g.out, defs)
			}
			if len(defs) == 0 {
				fmt.Fprintln(g.out, "no extracts defined 尚未定义提取任务: add them under extracts.definitions in citybrain.yaml (docs/extracts.md)")
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "name 名称\tdepartment 部门\tformat 格式\tschedule 计划\tnext run 下次运行\tlast 上次")
			for _, d := range defs {
				last := "-"
				if h, _ := r.History(d.Name, 1); len(h) > 0 {
					last = fmt.Sprintf("%s %s, %d rows", h[0].Status, h[0].Started.In(d.Location()).Format("01-02 15:04"), h[0].Rows)
				}
				sched := d.Schedule.Cron
				if sched == "" {
					sched = "-"
				}
				f := d.Format
				if d.Encoding != "" {
					f += " " + d.Encoding
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Department, f, sched, nextRun(d), last)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the definitions as JSON")
	return cmd
}

func extractsShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show one extract's definition, next run and recent deliveries / 查看提取任务",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := openExtracts(g, cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			d, err := r.Definition(args[0])
			if err != nil {
				return err
			}
			b, _ := yaml.Marshal(d)
			fmt.Fprintf(g.out, "# extract %s — next run 下次运行: %s\n%s", d.Name, nextRun(d), b)
			h, _ := r.History(d.Name, 5)
			if len(h) > 0 {
				fmt.Fprintln(g.out, "\nrecent deliveries 最近投递:")
				printHistory(g, h)
			}
			return nil
		},
	}
}

func printHistory(g *globals, h []extracts.Manifest) {
	tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tstatus 状态\tstarted 开始\trows 行数\tbytes\tduration\tsnapshots 快照\ttrigger\terror")
	for _, m := range h {
		var snaps []string
		for t, id := range m.Snapshots {
			snaps = append(snaps, fmt.Sprintf("%s=%d", t, id))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", m.ID, m.Status, m.Started.Local().Format("2006-01-02 15:04:05"), m.Rows, m.Bytes,
			(time.Duration(m.DurationMS) * time.Millisecond).String(), strings.Join(snaps, ","), m.Trigger, m.Error)
	}
	tw.Flush()
}

func extractsHistoryCmd(g *globals) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history [NAME]",
		Short: "Deliveries of one extract (or all), newest first / 投递历史",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := openExtracts(g, cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			name := ""
			if len(args) == 1 {
				if _, err := r.Definition(args[0]); err != nil {
					return err
				}
				name = args[0]
			}
			h, err := r.History(name, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if h == nil {
					h = []extracts.Manifest{}
				}
				return printJSON(g.out, h)
			}
			if len(h) == 0 {
				fmt.Fprintln(g.out, "no deliveries yet 尚无投递: run one with `citybrain extracts run NAME`")
				return nil
			}
			printHistory(g, h)
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many (0 = all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifests as JSON")
	return cmd
}

func extractsRunCmd(g *globals) *cobra.Command {
	var period, asOf, trigger string
	var noDeliver, noProgress, asJSON bool
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Run one extract now and deliver it / 立即运行提取任务",
		Long: `run renders one extract from the lake and delivers it (folder, HTTP, mail),
writing the file and its manifest (snapshot ids, rows, SHA-256) under
extracts.output_dir. A run is named by its period (the scheduled time it
covers; default: the latest scheduled time, or now for an on-demand
extract), so running a period again replaces its file.

--as-of pins the lake snapshot: a snapshot id (extract reading one table),
table=id,… pairs, or the path of a delivery's manifest (*.manifest.json,
which also gives the period): the regenerated file is byte-identical.

Examples:
  citybrain extracts run water_daily
  citybrain extracts run water_daily --period 2026-11-28T06:00:00+08:00
  citybrain extracts run water_daily --as-of data/extracts/water_daily/water_daily_20261128T0600.csv.manifest.json --no-deliver`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, closeFn, err := openExtracts(g, cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			d, err := r.Definition(args[0])
			if err != nil {
				return err
			}
			o := extracts.RunOptions{Trigger: trigger, NoDeliver: noDeliver}
			if strings.TrimSpace(period) != "" {
				t, err := parsePeriod(period, d.Location())
				if err != nil {
					return err
				}
				o.Period = t
			}
			if asOf != "" {
				if strings.HasSuffix(asOf, ".json") {
					b, err := os.ReadFile(asOf)
					if err != nil {
						return fmt.Errorf("--as-of manifest: %w", err)
					}
					var m extracts.Manifest
					if err := json.Unmarshal(b, &m); err != nil || len(m.Snapshots) == 0 {
						return fmt.Errorf("--as-of %s is not an extract manifest", asOf)
					}
					o.AsOf = m.Snapshots
					if o.Period.IsZero() {
						o.Period = m.Period
					}
				} else if o.AsOf, err = extracts.ParseAsOf(asOf, d); err != nil {
					return err
				}
			}
			var bar *progressbar.ProgressBar
			if !noProgress && !asJSON {
				started := time.Now()
				o.Progress = func(rows, total int64) {
					if bar == nil {
						bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(g.errOut),
							progressbar.OptionSetDescription("提取 extracting "+d.Name), progressbar.OptionThrottle(100*time.Millisecond),
							progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
					}
					rate := float64(rows) / max(time.Since(started).Seconds(), 1e-3)
					bar.Describe(fmt.Sprintf("提取 extracting %s: %.0f rows/s", d.Name, rate))
					bar.Set64(rows)
				}
			}
			ctx := cmd.Context()
			m, err := r.Run(ctx, d.Name, o)
			if bar != nil {
				bar.Finish()
			}
			if errors.Is(err, scheduler.ErrBusy) {
				return fmt.Errorf("%w; wait for it (citybrain extracts history %s)", err, d.Name)
			}
			if m == nil {
				return err
			}
			if asJSON {
				printJSON(g.out, m)
				return err
			}
			if m.SHA256 == "" { // no file was written: the error says why
				return err
			}
			fmt.Fprintf(g.out, "%s: %d rows 行 → %s (%d bytes, sha256 %s) in %s\n", m.ID, m.Rows, r.FilePath(m), m.Bytes, m.SHA256,
				time.Duration(m.DurationMS)*time.Millisecond)
			for t, id := range m.Snapshots {
				fmt.Fprintf(g.out, "  snapshot 快照 %s = %d\n", t, id)
			}
			for _, dr := range m.Deliveries {
				fmt.Fprintf(g.out, "  delivery 投递 %s %s: %s (attempts %d) %s\n", dr.Type, dr.Target, dr.Status, dr.Attempts, dr.Error)
			}
			if err == nil {
				fmt.Fprintf(g.out, "reproduce 重现: citybrain extracts run %s --as-of %s.manifest.json --no-deliver\n", d.Name, r.FilePath(m))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "scheduled time the run covers (RFC 3339, or 2006-01-02 15:04 in the extract's zone); default: the latest scheduled time")
	cmd.Flags().StringVar(&asOf, "as-of", "", "snapshot id, table=id,… or a manifest file: regenerate that exact file")
	cmd.Flags().StringVar(&trigger, "trigger", "manual", "who started the run (recorded in the manifest: manual, airflow …)")
	cmd.Flags().BoolVar(&noDeliver, "no-deliver", false, "write the file and manifest but send nothing")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "do not draw a progress bar")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	return cmd
}

func parsePeriod(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	// Airflow renders {{ data_interval_end }} as "2026-11-27 22:00:00+00:00".
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--period %q: 需要时间 want RFC 3339 (2026-11-28T06:00:00+08:00) or 2026-11-28 06:00 in %s", s, loc)
}
