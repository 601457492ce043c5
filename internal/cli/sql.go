package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"

	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"citybrain/internal/app"
	"citybrain/warehouse"
)

func sqlCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "sql [QUERY]",
		Short: "Run SQL against the lake, or open an interactive prompt / 用 SQL 查询数据湖",
		Long: `sql runs one query against the current snapshot of every table (DuckDB SQL),
or, without a query, opens a prompt (end statements with ;  quit with \q).
It reads the lake directly and is safe to run while citybrain serve writes.

Tables: raw.<entity> (canonical records) and marts.* (model outputs).
Time travel:
  select count(*) from raw.weather AT (VERSION => <snapshot id>)
  select count(*) from raw.weather AT (TIMESTAMP => '2026-11-28 10:00:00')
(snapshot ids: citybrain tables --snapshots raw.weather)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			if len(args) == 1 {
				res, err := app.QueryAll(ctx, eng, args[0], 0)
				if err != nil {
					return hint(err)
				}
				return printResult(g.out, res, format)
			}
			return prompt(cmd, g, eng, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output: table, csv or json")
	return cmd
}

func prompt(cmd *cobra.Command, g *globals, eng *warehouse.Engine, format string) error {
	in := bufio.NewScanner(cmd.InOrStdin())
	in.Buffer(make([]byte, 1<<20), 1<<20)
	fmt.Fprintln(g.out, `citybrain sql — end statements with ";", \q to quit / 以分号结束语句，\q 退出`)
	var stmt strings.Builder
	for {
		if stmt.Len() == 0 {
			fmt.Fprint(g.out, "citybrain> ")
		} else {
			fmt.Fprint(g.out, "       ...> ")
		}
		if !in.Scan() {
			fmt.Fprintln(g.out)
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		if stmt.Len() == 0 && (line == `\q` || line == "quit" || line == "exit") {
			return nil
		}
		stmt.WriteString(line)
		stmt.WriteString("\n")
		if !strings.HasSuffix(line, ";") {
			continue
		}
		q := strings.TrimSuffix(strings.TrimSpace(stmt.String()), ";")
		stmt.Reset()
		start := time.Now()
		res, err := app.QueryAll(cmd.Context(), eng, q, 0)
		if err != nil {
			fmt.Fprintf(g.out, "错误 error: %v\n", hint(err))
			continue
		}
		printResult(g.out, res, format)
		fmt.Fprintf(g.out, "(%d rows, %s)\n", len(res.Rows), time.Since(start).Round(time.Millisecond))
	}
}

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// hint adds what to do next to a query error.
func hint(err error) error {
	if strings.Contains(err.Error(), "does not exist") {
		return fmt.Errorf("%w\n提示 hint: list the tables with `citybrain tables` (raw.<entity>, marts.<model>)", err)
	}
	return err
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		// Leaders and analysts read Beijing time.
		return x.In(shanghai).Format("2006-01-02 15:04:05.999999-07")
	case []byte:
		return string(x)
	case float64:
		return fmt.Sprintf("%g", x)
	default:
		return fmt.Sprint(x)
	}
}

func printResult(w io.Writer, res *app.Result, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for _, r := range res.Rows {
			obj := map[string]any{}
			for i, c := range res.Columns {
				obj[c] = r[i]
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(res.Columns)
		for _, r := range res.Rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = cell(v)
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	case "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(res.Columns, "\t"))
		for _, r := range res.Rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = cell(v)
			}
			fmt.Fprintln(tw, strings.Join(rec, "\t"))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("--format %q: want table, csv or json", format)
	}
	return nil
}
