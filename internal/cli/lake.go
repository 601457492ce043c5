package cli

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"citybrain/internal/app"
	"citybrain/warehouse"
)

func lakeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lake",
		Short: "Check and repair lake tables / 检查与修复数据湖表",
		Long: `lake check reads every table's metadata, manifests and data files (that each
Parquet file is there, of the size its manifest says, readable, with its row
count) and names what is damaged, with the newest sound snapshot.
lake rollback makes a snapshot current again (moving a damaged newest
metadata file aside); the lake writer then re-reads from Kafka what the
later snapshots held. See docs/sql.md, "Damaged tables".`,
	}
	var asJSON bool
	check := &cobra.Command{
		Use:   "check [TABLE...]",
		Short: "Check tables for damaged metadata and data files; exit status 1 if any is damaged",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			a, _, err := g.open(cmd, app.NoBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			var checks []warehouse.TableCheck
			if len(args) == 0 {
				if checks, err = a.Lake.Check(ctx); err != nil {
					return err
				}
			} else {
				for _, t := range args {
					checks = append(checks, a.Lake.CheckTable(ctx, t))
				}
			}
			sort.Slice(checks, func(i, j int) bool { return checks[i].Table < checks[j].Table })
			damaged := 0
			for _, c := range checks {
				if !c.OK() {
					damaged++
				}
			}
			if asJSON {
				if err := printJSON(g.out, checks); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					if c.OK() {
						fmt.Fprintf(g.out, "ok 正常       %s (snapshot %d, %d data files)\n", c.Table, c.Snapshot, c.Files)
						continue
					}
					fmt.Fprintf(g.out, "DAMAGED 损坏  %s (snapshot %d)\n", c.Table, c.Snapshot)
					for _, p := range c.Problems {
						fmt.Fprintf(g.out, "    %s\n", p)
					}
					if c.Sound != 0 {
						fmt.Fprintf(g.out, "    newest sound snapshot 最近完好快照: %d — repair 修复: citybrain lake rollback %s --to %d\n", c.Sound, c.Table, c.Sound)
					} else {
						fmt.Fprintf(g.out, "    no sound snapshot found 未找到完好快照: restore the table's directory from a backup, or drop it and re-ingest\n")
					}
				}
				fmt.Fprintf(g.out, "%d tables checked, %d damaged / 共检查 %d 张表，%d 张损坏\n", len(checks), damaged, len(checks), damaged)
			}
			if damaged > 0 {
				return errDamaged
			}
			return nil
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	var to string
	rollback := &cobra.Command{
		Use:   "rollback TABLE --to SNAPSHOT",
		Short: "Make an earlier snapshot of a table current again; the lake writer re-reads the rest from Kafka",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := strconv.ParseInt(to, 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("--to needs a snapshot id (citybrain lake check names the newest sound one; citybrain tables --snapshots %s lists them) / 请用 --to 指定快照编号", args[0])
			}
			a, _, err := g.open(cmd, app.NoBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			res, err := a.Lake.Rollback(ctx, args[0], id)
			if err != nil {
				return err
			}
			for _, m := range res.MovedAside {
				fmt.Fprintf(g.out, "damaged metadata moved aside 已移开损坏的元数据: %s → %s.damaged\n", m, m)
			}
			if res.From == res.To {
				fmt.Fprintf(g.out, "%s is at snapshot %d 已是该快照\n", args[0], res.To)
			} else {
				fmt.Fprintf(g.out, "%s rolled back 已回滚: snapshot %d → %d\n", args[0], res.From, res.To)
			}
			for topic, ps := range res.Offsets {
				for p, o := range ps {
					fmt.Fprintf(g.out, "  the lake writer re-reads %s/%d from offset %d 湖写入器将从此处重新读取\n", topic, p, o)
				}
			}
			if c := a.Lake.CheckTable(ctx, args[0]); !c.OK() {
				return fmt.Errorf("%s is still damaged after the rollback: %v", args[0], c.Problems)
			}
			fmt.Fprintln(g.out, "check 检查: ok 正常")
			return nil
		},
	}
	rollback.Flags().StringVar(&to, "to", "", "the snapshot to make current (from citybrain lake check)")
	relocate := &cobra.Command{
		Use:   "relocate",
		Short: "After copying or moving the data directory: make each table read its own files here",
		Long: `Iceberg metadata names files by absolute path, so a data directory copied
or restored elsewhere still points at the original's files. relocate re-creates
each table whose metadata names another directory, here, from its current
snapshot: same schema, partitioning, properties and Kafka position; the data
files are not copied. Snapshots before the move are not kept (time travel starts
at the relocation); the old metadata is kept as metadata.before-relocate-<time>.
Stop citybrain serve on this data directory first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, cfg, err := g.open(cmd, app.NoBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			if app.ServeRunning(cfg.DataDir) {
				return fmt.Errorf("citybrain serve is running on %s: stop it, then relocate / 请先停止 serve", cfg.DataDir)
			}
			res, err := a.Lake.Relocate(ctx)
			for _, r := range res {
				if r.Moved {
					fmt.Fprintf(g.out, "relocated 已迁移 %s: %s → %s (%d files, %d rows)\n", r.Table, r.From, r.To, r.Files, r.Rows)
				} else {
					fmt.Fprintf(g.out, "in place 无需迁移 %s\n", r.Table)
				}
			}
			return err
		},
	}
	cmd.AddCommand(check, rollback, relocate)
	return cmd
}

// errDamaged makes `lake check` exit 1 after printing its report.
var errDamaged = errors.New("damaged tables found 发现损坏的数据表")
