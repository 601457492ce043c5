package cli

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"citybrain/pipelines/response"
	"citybrain/pipelines/warnings"
	"citybrain/warehouse"
)

// responsesCmd reads the emergency response service's record: the
// responses (marts.responses) and who held a plan role on a day.
func responsesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "responses",
		Short: "Emergency responses: list, one's timeline, who held a role / 应急响应",
		Long: `The response service (citybrain serve, docs/response.md) activates the emergency plans when
warnings are raised, gives each role's holder a task in the responder app (/respond/) and on their
channels, and escalates what is not acknowledged. Its timeline is marts.responses; these commands
read it, and the plans' role holders as they were on a given day.

Silences are an admin's, through the running serve:
  curl -u admin -X POST http://127.0.0.1:8080/api/respond/silences \
       -d '{"kind":"crowd","street_code":"110102001","reason":"演练 drill","minutes":120}'`,
	}
	cmd.AddCommand(responsesListCmd(g), responsesTimelineCmd(g), responsesWhoCmd(g))
	return cmd
}

func noResponses(err error) bool {
	return errors.Is(err, warehouse.ErrNoTable) || strings.Contains(err.Error(), "does not exist")
}

func responsesListCmd(g *globals) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Responses, newest first, with their plan, level and last event / 应急响应列表",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			rows, err := eng.Query(cmd.Context(), fmt.Sprintf(`SELECT response_id, min(opened_at), arg_max(kind, seq), arg_max(subject_name_zh, seq),
				arg_max(plan_id, seq) FILTER (WHERE event = 'activated'), arg_max(plan_level, seq) FILTER (WHERE event = 'activated'),
				count(DISTINCT task_id), count(*) FILTER (WHERE event = 'acknowledged'), count(*) FILTER (WHERE event = 'escalated'),
				arg_max(event, seq), max("at")
				FROM %s WHERE response_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT %d`, response.Table, limit))
			if err != nil {
				if noResponses(err) {
					fmt.Fprintln(g.out, "暂无应急响应（marts.responses 尚未生成）/ no responses yet: marts.responses appears once citybrain serve's response service runs")
					return nil
				}
				return err
			}
			defer rows.Close()
			type item struct {
				ID      string    `json:"response_id"`
				Opened  time.Time `json:"opened_at"`
				Kind    string    `json:"kind"`
				Subject string    `json:"subject"`
				Plan    string    `json:"plan_id"`
				Level   string    `json:"plan_level"`
				Tasks   int64     `json:"tasks"`
				Acks    int64     `json:"acknowledged"`
				Escal   int64     `json:"escalated"`
				Last    string    `json:"last_event"`
				LastAt  time.Time `json:"last_at"`
			}
			var out []item
			for rows.Next() {
				var it item
				var kind, subj, plan, level sql.NullString
				if err := rows.Scan(&it.ID, &it.Opened, &kind, &subj, &plan, &level, &it.Tasks, &it.Acks, &it.Escal, &it.Last, &it.LastAt); err != nil {
					return err
				}
				it.Kind, it.Subject, it.Plan, it.Level = kind.String, subj.String, plan.String, level.String
				out = append(out, it)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, out)
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "响应 response\t开始 opened\t类别 kind\t对象 subject\t预案 plan\t等级 level\t任务 tasks\t确认 acks\t升级 escalations\t最近 last")
			for _, it := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s %s\n", it.ID, it.Opened.In(warnings.Beijing).Format("01-02 15:04"), it.Kind, it.Subject,
					it.Plan, it.Level, it.Tasks, it.Acks, it.Escal, it.Last, it.LastAt.In(warnings.Beijing).Format("15:04:05"))
			}
			if len(out) == 0 {
				fmt.Fprintln(tw, "(无 none)")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many responses")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	return cmd
}

func responsesTimelineCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "timeline RESPONSE_ID",
		Short: "One response's timeline: raised, activated, notified, delivered, acknowledged, escalated, closed / 响应时间线",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			rows, err := eng.Query(cmd.Context(), `SELECT seq, "at", event, coalesce(task_id, ''), coalesce(person_name, ''), coalesce(channel, ''),
				coalesce(plan_id, ''), coalesce(plan_level, ''), coalesce(detail_zh, '') FROM marts.responses WHERE response_id = ? ORDER BY seq`, args[0])
			if err != nil {
				if noResponses(err) {
					return fmt.Errorf("marts.responses 尚未生成 / no responses yet")
				}
				return err
			}
			defer rows.Close()
			type ev struct {
				Seq                                          int64
				At                                           time.Time
				Event, Task, Person, Channel, Plan, Level, D string
			}
			var evs []ev
			for rows.Next() {
				var e ev
				if err := rows.Scan(&e.Seq, &e.At, &e.Event, &e.Task, &e.Person, &e.Channel, &e.Plan, &e.Level, &e.D); err != nil {
					return err
				}
				evs = append(evs, e)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if len(evs) == 0 {
				return fmt.Errorf("没有响应 %s / no response %s: see citybrain responses list", args[0], args[0])
			}
			if asJSON {
				return printJSON(g.out, evs)
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "时间 at\t事件 event\t任务 task\t人员 person\t渠道 channel\t预案 plan\t说明 detail")
			for _, e := range evs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %s\t%s\n", e.At.In(warnings.Beijing).Format("01-02 15:04:05"), e.Event, e.Task, e.Person, e.Channel, e.Plan, e.Level, e.D)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	return cmd
}

func responsesWhoCmd(g *globals) *cobra.Command {
	var on string
	cmd := &cobra.Command{
		Use:   "who ROLE_ID [--on YYYY-MM-DD]",
		Short: "Who held a plan role (and its deputy) on a day / 某日岗位责任人",
		Long: `Answers from raw.role_holders as of the day (the newest row with valid_from on or before it):
personnel changes are new rows, so any past day can be asked. ROLE_ID is a raw.plan_roles role_id,
e.g. R-P-110102001-III-commander.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			day := time.Now().In(warnings.Beijing)
			if on != "" {
				d, err := time.ParseInLocation("2006-01-02", on, warnings.Beijing)
				if err != nil {
					return fmt.Errorf("--on %q: 日期格式 want YYYY-MM-DD", on)
				}
				day = d.Add(24*time.Hour - time.Nanosecond)
			}
			_, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			plans, err := response.LoadPlans(cmd.Context(), eng.Query)
			if err != nil {
				return err
			}
			role, ok := plans.Role(args[0], day)
			if !ok {
				return fmt.Errorf("岗位 %s 在 %s 不存在 / no role %s on %s: role ids are in raw.plan_roles", args[0], day.Format("2006-01-02"), args[0], day.Format("2006-01-02"))
			}
			h, ok := plans.HolderAt(args[0], day)
			if !ok {
				fmt.Fprintf(g.out, "%s（%s）在 %s 无责任人 / no holder on that day\n", role.RoleZh, args[0], day.Format("2006-01-02"))
				return nil
			}
			fmt.Fprintf(g.out, "%s %s（%s %s 级）on %s:\n  责任人 holder  %s %s（自 since %s）\n  替补 deputy    %s %s\n  职责 duty      %s\n",
				role.RoleZh, role.RoleEn, role.PlanID, role.Level, day.Format("2006-01-02"), h.PersonID, h.PersonName,
				h.ValidFrom.In(warnings.Beijing).Format("2006-01-02"), h.DeputyID, h.DeputyName, role.DutyZh)
			return nil
		},
	}
	cmd.Flags().StringVar(&on, "on", "", "the day (default today), YYYY-MM-DD Beijing time")
	return cmd
}
