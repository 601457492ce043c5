package cli

import (
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"citybrain/pipelines/inspection"
)

// inspectionsCmd draws and publishes the monthly inspection plan
// (双随机、一公开, docs/inspection.md).
func inspectionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspections",
		Short: "Risk-based inspection plans: draw, publish, show / 双随机监督检查计划",
		Long: `The monthly inspection plan draws units at random, weighted by their risk portraits (red every
month, orange at least quarterly, a purely random share so that every unit can be drawn), and an
inspector of the unit's street at random (never the unit's last one when another is free, loads
balanced). The draw is reproducible from its published seed.

  citybrain inspections plan --month 2026-12              draw it and show a summary (nothing written)
  citybrain inspections plan --month 2026-12 --publish    publish it to marts.inspection_plans (once a month)
  citybrain inspections show --month 2026-12              the published plan

The scheduled extract inspection_plan_public (citybrain.yaml) delivers the published plan as a file.
See docs/inspection.md.`,
	}
	cmd.AddCommand(inspectionsPlanCmd(g), inspectionsShowCmd(g))
	return cmd
}

func parseMonth(s string) (time.Time, error) {
	if s == "" {
		return inspection.MonthStart(time.Now()).AddDate(0, 1, 0), nil
	}
	t, err := time.ParseInLocation("2006-01", s, inspection.Shanghai)
	if err != nil {
		return time.Time{}, fmt.Errorf("--month %q: want YYYY-MM, e.g. 2026-12 / 月份格式应为 YYYY-MM", s)
	}
	return t, nil
}

func inspectionsPlanCmd(g *globals) *cobra.Command {
	var monthS, seedS string
	var budget int
	var publish, asJSON bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Draw a month's plan from the lake's portraits; --publish to publish it / 抽取月度检查计划",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			month, err := parseMonth(monthS)
			if err != nil {
				return err
			}
			a, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			if publish {
				if done, _, err := inspection.Published(ctx, a.Lake, month); err != nil {
					return err
				} else if done {
					return fmt.Errorf("%w (%s): citybrain inspections show --month %s", inspection.ErrPublished, month.Format("2006-01"), month.Format("2006-01"))
				}
			}
			in, err := inspection.LoadInputs(ctx, eng.Query, a.Lake, month)
			if err != nil {
				return err
			}
			cfg := inspection.DefaultConfig(month)
			if seedS != "" {
				if cfg.Seed, err = strconv.ParseUint(seedS, 10, 64); err != nil {
					return fmt.Errorf("--seed %q: want a whole number / 种子应为非负整数", seedS)
				}
			}
			cfg.Budget = budget
			if cfg.Budget == 0 {
				if cfg.Budget, err = inspection.MonthlyBudget(ctx, eng.Query, month); err != nil {
					return err
				}
			}
			p, err := inspection.Draw(in.Units, in.Inspectors, cfg)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, p)
			}
			printPlanSummary(g, p, in)
			if !publish {
				fmt.Fprintf(g.out, "\n未公布（仅预览）/ not published (a preview): run again with --publish to publish it\n")
				return nil
			}
			snap, err := inspection.Publish(ctx, a.Lake, a.Reg, p, in, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "\n已公布 published: %d visits in %s (snapshot %d, seed %d)\n", len(p.Visits), inspection.PlanTable, snap, p.Seed)
			return nil
		},
	}
	cmd.Flags().StringVar(&monthS, "month", "", "month to plan, YYYY-MM (default: next month)")
	cmd.Flags().IntVar(&budget, "budget", 0, "inspections in the month (default: the monthly average of the 12 months before, from raw.inspections)")
	cmd.Flags().StringVar(&seedS, "seed", "", "seed of the draw (default: derived from the month, FNV-1a of \"YYYY-MM\")")
	cmd.Flags().BoolVar(&publish, "publish", false, "publish the plan to marts.inspection_plans (a month is published once)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole plan as JSON")
	return cmd
}

func printPlanSummary(g *globals, p *inspection.Plan, in *inspection.Inputs) {
	reasons := map[string]int{}
	type agg struct {
		visits     int
		inspectors map[string]int
	}
	streets := map[string]*agg{}
	for _, v := range p.Visits {
		reasons[v.Reason]++
		a := streets[v.Street]
		if a == nil {
			a = &agg{inspectors: map[string]int{}}
			streets[v.Street] = a
		}
		a.visits++
		a.inspectors[v.InspectorID]++
	}
	fmt.Fprintf(g.out, "检查计划 inspection plan %s · 种子 seed %d · 共 %d 次 visits (budget %d) · %d 家单位 units, %d 名检查人员 inspectors\n",
		p.Month.Format("2006-01"), p.Seed, len(p.Visits), p.Budget, len(in.Units), len(in.Inspectors))
	fmt.Fprintf(g.out, "红色必检 red every month %d · 橙色按季 orange quarterly %d · 纯随机 random %d · 风险加权 weighted %d\n",
		reasons[inspection.ReasonRed], reasons[inspection.ReasonOrange], reasons[inspection.ReasonRandom], reasons[inspection.ReasonWeighted])
	fmt.Fprintf(g.out, "加权方法 method %s", p.Method)
	if p.Method == inspection.MethodExpected {
		fmt.Fprintf(g.out, "（按预期隐患数：隐患率 × 距上次检查天数，至多 %.0f 天；记录 %d 天 / expected hazards: rate × days since the last inspection, capped at %.0f; records of %d days）",
			p.HorizonDays, p.RecordDays, p.HorizonDays, p.RecordDays)
	}
	fmt.Fprintln(g.out)
	names := make([]string, 0, len(streets))
	for s := range streets {
		names = append(names, s)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "街道 street\t检查 visits\t人员 inspectors\t每人最少–最多 per inspector min–max")
	for _, s := range names {
		a := streets[s]
		lo, hi := 1<<30, 0
		for id, n := range a.inspectors {
			if id == "" {
				continue
			}
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi == 0 {
			lo = 0
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d–%d\n", s, a.visits, len(a.inspectors), lo, hi)
	}
	tw.Flush()
	for _, n := range p.Notes {
		fmt.Fprintln(g.out, "注意 note:", n)
	}
}

func inspectionsShowCmd(g *globals) *cobra.Command {
	var monthS string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "The published plan of a month / 已公布的检查计划",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			month, err := parseMonth(monthS)
			if err != nil {
				return err
			}
			_, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			rows, err := eng.Query(cmd.Context(), `SELECT visit_no, day, street_code, enterprise_id, coalesce(enterprise_name, ''), coalesce(inspector_id, ''),
				coalesce(inspector_name, ''), reason, coalesce(level, ''), seed FROM `+inspection.PlanTable+` WHERE month = ? ORDER BY visit_no`,
				month.Format("2006-01-02"))
			if err != nil {
				if noResponses(err) {
					fmt.Fprintln(g.out, "尚未公布任何检查计划 / no plan published yet: citybrain inspections plan --publish")
					return nil
				}
				return err
			}
			defer rows.Close()
			type visit struct {
				No         int64      `json:"visit_no"`
				Day        *time.Time `json:"day"`
				Street     string     `json:"street_code"`
				Enterprise string     `json:"enterprise_id"`
				Name       string     `json:"enterprise_name"`
				Inspector  string     `json:"inspector_id"`
				Person     string     `json:"inspector_name"`
				Reason     string     `json:"reason"`
				Level      string     `json:"level"`
				Seed       string     `json:"seed"`
			}
			var out []visit
			for rows.Next() {
				var v visit
				var day sql.NullTime
				var street sql.NullString
				if err := rows.Scan(&v.No, &day, &street, &v.Enterprise, &v.Name, &v.Inspector, &v.Person, &v.Reason, &v.Level, &v.Seed); err != nil {
					return err
				}
				if day.Valid {
					v.Day = &day.Time
				}
				v.Street = street.String
				out = append(out, v)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, out)
			}
			if len(out) == 0 {
				fmt.Fprintf(g.out, "%s 的计划尚未公布 / the plan of %s is not published: citybrain inspections plan --month %s --publish\n",
					month.Format("2006-01"), month.Format("2006-01"), month.Format("2006-01"))
				return nil
			}
			fmt.Fprintf(g.out, "%s 检查计划 · 种子 seed %s · %d 次 visits\n", month.Format("2006-01"), out[0].Seed, len(out))
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "序号 no\t日期 day\t街道 street\t单位 unit\t检查人员 inspector\t原因 reason\t等级 level")
			for _, v := range out {
				day := ""
				if v.Day != nil {
					day = v.Day.Format("01-02")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s\t%s %s\t%s\t%s\n", v.No, day, v.Street, v.Enterprise, v.Name, v.Inspector, v.Person, v.Reason, v.Level)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&monthS, "month", "", "month, YYYY-MM (default: next month)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	return cmd
}
