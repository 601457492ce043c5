// Package service serves the inspectors' phone app inside citybrain serve
// (role dashboards): the API of pipelines/inspection (today's planned
// visits, results written to the spool that the app_inspections and
// app_hazards file connectors carry to the lake) and the app itself at
// /inspect/. docs/inspection.md.
package service

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"citybrain/dashboards/inspector"
	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/pipelines/inspection"
)

func init() {
	app.RegisterService(26, func(rt *app.Runtime) (app.Service, error) {
		if !rt.App.Cfg.Inspection.Enabled || rt.Engine == nil || rt.Auth == nil {
			return nil, nil
		}
		return &Service{}, nil
	})
}

// Service is the inspector app as a serve service.
type Service struct {
	rt  *app.Runtime
	cfg inspection.AppConfig
	log *slog.Logger
}

// Name is "inspection".
func (s *Service) Name() string { return "inspection" }

// Start mounts the API and the app.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	c := rt.App.Cfg
	s.rt, s.cfg, s.log = rt, c.Inspection, rt.App.Log.With("service", "inspection")
	spool := c.Inspection.SpoolDir
	if !filepath.IsAbs(spool) {
		spool = filepath.Join(c.DataDir, spool)
	}
	api := &inspection.API{Auth: rt.Auth, Query: rt.Engine.Query, Spool: spool, Now: time.Now}
	api.Mount(rt.Mux)
	inspector.Mount(rt.Mux)
	// make run's demo: an inspector account for the simulator's first
	// grid inspector (auth.demo_users).
	if c.Sim.Enabled && rt.Auth.Config().DemoUsers {
		if _, exists := rt.Auth.Get("inspector"); !exists {
			if err := rt.Auth.Add("inspector", auth.DemoPassword, auth.RoleDepartment, "emergency"); err == nil {
				rt.Auth.Update("inspector", func(u *auth.User) error { u.PersonID = "I00001"; return nil })
			}
		}
	}
	rt.Banner("监督检查 inspections: inspectors' phone app /inspect/ → " + spool + " → app_inspections, app_hazards → raw.inspections, raw.hazards")
	return nil
}

// Run publishes each month's plan when inspection.auto_publish is on (the
// API answers on serve's HTTP server).
func (s *Service) Run(ctx context.Context) error {
	if !s.cfg.AutoPublish {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := s.publishDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("inspection plan not auto-published yet", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// publishDue publishes the current month's plan if it is not published and
// the portraits are there.
func (s *Service) publishDue(ctx context.Context) error {
	a := s.rt.App
	month := inspection.MonthStart(time.Now())
	if done, _, err := inspection.Published(ctx, a.Lake, month); err != nil || done {
		return err
	}
	in, err := inspection.LoadInputs(ctx, s.rt.Engine.Query, a.Lake, month)
	if err != nil {
		return err
	}
	cfg := inspection.DefaultConfig(month)
	if cfg.Budget = s.cfg.Budget; cfg.Budget == 0 {
		if cfg.Budget, err = inspection.MonthlyBudget(ctx, s.rt.Engine.Query, month); err != nil {
			return err
		}
	}
	p, err := inspection.Draw(in.Units, in.Inspectors, cfg)
	if err != nil {
		return err
	}
	snap, err := inspection.Publish(ctx, a.Lake, a.Reg, p, in, time.Now())
	if errors.Is(err, inspection.ErrPublished) {
		return nil // another instance was first
	}
	if err != nil {
		return err
	}
	s.rt.Engine.Refresh(ctx, inspection.PlanTable)
	s.log.Info("监督检查计划已公布 inspection plan published", "month", month.Format("2006-01"), "visits", len(p.Visits), "seed", p.Seed, "snapshot", snap)
	return nil
}
