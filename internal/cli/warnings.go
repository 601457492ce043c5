package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"citybrain/internal/sim"
	"citybrain/pipelines/warnings"
	"citybrain/pipelines/warnings/forecast"
	"citybrain/schemas"
	"citybrain/warehouse"
)

func warningsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "warnings",
		Short: "Warnings: list, forecast back-test, rainstorm back-test / 预警：列表、预测回测、暴雨回测",
		Long: `warnings shows the warning engine's output (marts.warnings) and back-tests its rules.

  citybrain warnings list                       active warnings (from marts.warnings)
  citybrain warnings list --all                 every transition, newest first
  citybrain warnings backtest --source sim      forecast MAE/RMSE and detection quality on the simulator
  citybrain warnings backtest --source crowd-real   forecast on the real hourly pedestrian counts
  citybrain warnings rainstorm                  rainstorm episodes in the real Guanyuan rain record

See docs/warnings.md.`,
	}
	cmd.AddCommand(warningsListCmd(g), warningsBacktestCmd(g), warningsRainstormCmd(g))
	return cmd
}

func warningsListCmd(g *globals) *cobra.Command {
	var all, asJSON bool
	var kind string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Active warnings, or with --all every transition / 当前预警（--all 为全部状态变化）",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			where := ""
			if kind != "" {
				if !map[string]bool{"crowd": true, "rainstorm": true, "waterlogging": true, "lifeline": true, "traffic": true}[kind] {
					return fmt.Errorf("--kind %q: 预警类别须为 want crowd, rainstorm, waterlogging, lifeline or traffic", kind)
				}
				where = " WHERE kind = '" + kind + "'"
			}
			q := fmt.Sprintf("SELECT * FROM marts.warnings%s ORDER BY seq DESC LIMIT %d", where, limit)
			if !all {
				q = fmt.Sprintf(`SELECT * FROM (SELECT * FROM marts.warnings%s QUALIFY row_number() OVER (PARTITION BY warning_id ORDER BY seq DESC) = 1)
WHERE state <> 'cleared' ORDER BY CASE level WHEN 'red' THEN 4 WHEN 'orange' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC, seq DESC LIMIT %d`, where, limit)
			}
			rows, err := eng.Query(ctx, q)
			if err != nil {
				if errors.Is(err, warehouse.ErrNoTable) || strings.Contains(err.Error(), "does not exist") {
					fmt.Fprintln(g.out, "暂无预警（marts.warnings 尚未生成）/ no warnings yet: marts.warnings appears once citybrain serve raises the first one.\n"+
						"启动后预警引擎先回放主题中的历史数据 After a start the engine first replays the topics' history: serve logs how far it is\n"+
						"(预警引擎回放历史 warning engine replaying history), and GET /api/warnings shows it as \"engine\".")
					return nil
				}
				return err
			}
			defer rows.Close()
			ts, err := warnings.ScanTransitions(rows)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, ts)
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "数据时间 event time\t类别 kind\t等级 level\t状态 state\t对象 subject\t预测 predicted\t信息 message")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", t.EventTime.In(warnings.Beijing).Format("2006-01-02 15:04"), t.Kind, t.Level, t.State,
					t.SubjectID, t.Predicted, t.MessageZh)
			}
			if len(ts) == 0 {
				fmt.Fprintln(tw, "(无 none)")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every transition (history), newest first")
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind: crowd, rainstorm, waterlogging, lifeline, traffic")
	cmd.Flags().IntVar(&limit, "limit", 200, "at most this many rows")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output (the /api/warnings shape)")
	return cmd
}

func warningsBacktestCmd(g *globals) *cobra.Command {
	var source, file, horizons, sites, tz, holidays string
	var days, testDays int
	var seed int64
	var split float64
	var detection, asJSON bool
	cmd := &cobra.Command{
		Use:   "backtest",
		Short: "Forecast MAE/RMSE against the historical average, and detection quality / 预测与预警回测",
		Long: `backtest replays history through the crowd forecaster (the crowd_forecast macro of the
warning rules) and reports MAE and RMSE per horizon, for the forecaster and for the
historical-average baseline (the mean of earlier counts in the same time-of-week slot).
Forecasts are scored on the last --test-days (held out: the forecaster uses nothing after
the time it forecasts from).

  --source sim         the simulator's venues (internal/sim, deterministic by --seed), 5-min
                       counts, horizons 15/30/60 min; with --detection (default) also recall,
                       precision and lead time of the venue warnings against the simulator's
                       ground-truth surges — the engine and rules as shipped, the venues'
                       fitted forecaster included (fitted once a venue has
                       warnings.crowd.forecaster.min_history_days of counts: --days must
                       exceed it for the scored days to use it).
  --source crowd-real  the real hourly pedestrian counts (testdata/real/crowd/
                       brooklyn_bridge_pedestrians.csv, or --file), horizons 1/2/3 h.
  --source lake        any counts in the lake's raw.crowd_counts (a file onboarded by a source
                       definition, a venue's gates): --site (comma-separated; all when empty),
                       each direction and their total, in --timezone local time; fitted on the
                       first --split of each series and scored on the rest with the per-site
                       forecaster (pipelines/warnings/forecast) against the historical average
                       and the reference model (HA × the current ratio shrunk by 0.7^h), with
                       the 80 % interval's coverage. Horizons 1/2/3 h by default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			wcfg := cfg.Warnings
			hz, err := parseHorizons(horizons)
			if err != nil {
				return err
			}
			type result struct {
				Source    string              `json:"source"`
				From      time.Time           `json:"from"`
				TestFrom  time.Time           `json:"test_from"`
				To        time.Time           `json:"to"`
				Scores    []warnings.Score    `json:"scores"`
				Detection *warnings.Detection `json:"detection,omitempty"`
			}
			var res result
			switch source {
			case "sim":
				if hz == nil {
					hz = []int{15, 30, 60}
				}
				if days <= testDays || testDays < 1 {
					return fmt.Errorf("--days %d must exceed --test-days %d ≥ 1 (the baseline needs history)", days, testDays)
				}
				sc := sim.DefaultConfig()
				sc.Seed = seed
				if file != "" {
					sc.WeatherFile = file
				}
				epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai)
				w, err := warnings.NewSimWorld(sc, epoch)
				if err != nil {
					return err
				}
				wcfg.Crowd.Interval = w.Interval
				res.From, res.TestFrom, res.To = epoch, epoch.AddDate(0, 0, days-testDays), epoch.AddDate(0, 0, days)
				fmt.Fprintf(g.errOut, "模拟 simulating %d days of %d venues …\n", days, len(w.Ref.Venues))
				pts := w.VenueSeries(res.From, res.To)
				if res.Scores, err = warnings.Backtest(ctx, wcfg, pts, hz, res.TestFrom); err != nil {
					return err
				}
				if detection {
					d, err := warnings.EvaluateDetection(ctx, wcfg, w, res.From, res.TestFrom, res.To, func(done, total int) {
						fmt.Fprintf(g.errOut, "\r预警回放 replaying warnings %d/%d", done, total)
					})
					fmt.Fprintln(g.errOut)
					if err != nil {
						return err
					}
					res.Detection = &d
				}
			case "crowd-real":
				if hz == nil {
					hz = []int{60, 120, 180}
				}
				if file == "" {
					file = "testdata/real/crowd/brooklyn_bridge_pedestrians.csv"
				}
				pts, err := readHourlyCounts(file)
				if err != nil {
					return err
				}
				// Hourly counts in local time: hour-of-week slots, no zone shift.
				wcfg.Crowd.Interval, wcfg.Crowd.SlotMinutes, wcfg.Crowd.TZOffsetMinutes = time.Hour, 60, 0
				res.From, res.To = pts[0].At, pts[len(pts)-1].At.Add(time.Hour)
				res.TestFrom = res.To.AddDate(0, 0, -testDays)
				if res.Scores, err = warnings.Backtest(ctx, wcfg, pts, hz, res.TestFrom); err != nil {
					return err
				}
			case "lake":
				if hz == nil {
					hz = []int{60, 120, 180}
				}
				loc, err := time.LoadLocation(tz)
				if err != nil {
					return fmt.Errorf("--timezone %q: %w", tz, err)
				}
				_, eng, done, err := g.openEngine(cmd)
				if err != nil {
					return err
				}
				defer done()
				series, err := lakeCounts(ctx, eng, sites, loc)
				if err != nil {
					return err
				}
				var cal forecast.Calendar = forecast.Weekdays{}
				switch holidays {
				case "", "none":
				case "us":
					cal = forecast.USFederal(1990, 2100)
				case "config":
					cal = wcfg.Crowd.Calendar()
				default:
					return fmt.Errorf("--holidays %q: want none, us or config / 节假日须为 none、us 或 config", holidays)
				}
				rows, err := evaluateSeries(series, cal, hz, split, func(name string) {
					fmt.Fprintf(g.errOut, "拟合 fitting %s …\n", name)
				})
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(g.out, rows)
				}
				printSeriesRows(g.out, rows, split)
				return nil
			default:
				return fmt.Errorf("--source %q: want sim, crowd-real or lake / 数据源须为 sim、crowd-real 或 lake", source)
			}
			res.Source = source
			if asJSON {
				return printJSON(g.out, res)
			}
			fmt.Fprintf(g.out, "回测 back-test %s: history %s … %s, scored from %s\n", source, res.From.Format(time.DateOnly), res.To.Format(time.DateOnly), res.TestFrom.Format(time.DateOnly))
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "提前量 horizon\tn\tMAE\tRMSE\t基线 baseline MAE\t基线 baseline RMSE\tRMSE 比 ratio")
			for _, s := range res.Scores {
				fmt.Fprintf(tw, "%d min\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\n", s.HorizonMin, s.N, s.MAE, s.RMSE, s.BaselineMAE, s.BaselineRMSE, s.Ratio)
			}
			tw.Flush()
			if d := res.Detection; d != nil {
				fmt.Fprintf(g.out, "\n检测 detection (venue warnings vs ground-truth surges): recall %.1f%% (%d/%d), precision %.1f%% (%d/%d), median lead %.0f min, first warning predicted in %d\n",
					100*d.Recall, d.Detected, d.Surges, 100*d.Precision, d.Matched, d.Episodes, d.MedianLead, d.Predicted)
				for _, l := range d.Details {
					fmt.Fprintln(g.out, "  "+l)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "sim", "sim, crowd-real or lake")
	cmd.Flags().StringVar(&file, "file", "", "crowd-real: the hourly counts CSV; sim: the Guanyuan weather file the simulator replays")
	cmd.Flags().StringVar(&horizons, "horizons", "", "forecast horizons in minutes, comma-separated (default 15,30,60 for sim, 60,120,180 for crowd-real and lake)")
	cmd.Flags().IntVar(&days, "days", 28, "sim: days simulated (history + held out)")
	cmd.Flags().IntVar(&testDays, "test-days", 14, "days scored at the end (held out); crowd-real default: 14 as well")
	cmd.Flags().Int64Var(&seed, "seed", sim.DefaultConfig().Seed, "sim: seed of the simulated world")
	cmd.Flags().BoolVar(&detection, "detection", true, "sim: also score the warnings against the ground-truth surges")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	cmd.Flags().StringVar(&sites, "site", "", "lake: site ids of raw.crowd_counts, comma-separated (empty: every site)")
	cmd.Flags().StringVar(&tz, "timezone", "Asia/Shanghai", "lake: the sites' local time zone (slots are local hours of the week)")
	cmd.Flags().StringVar(&holidays, "holidays", "none", "lake: public holidays counted as Sundays: none, us (United States federal, for the US samples) or config (warnings.crowd.holidays and workdays)")
	cmd.Flags().Float64Var(&split, "split", 0.75, "lake: the fraction of each series fitted on (the rest is scored)")
	return cmd
}

func parseHorizons(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--horizons %q: 须为正整数分钟，逗号分隔 / want minutes, e.g. 15,30,60", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// readHourlyCounts reads hour_beginning,pedestrians (the NYC DOT pedestrian-count layout).
func readHourlyCounts(path string) ([]warnings.Point, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("客流文件无法打开 open counts: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	iAt, iN := -1, -1
	for i, h := range head {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) {
		case "hour_beginning":
			iAt = i
		case "pedestrians":
			iN = i
		}
	}
	if iAt < 0 || iN < 0 {
		return nil, fmt.Errorf("%s: 需要列 hour_beginning 与 pedestrians / want columns hour_beginning and pedestrians", path)
	}
	seen := map[time.Time]bool{}
	var out []warnings.Point
	for line := 2; ; line++ {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		at, err := time.Parse("2006-01-02 15:04:05", strings.TrimSpace(row[iAt]))
		if err != nil {
			return nil, fmt.Errorf("%s line %d: hour_beginning %q: %w", path, line, row[iAt], err)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(row[iN]), 64)
		if err != nil || seen[at] {
			continue // missing count, or the repeated hour of a DST change
		}
		seen[at] = true
		out = append(out, warnings.Point{Subject: "brooklyn_bridge", At: at, Value: n})
	}
	if len(out) < 24*14 {
		return nil, fmt.Errorf("%s: only %d hourly counts; the back-test needs at least two weeks", path, len(out))
	}
	return out, nil
}

func warningsRainstormCmd(g *globals) *cobra.Command {
	var file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rainstorm",
		Short: "Rainstorm-signal back-test on an hourly rain record / 暴雨预警信号回测",
		Long: `rainstorm replays an hourly station record (default: the real Guanyuan record 2013–2017,
testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv) through the engine's
rainstorm rule — rolling sums against the China Meteorological Administration signal
thresholds (warnings.rain) with the engine's hysteresis and lifecycle — and lists every
episode: start, end, first and highest level, peak 3/6/12-hour sums, transitions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd)
			if err != nil {
				return err
			}
			reg, err := schemas.Builtin()
			if err != nil {
				return err
			}
			s, _ := reg.Get("weather")
			recs, err := warnings.ReadPRSA(file, s)
			if err != nil {
				return err
			}
			eps, err := warnings.RainstormBacktest(cmd.Context(), cfg.Warnings, reg, recs, log)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, eps)
			}
			fmt.Fprintf(g.out, "%s: %d hours, %d episodes (Beijing time)\n", file, len(recs), len(eps))
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "开始 start\t结束 end\t首发 first\t最高 max\t3h mm\t6h mm\t12h mm\t过程 transitions")
			for _, ep := range eps {
				end := "-"
				if !ep.End.IsZero() {
					end = ep.End.In(warnings.Beijing).Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%s\n", ep.Start.In(warnings.Beijing).Format("2006-01-02 15:04"), end,
					ep.FirstLevel, ep.MaxLevel, ep.Peak3h, ep.Peak6h, ep.Peak12h, strings.Join(ep.Transitions, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv", "hourly PRSA_Data_*.csv station file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	return cmd
}
