package inspection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"citybrain/schemas"
	"citybrain/warehouse"
)

// PlanTable is where published plans are kept (schemas/inspection_plans.v1.yaml).
const PlanTable = "marts.inspection_plans"

// planCursor names a published month in the table's snapshot summary: its
// value is the month's visit count, so a month is published once.
func planCursor(month time.Time) string {
	return "inspection_plans." + month.In(Shanghai).Format("2006-01")
}

// Inputs is what a month's draw reads from the lake: the units with their
// portraits, hazards and last inspections, the inspectors, and the
// snapshots read (published with the plan).
type Inputs struct {
	Units      []Unit
	Names      map[string]string // enterprise id → name
	Inspectors []Inspector
	People     map[string]string // inspector id → name
	Snapshots  map[string]int64
}

// queryFunc is the warehouse engine's Query.
type queryFunc = func(ctx context.Context, q string, args ...any) (*sql.Rows, error)

// LoadInputs reads the draw's inputs as of the first day of month: the
// portraits (marts.enterprise_risk), hazards found in the 90 days before
// (raw.hazards, newest record per hazard), each unit's last inspection
// before the month (raw.inspections) and the inspectors (raw.inspectors).
// A missing portrait table is an error that says what to run first.
func LoadInputs(ctx context.Context, query queryFunc, lake *warehouse.Lake, month time.Time) (*Inputs, error) {
	start := MonthStart(month)
	in := &Inputs{Names: map[string]string{}, People: map[string]string{}, Snapshots: map[string]int64{}}
	for _, t := range []string{"marts.enterprise_risk", "raw.hazards", "raw.inspections", "raw.inspectors"} {
		tbl, err := lake.Load(ctx, t)
		switch {
		case errors.Is(err, warehouse.ErrNoTable):
			if t == "marts.enterprise_risk" || t == "raw.inspectors" {
				return nil, fmt.Errorf("%s 尚无数据：先导入单位与检查人员并运行模型（citybrain models run）/ %s has no data yet: ingest the enterprises and inspectors and run the models (citybrain models run) first", t, t)
			}
			continue
		case err != nil:
			return nil, err
		}
		if s := tbl.CurrentSnapshot(); s != nil {
			in.Snapshots[t] = s.SnapshotID
		}
	}
	each := func(q string, args []any, scan func(*sql.Rows) error) error {
		rows, err := query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	hazards, last := "(SELECT NULL::VARCHAR AS enterprise_id, 0 AS n WHERE false)", "(SELECT NULL::VARCHAR AS enterprise_id, NULL::TIMESTAMPTZ AS at, NULL::VARCHAR AS inspector_id WHERE false)"
	var args []any
	if _, ok := in.Snapshots["raw.hazards"]; ok {
		hazards = `(SELECT enterprise_id, count(*) AS n FROM (SELECT * FROM raw.hazards QUALIFY row_number() OVER (PARTITION BY id ORDER BY found_at DESC) = 1)
			WHERE found_at >= ? AND found_at < ? GROUP BY 1)`
		args = append(args, start.AddDate(0, 0, -90), start)
	}
	if _, ok := in.Snapshots["raw.inspections"]; ok {
		last = `(SELECT enterprise_id, max(inspected_at) AS at, arg_max(inspector_id, inspected_at) AS inspector_id FROM raw.inspections
			WHERE inspected_at < ? GROUP BY 1)`
		args = append(args, start)
	}
	err := each(`SELECT e.enterprise_id, coalesce(e.enterprise_name, ''), coalesce(e.street_code, ''), e.level, coalesce(h.n, 0), l.at, coalesce(l.inspector_id, '')
		FROM marts.enterprise_risk e LEFT JOIN `+hazards+` h ON h.enterprise_id = e.enterprise_id
		LEFT JOIN `+last+` l ON l.enterprise_id = e.enterprise_id
		WHERE e.level IN ('red', 'orange', 'yellow', 'blue') ORDER BY e.enterprise_id`, args, func(rows *sql.Rows) error {
		var u Unit
		var name string
		var at sql.NullTime
		if err := rows.Scan(&u.ID, &name, &u.Street, &u.Level, &u.RecentHazards, &at, &u.LastInspector); err != nil {
			return err
		}
		if at.Valid {
			u.LastInspected = at.Time
		}
		in.Names[u.ID] = name
		in.Units = append(in.Units, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the units: %w", err)
	}
	err = each(`SELECT inspector_id, coalesce(name, ''), street_code FROM raw.inspectors
		QUALIFY row_number() OVER (PARTITION BY inspector_id ORDER BY updated_at DESC) = 1 ORDER BY inspector_id`, nil, func(rows *sql.Rows) error {
		var p Inspector
		var name string
		if err := rows.Scan(&p.ID, &name, &p.Street); err != nil {
			return err
		}
		in.People[p.ID] = name
		in.Inspectors = append(in.Inspectors, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the inspectors: %w", err)
	}
	// Each unit's inspections of the records window (and the horizon
	// before it, which dates the first one's period) for the expected method.
	if _, ok := in.Snapshots["raw.inspections"]; ok {
		d := DefaultConfig(month)
		from := start.AddDate(0, 0, -d.RecordDays-int(d.HorizonDays))
		byID := map[string]int{}
		for i, u := range in.Units {
			byID[u.ID] = i
		}
		err = each(`SELECT enterprise_id, inspected_at, coalesce(hazards_found, 0) FROM raw.inspections
			WHERE inspected_at >= ? AND inspected_at < ? ORDER BY enterprise_id, inspected_at`, []any{from, start}, func(rows *sql.Rows) error {
			var id string
			var r Record
			if err := rows.Scan(&id, &r.At, &r.Hazards); err != nil {
				return err
			}
			if i, ok := byID[id]; ok {
				in.Units[i].History = append(in.Units[i].History, r)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the inspection records: %w", err)
		}
	}
	if len(in.Units) == 0 {
		return nil, errors.New("marts.enterprise_risk 没有单位 / marts.enterprise_risk holds no unit: run the models first (citybrain models run)")
	}
	return in, nil
}

// MonthStart is the first day of t's month, midnight in Asia/Shanghai.
func MonthStart(t time.Time) time.Time {
	t = t.In(Shanghai)
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, Shanghai)
}

// ErrPublished: the month's plan is already published (一公开: a published
// plan is not replaced).
var ErrPublished = errors.New("该月检查计划已公布，不再替换 / the month's plan is already published and is not replaced")

// Published reports whether month's plan is in the table, and its visits.
func Published(ctx context.Context, lake *warehouse.Lake, month time.Time) (bool, int64, error) {
	st, err := lake.State(ctx, PlanTable)
	if errors.Is(err, warehouse.ErrNoTable) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	n, ok := st.Cursors[planCursor(month)]
	return ok, n, nil
}

// Publish writes the plan to marts.inspection_plans in one commit, with
// the month recorded in the snapshot summary: a month already published is
// ErrPublished (also when two publish at once: the loser's commit is
// refused by the catalog and it finds the month there).
func Publish(ctx context.Context, lake *warehouse.Lake, reg *schemas.Registry, p *Plan, in *Inputs, now time.Time) (int64, error) {
	s, err := reg.Get("inspection_plans")
	if err != nil {
		return 0, err
	}
	t, err := lake.EnsureTable(ctx, s)
	if err != nil {
		return 0, err
	}
	st, err := warehouse.StateOf(t)
	if err != nil {
		return 0, err
	}
	key := planCursor(p.Month)
	if _, ok := st.Cursors[key]; ok {
		return 0, fmt.Errorf("%w (%s)", ErrPublished, p.Month.Format("2006-01"))
	}
	inputs, _ := json.Marshal(in.Snapshots)
	level, hazards := map[string]string{}, map[string]int{}
	for _, u := range in.Units {
		level[u.ID], hazards[u.ID] = u.Level, u.RecentHazards
	}
	seed := strconv.FormatUint(p.Seed, 10)
	next := st.Clone()
	next.Batch++
	next.Cursors[key] = int64(len(p.Visits))
	dfs, err := lake.WriteFiles(t, s, fmt.Sprintf("%s-%d.parquet", p.Month.Format("2006-01"), next.Batch), len(p.Visits), func(i int) (schemas.Record, string) {
		v := p.Visits[i]
		r := make(schemas.Record, len(s.Fields))
		set := func(name string, val any) {
			if j := s.Index(name); j >= 0 {
				r[j] = val
			}
		}
		set("month", dateOf(p.Month))
		set("visit_no", int64(i+1))
		set("enterprise_id", v.UnitID)
		set("enterprise_name", nonEmpty(in.Names[v.UnitID]))
		set("street_code", nonEmpty(v.Street))
		set("inspector_id", nonEmpty(v.InspectorID))
		set("inspector_name", nonEmpty(in.People[v.InspectorID]))
		if !v.Day.IsZero() {
			set("day", dateOf(v.Day))
		}
		set("reason", v.Reason)
		set("level", nonEmpty(level[v.UnitID]))
		set("recent_hazards", int64(hazards[v.UnitID]))
		set("weight", v.Weight)
		set("seed", seed)
		set("budget", int64(p.Budget))
		set("method", nonEmpty(p.Method))
		set("horizon_days", p.HorizonDays)
		set("record_days", int64(p.RecordDays))
		set("inputs", string(inputs))
		set("published_at", now)
		return r, fmt.Sprintf("plan:%s:%d", p.Month.Format("2006-01"), i+1)
	})
	if err != nil {
		return 0, err
	}
	snap, err := lake.Commit(ctx, PlanTable, dfs, next)
	if err != nil {
		for _, df := range dfs {
			lake.RemoveFile(context.WithoutCancel(ctx), df.FilePath())
		}
		if errors.Is(err, warehouse.ErrConflict) {
			if ok, _, e := Published(ctx, lake, p.Month); e == nil && ok {
				return 0, fmt.Errorf("%w (%s)", ErrPublished, p.Month.Format("2006-01"))
			}
		}
		return 0, err
	}
	return snap, nil
}

// dateOf is t's calendar day in Asia/Shanghai as a date value (UTC midnight).
func dateOf(t time.Time) time.Time {
	t = t.In(Shanghai)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
