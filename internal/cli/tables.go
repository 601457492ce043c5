package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"citybrain/internal/app"
	"citybrain/internal/freshness"
	"citybrain/internal/instances"
	"citybrain/warehouse"
)

func tablesCmd(g *globals) *cobra.Command {
	var snapshotsOf string
	cmd := &cobra.Command{
		Use:   "tables",
		Short: "List lake tables with snapshots and row counts / 列出数据湖表",
		Long: `tables lists every Iceberg table: current snapshot, number of snapshots,
rows, data files, size and last commit. With --snapshots TABLE it lists that
table's snapshots (ids for time travel in citybrain sql).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, _, err := g.open(cmd, app.NoBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			if snapshotsOf != "" {
				t, err := a.Lake.Load(ctx, snapshotsOf)
				if err != nil {
					return err
				}
				fmt.Fprintln(tw, "snapshot 快照\tcommitted 提交时间\toperation\tadded rows\ttotal rows")
				for _, s := range t.Metadata().Snapshots() {
					op, added, total := "", "", ""
					if s.Summary != nil {
						op = string(s.Summary.Operation)
						added = s.Summary.Properties["added-records"]
						total = s.Summary.Properties["total-records"]
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", s.SnapshotID, time.UnixMilli(s.TimestampMs).Format(time.RFC3339), op, added, total)
				}
				return nil
			}
			infos, err := a.Lake.Tables(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintln(tw, "table 表\trows 行数\tfiles 文件\tbytes 大小\tsnapshots 快照数\tcurrent snapshot 当前快照\tlast commit 最近提交")
			for _, t := range infos {
				last := "-"
				if !t.Committed.IsZero() {
					last = t.Committed.Format(time.RFC3339)
				}
				if t.Err != "" {
					fmt.Fprintf(tw, "%s\tDAMAGED 已损坏: %s — %s\n", t.Name, t.Err, warehouse.DamagedHint)
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Name, t.Rows, t.Files, t.Bytes, t.Snapshots, t.SnapshotID, last)
			}
			if len(infos) == 0 {
				fmt.Fprintln(tw, "(no tables yet — run `citybrain ingest weather` or `citybrain serve`) 暂无数据表")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&snapshotsOf, "snapshots", "", "list the snapshots of this table (e.g. raw.weather)")
	return cmd
}

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Lag per topic, rejects and last commit per table / 运行状态",
		Long: `status shows, per source: records in raw.<source>, how far the lake has read
(lag), rejects in dlq.<source>, rows in the table and its last commit. It uses
the broker of a running citybrain serve, or opens the embedded broker's log.

Then, when serve runs, the freshness of every path as serve measures it: each
source's table, the warning engine and marts.warnings, the model runner and
each table's SQL view — the newest event time shown, records not yet
processed and how long the oldest of them has waited (the same figures as
数据健康 and /metrics).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, _, err := g.open(cmd, app.ReadBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			st, err := a.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, st)
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "source 数据源\ttopic\ttopic records\tlake offset\tlag 积压\trejects 拒收\treplayed 已重放\ttable 表\trows 行数\tlast commit 最近提交\tnote")
			for _, s := range st {
				last := "-"
				if !s.LastCommit.IsZero() {
					last = s.LastCommit.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", s.Source, s.Topic, s.TopicEnd, s.LakeOffset, s.Lag, s.Rejects, s.Replayed, s.Table, s.Rows, last, s.Note)
			}
			tw.Flush()
			return printFreshness(ctx, g.out, a)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printFreshness prints how old what each path shows is, as measured by the
// running serve (GET /api/freshness on its http.addr).
func printFreshness(ctx context.Context, w io.Writer, a *app.App) error {
	fmt.Fprintln(w)
	if !a.Attached {
		fmt.Fprintln(w, "新鲜度 freshness: citybrain serve is not running (serve measures it; start it with `make run`) 服务未运行")
		return nil
	}
	addr := app.ServeAddr(a.Cfg.DataDir, a.Cfg.HTTP.Addr)
	rows, ins, err := fetchFreshness(ctx, addr, app.ReadOperatorToken(a.Cfg.DataDir))
	if err != nil {
		fmt.Fprintf(w, "新鲜度 freshness: cannot read it from serve at http://%s/api/freshness: %v\n", addr, err)
		return nil
	}
	printInstances(w, ins)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "path 路径	table 表	newest event 最新事件	behind 未处理	lag 滞后	status 状态	instance 实例	error")
	for _, r := range rows {
		ev := "-"
		if !r.EventTime.IsZero() {
			ev = r.EventTime.Format(time.RFC3339)
		}
		lag := "caught up 已追上"
		if !r.CaughtUp {
			zh, en := freshness.Age(time.Duration(r.LagS * float64(time.Second)))
			lag = zh + " " + en
		}
		level := map[string]string{"ok": "正常 ok", "warn": "注意 warn", "error": "告警 ALARM"}[r.Level]
		inst := r.Instance
		if inst == "" {
			inst = "(this 本实例)"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Component, r.Name, r.Table, ev, r.Behind, lag, level, inst, r.Err)
	}
	return nil
}

// printInstances lists the platform's serve instances (docs/roles.md).
func printInstances(w io.Writer, ins []instances.Info) {
	if len(ins) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "instance 实例	roles 角色	state 状态	last heartbeat 最近心跳	http	started 启动")
	for _, in := range ins {
		state := "在线 up"
		switch {
		case in.Stopped:
			state = "已停止 stopped"
		case !in.Up:
			state = "失联 DOWN"
		}
		name := in.Name
		if in.Self {
			name += " (this 本实例)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, strings.Join(in.Roles, ","), state, in.At.Format(time.RFC3339), in.HTTP, in.Started.Format(time.RFC3339), partitionsText(in.Partitions))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// partitionsText renders an instance's partitions, role by role:
// "lakewriter raw.weather[0 1 2]; warnings raw.signal[0 1 2]".
func partitionsText(ps map[string]map[string][]int) string {
	var roles []string
	for r := range ps {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	var parts []string
	for _, r := range roles {
		var topics []string
		for t := range ps[r] {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		var ts []string
		for _, t := range topics {
			ids := append([]int(nil), ps[r][t]...)
			sort.Ints(ids)
			ts = append(ts, fmt.Sprintf("%s%v", t, ids))
		}
		parts = append(parts, r+" "+strings.Join(ts, " "))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// fetchFreshness reads GET /api/freshness with serve's operator token:
// every path of the platform, and its instances.
func fetchFreshness(ctx context.Context, addr, token string) ([]freshness.Row, []instances.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/freshness", nil)
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	var body struct {
		Rows      []freshness.Row  `json:"rows"`
		Instances []instances.Info `json:"instances"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, nil, err
	}
	return body.Rows, body.Instances, nil
}
