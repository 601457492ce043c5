// Package service runs the dashboards inside citybrain serve: it builds a
// dashboards.Server over the runtime (engine, lake, users, source status,
// dead letters), mounts it on serve's mux and feeds it the lake's commits.
// It is a separate package because internal/config imports dashboards for
// its Config, and the service needs internal/app.
package service

import (
	"context"
	"fmt"
	"sort"

	"citybrain/connectors"
	"citybrain/dashboards"
	"citybrain/internal/app"
	"citybrain/internal/freshness"
	"citybrain/pipelines/warnings"
)

func init() {
	app.RegisterService(50, func(rt *app.Runtime) (app.Service, error) {
		if !rt.App.Cfg.Dashboards.Enabled {
			return nil, nil
		}
		return &Service{}, nil
	})
}

// Service is the dashboards service of citybrain serve.
type Service struct {
	srv *dashboards.Server
}

var _ app.Service = (*Service)(nil)

// Name is "dashboards".
func (*Service) Name() string { return "dashboards" }

// NewServer builds the dashboards server over a runtime.
func NewServer(rt *app.Runtime) *dashboards.Server {
	a := rt.App
	d := dashboards.Deps{Engine: rt.Engine, Lake: a.Lake, Auth: rt.Auth, Log: a.Log, Fresh: rt.Fresh}
	if rt.Instances != nil {
		d.Peers, d.Instance = rt.Instances.PeerRows, rt.Instances.Name()
	}
	// What this configuration runs must report its freshness: a path that
	// never does is shown on 数据健康 as not reporting, not left out. (Not
	// the warnings' sink: it appears once the engine has transitions for
	// it, and an idle one is caught up.)
	switch {
	case a.Cfg.Warnings.Enabled && a.Cfg.Warnings.Partitioned:
		// Every unit, from whichever instance owns it (a unit no instance
		// runs is shown not reporting).
		n := a.Cfg.Broker.Partitions + 1
		d.SeqStride = int64(n)
		for k := 0; k < n; k++ {
			d.Expect = append(d.Expect, freshness.Path{Component: "warnings", Name: "engine/" + warnings.Unit{Index: k, Count: n}.Name()})
		}
	case a.Cfg.Warnings.Enabled:
		d.Expect = append(d.Expect, freshness.Path{Component: "warnings", Name: "engine"})
	}
	if a.Cfg.Models.Enabled {
		d.Expect = append(d.Expect, freshness.Path{Component: "models", Name: "runner"})
	}
	if a.Cfg.SQLAccess.Enabled {
		d.Expect = append(d.Expect, freshness.Path{Component: "query"})
	}
	cr := a.Cfg.Warnings.Crowd
	levels := func(l warnings.Levels) map[string]float64 {
		return map[string]float64{"blue": l.Blue, "yellow": l.Yellow, "orange": l.Orange, "red": l.Red}
	}
	d.CrowdLevels = dashboards.CrowdLevels{CapacityRatio: levels(cr.CapacityRatio), DensityPerM2: levels(cr.DensityPerM2)}
	d.Status = func(ctx context.Context) ([]dashboards.SourceHealth, error) {
		st, err := a.Status(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]dashboards.SourceHealth, len(st))
		for i, s := range st {
			out[i] = dashboards.SourceHealth{Source: s.Source, Table: s.Table, Lag: s.Lag, Rejects: s.Rejects, Rows: s.Rows, LastCommit: s.LastCommit, Note: s.Note}
		}
		return out, nil
	}
	if a.Client != nil {
		d.Rejects = func(ctx context.Context, source string) ([]dashboards.RejectReason, error) {
			l, err := connectors.ReadLetters(ctx, a.Client, source)
			if err != nil {
				return nil, err
			}
			by := map[string]*dashboards.RejectReason{}
			for _, dl := range l.Pending {
				r := by[dl.Reason]
				if r == nil {
					r = &dashboards.RejectReason{Reason: dl.Reason}
					by[dl.Reason] = r
				}
				r.Count++
				if dl.Time.After(r.Last) {
					r.Last = dl.Time
				}
			}
			out := make([]dashboards.RejectReason, 0, len(by))
			for _, r := range by {
				out = append(out, *r)
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Last.After(out[j].Last) })
			if len(out) > 20 {
				out = out[:20]
			}
			return out, nil
		}
	}
	return dashboards.New(a.Cfg.Dashboards, d)
}

// Start mounts the app and its API and subscribes to commits.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	s.srv = NewServer(rt)
	s.srv.Mount(rt.Mux)
	s.srv.Start(ctx)
	rt.Commits.OnCommit(func(c app.Commit) { s.srv.Committed(c.Table) })
	if s.srv.Built() {
		rt.Banner(fmt.Sprintf("Dashboards 看板:            http://%s/  (zh-CN / English)", rt.App.Cfg.HTTP.Addr))
	} else {
		rt.Banner("Dashboards 看板:            not built — run make build / 尚未构建，请运行 make build")
	}
	return nil
}

// Run waits for ctx.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
