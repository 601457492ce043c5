// Package service runs the warning engine inside citybrain serve: it opens
// the engine's state in the data directory, reads the raw topics, commits
// transitions to marts.warnings, notifies webhooks and serves
// /api/warnings and /api/warnings/stream.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"citybrain/internal/app"
	"citybrain/pipelines/warnings"
)

func init() {
	app.RegisterService(20, func(rt *app.Runtime) (app.Service, error) {
		if !rt.App.Cfg.Warnings.Enabled {
			return nil, nil
		}
		return &Service{}, nil
	})
}

// Service is the warning engine as a serve service.
type Service struct {
	rt     *app.Runtime
	group  *warnings.Group
	refVer atomic.Int64
	eng    *warnings.Engine
	runner *warnings.Runner
	notif  *warnings.Notifier
	stale  atomic.Bool
}

var _ app.Service = (*Service)(nil)

// Name is "warnings".
func (s *Service) Name() string { return "warnings" }

// Dir is the engine's state directory for a data directory and config.
func Dir(dataDir string, cfg warnings.Config) string {
	if filepath.IsAbs(cfg.Dir) {
		return cfg.Dir
	}
	return filepath.Join(dataDir, cfg.Dir)
}

// Start opens the engine and mounts the HTTP API.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	s.rt = rt
	a := rt.App
	cfg := a.Cfg.Warnings
	dir := Dir(a.Cfg.DataDir, cfg)
	log := a.Log.With("service", "warnings")
	if cfg.Partitioned {
		return s.startPartitioned(ctx, rt, dir, log)
	}
	eng, err := warnings.Open(ctx, cfg, filepath.Join(dir, "state.duckdb"), a.Reg, log, time.Now)
	if err != nil {
		return err
	}
	s.eng = eng
	rt.ReportMemory(eng.Memory)
	sink, err := warnings.NewSink(eng, a.Lake, a.Reg)
	if err != nil {
		return err
	}
	sink.OnCommit = func(ctx context.Context, snap int64) {
		rt.Engine.Refresh(ctx, warnings.Table)
		rt.Commits.Publish(app.Commit{Table: warnings.Table, Snapshot: snap})
	}
	sink.Fresh = rt.Fresh
	if err := sink.RaiseSeq(ctx); err != nil {
		log.Warn("预警序号未能与表对齐 warnings sequence not checked against marts.warnings", "err", err)
	}
	s.notif = warnings.NewNotifier(eng, cfg, filepath.Join(dir, "dead_letters.jsonl"), log)
	hub := warnings.NewHub()
	srcSchemas := map[string]string{}
	for _, d := range a.Cfg.Defs {
		srcSchemas[d.Name] = d.Schema
	}
	s.runner = &warnings.Runner{Eng: eng, Client: a.Client, Reg: a.Reg, Inputs: warnings.ResolveInputs(srcSchemas, append(warnings.DefaultTopics(), cfg.Topics...)),
		Log: log, Hub: hub, Sink: sink, Notifier: s.notif, Fresh: rt.Fresh}
	s.stale.Store(true)
	rt.Commits.OnCommit(func(c app.Commit) {
		switch c.Table {
		case "raw.venues", "raw.grid_cells", "raw.venue_cells":
			s.stale.Store(true)
		}
	})
	s.runner.BeforeBatch = func(ctx context.Context) {
		if s.stale.Swap(false) {
			if err := LoadReference(ctx, rt, eng); err != nil {
				log.Warn("场所/网格参考数据未载入 reference data not loaded; crowd warnings per venue wait for raw.venues, raw.venue_cells", "err", err)
			}
		}
	}
	api := &warnings.API{Eng: eng, Hub: hub, Auth: rt.Auth, Progress: &s.runner.Progress, History: func(ctx context.Context, limit int) ([]warnings.Transition, error) {
		rows, err := rt.Engine.Query(ctx, fmt.Sprintf("SELECT * FROM %s ORDER BY seq DESC LIMIT %d", warnings.Table, limit))
		if err != nil {
			return []warnings.Transition{}, nil // no transition committed yet
		}
		defer rows.Close()
		return warnings.ScanTransitions(rows)
	}}
	api.Mount(rt.Mux)
	rt.Banner(fmt.Sprintf("预警 warnings: %d topics, rules %v → marts.warnings, GET /api/warnings, /api/warnings/stream", len(s.runner.Inputs), len(eng.Rules().RuleNames())))
	rt.Banner("    先回放主题中的历史数据（日志报告进度）first replays the topics' history (the log, /api/warnings \"engine\" and /metrics report progress)")
	return nil
}

// startPartitioned runs the units of the partitioned engine this instance
// is given by the consumer group (docs/roles.md).
func (s *Service) startPartitioned(ctx context.Context, rt *app.Runtime, dir string, log *slog.Logger) error {
	a := rt.App
	cfg := a.Cfg.Warnings
	side, err := a.Lake.SideStore()
	if err != nil {
		return err
	}
	srcSchemas := map[string]string{}
	for _, d := range a.Cfg.Defs {
		srcSchemas[d.Name] = d.Schema
	}
	hub := warnings.NewHub()
	s.group = &warnings.Group{Cfg: cfg, Client: a.Client, Reg: a.Reg, Lake: a.Lake, Log: log, Hub: hub, Fresh: rt.Fresh,
		Inputs: warnings.ResolveInputs(srcSchemas, append(warnings.DefaultTopics(), cfg.Topics...)),
		Dir:    filepath.Join(dir, "units"), Partitions: a.Cfg.Broker.Partitions,
		Checkpoints: &warnings.Checkpoints{Store: side}, CheckpointEvery: cfg.CheckpointEvery, SessionTimeout: cfg.SessionTimeout,
		Reference:  func(ctx context.Context, eng *warnings.Engine) error { return LoadReference(ctx, rt, eng) },
		RefVersion: s.refVer.Load,
		OnCommit: func(ctx context.Context, snap int64) {
			rt.Engine.Refresh(ctx, warnings.Table)
			rt.Commits.Publish(app.Commit{Table: warnings.Table, Snapshot: snap})
		}}
	rt.Commits.OnCommit(func(c app.Commit) {
		switch c.Table {
		case "raw.venues", "raw.grid_cells", "raw.venue_cells":
			s.refVer.Add(1)
		}
	})
	if rt.Owned == nil {
		rt.Owned = map[app.Role]func() map[string][]int{}
	}
	rt.Owned[app.RoleWarnings] = func() map[string][]int { return map[string][]int{warnings.UnitsTopic: s.group.Owned()} }
	api := &warnings.API{Hub: hub, Auth: rt.Auth, Active: s.group.Active, History: func(ctx context.Context, limit int) ([]warnings.Transition, error) {
		rows, err := rt.Engine.Query(ctx, fmt.Sprintf("SELECT * FROM %s ORDER BY seq DESC LIMIT %d", warnings.Table, limit))
		if err != nil {
			return []warnings.Transition{}, nil
		}
		defer rows.Close()
		return warnings.ScanTransitions(rows)
	}}
	api.Mount(rt.Mux)
	rt.Banner(fmt.Sprintf("预警（分区）warnings, partitioned: %d units shared by the instances of consumer group %s; GET /api/warnings (this instance's units)",
		s.group.Units(), warnings.GroupID))
	return nil
}

// Run reads, evaluates, commits and notifies until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	if s.group != nil {
		return s.group.Run(ctx)
	}
	defer s.eng.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.runner.RunSink(ctx) }()
	go func() { defer wg.Done(); s.notif.Run(ctx) }()
	err := s.runner.Run(ctx)
	wg.Wait()
	return err
}

// LoadReference copies grid cells, venues and venue cells from the lake into the engine.
func LoadReference(ctx context.Context, rt *app.Runtime, eng *warnings.Engine) error {
	var ref warnings.Reference
	q := func(sql string, scan func(vals []any)) error {
		res, err := app.QueryAll(ctx, rt.Engine, sql, 0)
		if err != nil {
			return err
		}
		for _, r := range res.Rows {
			scan(r)
		}
		return nil
	}
	s := func(v any) string {
		if x, ok := v.(string); ok {
			return x
		}
		return ""
	}
	fl := func(v any) float64 {
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		case int32:
			return float64(x)
		}
		return 0
	}
	var errs []error
	if err := q(`SELECT grid_cell_id, street_code, area_m2 FROM raw.grid_cells QUALIFY row_number() OVER (PARTITION BY grid_cell_id ORDER BY updated_at DESC) = 1`,
		func(v []any) {
			ref.GridCells = append(ref.GridCells, warnings.GridCell{ID: s(v[0]), StreetCode: s(v[1]), AreaM2: fl(v[2])})
		}); err != nil {
		errs = append(errs, err)
	}
	if err := q(`SELECT venue_id, name_zh, name_en, kind, capacity_people, area_m2, street_code, responsible_unit FROM raw.venues QUALIFY row_number() OVER (PARTITION BY venue_id ORDER BY updated_at DESC) = 1`,
		func(v []any) {
			ref.Venues = append(ref.Venues, warnings.Venue{ID: s(v[0]), NameZh: s(v[1]), NameEn: s(v[2]), Kind: s(v[3]), Capacity: int64(fl(v[4])), AreaM2: fl(v[5]), StreetCode: s(v[6]), Responsible: s(v[7])})
		}); err != nil {
		errs = append(errs, err)
	}
	if err := q(`SELECT venue_id, grid_cell_id, share FROM raw.venue_cells QUALIFY row_number() OVER (PARTITION BY venue_id, grid_cell_id ORDER BY updated_at DESC) = 1`,
		func(v []any) {
			ref.VenueCells = append(ref.VenueCells, warnings.VenueCell{VenueID: s(v[0]), GridCellID: s(v[1]), Share: fl(v[2])})
		}); err != nil {
		errs = append(errs, err)
	}
	if len(ref.GridCells)+len(ref.Venues)+len(ref.VenueCells) == 0 && len(errs) > 0 {
		return errs[0]
	}
	return eng.LoadReference(ctx, ref)
}
