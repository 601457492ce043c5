package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"citybrain/connectors/file"
	"citybrain/internal/app"
	"citybrain/warehouse"
)

func ingestCmd(g *globals) *cobra.Command {
	var noProgress bool
	cmd := &cobra.Command{
		Use:   "ingest SOURCE",
		Short: "Read one source once into Kafka and the lake, with a progress bar / 单次导入一个数据源",
		Long: `ingest reads everything new in one source (for the file transport: the files
in file.paths, skipping what was already read), produces it to raw.<source>
(rejects to dlq.<source>), and — unless a citybrain serve is running, whose
lake writer will pick the records up — writes the topic into the lake and
waits for the commit.

Example:  citybrain ingest weather`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			log := quietLogger(g, cfg)
			ctx := cmd.Context()
			a, err := app.Open(ctx, cfg, log, app.AttachBroker)
			if err != nil {
				return err
			}
			defer a.Close()
			src, err := a.OpenSource(args[0])
			if err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			if fs, ok := src.Source.(*file.Source); ok && !noProgress {
				var total int64
				if files, err := fs.Files(); err == nil {
					for _, f := range files {
						if st, err := os.Stat(f); err == nil {
							total += st.Size()
						}
					}
				}
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(g.errOut), progressbar.OptionSetDescription("读取 reading "+args[0]),
					progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
				started := time.Now()
				fs.Progress = func(done, _ int64) {
					rows := fs.Emitted.Load()
					rate := float64(rows) / max(time.Since(started).Seconds(), 1e-3)
					bar.Describe(fmt.Sprintf("读取 reading %s: %d rows, %.0f rows/s", args[0], rows, rate))
					bar.Set64(done)
				}
			}
			start := time.Now()
			st, err := a.RunSource(ctx, src, 0)
			if bar != nil {
				bar.Finish()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "produced 已写入 %d records to raw.%s, %d rejects to dlq.%s in %s\n", st.Good, args[0], st.Rejected, args[0], time.Since(start).Round(time.Millisecond))
			if a.Attached {
				fmt.Fprintf(g.out, "citybrain serve is running: its lake writer commits them; check with `citybrain status`\n")
				return nil
			}
			stop := spinner(g, noProgress, "写入数据湖 writing "+src.Schema.Table)
			w, err := a.CatchUp(ctx, src)
			stop()
			if err != nil {
				return err
			}
			// A backfill committed in several batches may have swept the
			// partitions several times (a file ordered by station, then
			// time): leave each partition it wrote as one file.
			if w.Stats.Commits.Load() > 1 {
				stop := spinner(g, noProgress, "合并小文件 compacting "+src.Schema.Table)
				cr, err := a.Lake.CompactBackfill(ctx, src.Schema.Table)
				stop()
				if err != nil && !errors.Is(err, warehouse.ErrConflict) {
					return err
				}
				if cr.FilesRemoved > 0 {
					fmt.Fprintf(g.out, "compacted 已合并: %d partitions, %d files → %d\n", cr.Partitions, cr.FilesRemoved, cr.FilesAdded)
				}
			}
			t, err := a.Lake.Load(ctx, src.Schema.Table)
			if err != nil {
				return err
			}
			stt, _ := warehouse.StateOf(t)
			info, _ := a.Lake.Tables(ctx)
			for _, ti := range info {
				if ti.Name == src.Schema.Table {
					fmt.Fprintf(g.out, "lake 数据湖: %s has %d rows at snapshot %d (%d new, %d duplicates dropped)\n", ti.Name, ti.Rows, stt.SnapshotID, w.Stats.Rows.Load(), w.Stats.Duplicates.Load())
				}
			}
			if st.Rejected > 0 {
				fmt.Fprintf(g.out, "see the rejects with their reasons: citybrain dlq show %s\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "do not draw a progress bar")
	return cmd
}

// spinner shows that slow work goes on; the returned func stops it.
func spinner(g *globals, off bool, what string) func() {
	if off {
		return func() {}
	}
	spin := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(g.errOut), progressbar.OptionSetDescription(what),
		progressbar.OptionSpinnerType(14), progressbar.OptionClearOnFinish())
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				spin.Finish()
				return
			case <-time.After(100 * time.Millisecond):
				spin.Add(1)
			}
		}
	}()
	return func() { close(done); <-stopped }
}
