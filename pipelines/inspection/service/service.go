// Package service serves the inspectors' phone app inside citybrain serve
// (role dashboards): the API of pipelines/inspection (today's planned
// visits, results written to the spool that the app_inspections and
// app_hazards file connectors carry to the lake) and the app itself at
// /inspect/. docs/inspection.md.
package service

import (
	"context"
	"path/filepath"
	"time"

	"citybrain/internal/app"
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
type Service struct{}

// Name is "inspection".
func (s *Service) Name() string { return "inspection" }

// Start mounts the API and the app.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	c := rt.App.Cfg
	spool := c.Inspection.SpoolDir
	if !filepath.IsAbs(spool) {
		spool = filepath.Join(c.DataDir, spool)
	}
	api := &inspection.API{Auth: rt.Auth, Query: rt.Engine.Query, Spool: spool, Now: time.Now}
	api.Mount(rt.Mux)
	rt.Banner("监督检查 inspections: inspectors' phone app /inspect/ → " + spool + " → app_inspections, app_hazards → raw.inspections, raw.hazards")
	return nil
}

// Run has nothing to run: the API answers on serve's HTTP server.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
