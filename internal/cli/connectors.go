package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"citybrain/connectors"
	"citybrain/internal/app"
)

func connectorsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "List, check and run the configured sources / 数据源接入管理",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the configured sources with transport, schema and topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "source 数据源\ttransport 接入方式\tschema 模式\ttopic\tdead letters\tenabled 启用\tpoll")
			for _, d := range cfg.Defs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", d.Name, d.Transport, d.Schema, connectors.RawTopic(d.Name), connectors.DLQTopic(d.Name), d.IsEnabled(), d.Poll())
			}
			return nil
		},
	})
	var source string
	var sample int
	check := &cobra.Command{
		Use:   "check [--source X]",
		Short: "Validate the configuration of sources and check that each can be reached",
		Long: `check validates each source definition (schema, mapping, transport settings)
and asks the transport whether the source can be reached (files exist and
their header matches the mapping, an API answers, a database accepts the
login). File sources are then read and mapped as ingestion would, without
producing anything, up to --sample rows: the rows that would be dead-lettered
are counted per kind of problem (invalid bytes for the encoding, values not in
an enum, times not matching the layout, wrong column counts), with an example
line each. It exits non-zero if any enabled source fails (also when most
sampled rows would be dead-lettered); disabled sources are listed but checked
only when named with --source.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			a, err := app.Open(cmd.Context(), cfg, quietLogger(g, cfg), app.NoBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			if source != "" {
				if _, err := cfg.Source(source); err != nil {
					return err
				}
			}
			failed := 0
			for _, d := range cfg.Defs {
				if source != "" && d.Name != source {
					continue
				}
				if source == "" && !d.IsEnabled() {
					fmt.Fprintf(g.out, "%-20s %s\n", d.Name, "disabled 已停用 (enable it in the config to check it)")
					continue
				}
				status := "ok 正常"
				src, err := a.OpenSource(d.Name)
				if err == nil {
					ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
					if dsc, ok := src.Source.(interface {
						Describe(context.Context) (string, error)
					}); ok {
						var desc string
						if desc, err = dsc.Describe(ctx); err == nil && desc != "" {
							status += " — " + desc
						}
					} else if c, ok := src.Source.(connectors.Checker); ok {
						err = c.Check(ctx)
					}
					cancel()
					// Files are also read, as ingestion would, up to --sample
					// rows: wrong encoding, enum values, time formats and
					// column counts show as counts of rows that would be
					// dead-lettered.
					var rep connectors.SampleReport
					if err == nil && d.Transport == "file" && sample >= 0 {
						if rep, err = connectors.Sample(cmd.Context(), src.Source, src.Schema, sample); err == nil {
							status += fmt.Sprintf("; sampled 抽查 %d rows: %d would land, %d would be dead-lettered 将被拒收", rep.Rows, rep.Good, rep.Rejected())
							if !rep.Complete {
								status += fmt.Sprintf(" (first %d rows; --sample 0 reads all)", sample)
							}
							for i, p := range rep.Problems {
								if i == 5 {
									status += fmt.Sprintf("\n%-20s   … %d more kinds", "", len(rep.Problems)-5)
									break
								}
								status += fmt.Sprintf("\n%-20s   %d × %s (e.g. %s)", "", p.Count, p.Kind, p.Example)
							}
							if rep.Rows > 0 && rep.Rejected()*2 > rep.Rows {
								err = fmt.Errorf("most sampled rows would be dead-lettered (%d of %d): check encoding, delimiter, header and mapping / 多数抽查行将被拒收，请检查编码、分隔符、表头与映射", rep.Rejected(), rep.Rows)
							}
						}
					}
					if cl, ok := src.Source.(interface{ Close() error }); ok {
						cl.Close()
					}
				}
				if err != nil {
					failed++
					status = "失败 FAILED: " + err.Error() + strings.TrimPrefix(status, "ok 正常")
				}
				fmt.Fprintf(g.out, "%-20s %s\n", d.Name, status)
			}
			if failed > 0 {
				return fmt.Errorf("%d source(s) failed the check; fix their definition in the config (docs/config.md)", failed)
			}
			return nil
		},
	}
	check.Flags().StringVar(&source, "source", "", "check only this source")
	check.Flags().IntVar(&sample, "sample", 100000, "file sources: read and map up to this many rows, counting the problems that would dead-letter them (0: every row; -1: do not read)")
	run := ingestCmd(g)
	run.Use = "run --source X"
	run.Short = "Read one source once into Kafka and the lake (same as citybrain ingest X)"
	run.Args = cobra.NoArgs
	var runSource string
	run.Flags().StringVar(&runSource, "source", "", "the source to run (required)")
	run.MarkFlagRequired("source")
	inner := run.RunE
	run.RunE = func(cmd *cobra.Command, _ []string) error { return inner(cmd, []string{runSource}) }
	cmd.AddCommand(check, run)
	return cmd
}

func dlqCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Dead letters: list, show and replay rejected records / 拒收记录",
		Long: `Every record a connector or the lake writer rejects goes to dlq.<source> with
its reason, its raw bytes and its source cursor. Fix the mapping, then replay:
the records that now map are written to the lake exactly once.`,
	}
	open := func(cmd *cobra.Command) (*app.App, error) {
		a, _, err := g.open(cmd, app.AttachBroker)
		return a, err
	}
	// list and show only read: they use the broker of any running
	// citybrain process (an ingest too) instead of waiting for it.
	openRead := func(cmd *cobra.Command) (*app.App, error) {
		a, _, err := g.open(cmd, app.ReadBroker)
		return a, err
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Count dead letters per source and reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openRead(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			defer tw.Flush()
			fmt.Fprintln(tw, "source 数据源\tpending 待处理\treplayed 已重放\tlast replay 最近重放\ttop reasons 主要原因")
			for _, d := range a.Cfg.Defs {
				parts, err := a.Client.Partitions(cmd.Context(), connectors.DLQTopic(d.Name))
				if err != nil {
					return err
				}
				if len(parts[connectors.DLQTopic(d.Name)]) == 0 {
					fmt.Fprintf(tw, "%s\t0\t0\t-\t\n", d.Name)
					continue
				}
				l, err := connectors.ReadLetters(cmd.Context(), a.Client, d.Name)
				if err != nil {
					return err
				}
				replayed, last := 0, "-"
				for _, e := range l.Log {
					for _, rs := range e.Replayed {
						for _, r := range rs {
							replayed += int(r[1] - r[0] + 1)
						}
					}
					last = e.At.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", d.Name, len(l.Pending), replayed, last, topReasons(l.Pending, 3))
			}
			return nil
		},
	})
	var limit int
	var all bool
	show := &cobra.Command{
		Use:   "show SOURCE",
		Short: "Show a source's dead letters: cursor, reason, raw bytes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openRead(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if _, err := a.Cfg.Source(args[0]); err != nil {
				return err
			}
			l, err := connectors.ReadLetters(cmd.Context(), a.Client, args[0])
			if err != nil {
				return err
			}
			dead := l.Pending
			if all {
				dead = l.All
			}
			for i, d := range dead {
				if limit > 0 && i >= limit {
					fmt.Fprintf(g.out, "… %d more (use --limit 0 for all)\n", len(dead)-limit)
					break
				}
				fmt.Fprintf(g.out, "#%d  cursor 游标: %s\n    reason 原因: %s\n    raw 原文:   %q\n", d.Offset, d.Cursor, d.Reason, d.Raw)
				if all {
					fate := l.Fate(d.Partition, d.Offset)
					if fate == "" {
						fate = "pending 待处理"
					}
					fmt.Fprintf(g.out, "    status 状态: %s\n", fate)
				}
			}
			if len(dead) == 0 {
				fmt.Fprintf(g.out, "no pending dead letters for %s / 无待处理的拒收记录", args[0])
				if n := len(l.All); n > 0 && !all {
					fmt.Fprintf(g.out, " (%d replayed or re-queued earlier: --all shows them)", n)
				}
				fmt.Fprintln(g.out)
			}
			return nil
		},
	}
	show.Flags().IntVar(&limit, "limit", 20, "show at most this many (0: all)")
	show.Flags().BoolVar(&all, "all", false, "also the letters replays took, with what became of each (replayed, re-queued) and when")
	replay := &cobra.Command{
		Use:   "replay SOURCE",
		Short: "Map a source's dead letters again and write those that now pass to the lake, exactly once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			src, err := a.OpenSource(args[0])
			if err != nil {
				return err
			}
			if err := a.Client.EnsureTopics(cmd.Context(), connectors.RawTopic(args[0]), connectors.DLQTopic(args[0])); err != nil {
				return err
			}
			res, err := a.ReplayDLQ(cmd.Context(), src)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "replayed 已重放 %d, still failing 仍失败 %d\n", res.Replayed, res.StillFailing)
			for r, n := range res.Reasons {
				fmt.Fprintf(g.out, "  %d × %s\n", n, r)
			}
			if a.Attached {
				fmt.Fprintln(g.out, "citybrain serve is running: its lake writer commits them")
				return nil
			}
			w, err := a.CatchUp(cmd.Context(), src)
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Fprintf(g.out, "lake 数据湖: %d new rows in %s, %d duplicates dropped\n", w.Stats.Rows.Load(), src.Schema.Table, w.Stats.Duplicates.Load())
			return nil
		},
	}
	cmd.AddCommand(show, replay)
	return cmd
}

func topReasons(dead []connectors.DeadLetter, n int) string {
	counts := map[string]int{}
	for _, d := range dead {
		r := d.Reason
		// Group by the reason without its line number.
		if i := strings.Index(r, ": "); i >= 0 && strings.HasPrefix(r, "line ") {
			r = r[i+2:]
		}
		counts[r]++
	}
	type rc struct {
		r string
		n int
	}
	var list []rc
	for r, c := range counts {
		list = append(list, rc{r, c})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n > list[j].n || list[i].n == list[j].n && list[i].r < list[j].r })
	var out []string
	for i, x := range list {
		if i >= n {
			break
		}
		out = append(out, fmt.Sprintf("%d× %s", x.n, x.r))
	}
	return strings.Join(out, "; ")
}
