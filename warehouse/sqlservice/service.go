// Package sqlservice runs the analysts' SQL access inside citybrain serve:
// the sandbox (warehouse/sqlaccess), the PostgreSQL wire server
// (warehouse/pgwire), the HTTP SQL API (/api/sql, /api/catalog) with its
// OpenAPI document (/api/openapi.json), and the audit log's flusher.
package sqlservice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/proc"
	"citybrain/warehouse/pgwire"
	"citybrain/warehouse/sqlaccess"
)

func init() {
	app.RegisterService(30, func(rt *app.Runtime) (app.Service, error) {
		cfg := rt.App.Cfg.SQLAccess
		if !cfg.Enabled {
			return nil, nil
		}
		return &Service{cfg: cfg}, nil
	})
}

// Service is the SQL access service.
type Service struct {
	cfg    sqlaccess.Config
	access *sqlaccess.Access
	audit  *sqlaccess.Auditor
	ln     net.Listener
	srv    *pgwire.Server
	rt     *app.Runtime
}

var _ app.Service = (*Service)(nil)

// Name is "sql".
func (s *Service) Name() string { return "sql" }

// Start opens the sandbox and the audit table, listens for the wire
// protocol and mounts the HTTP API.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	s.rt = rt
	a := rt.App
	s.access = sqlaccess.New(s.cfg, rt.Engine, a.Lake, a.Reg, rt.Auth, a.Log)
	s.access.ReloadUsers(rt.Auth.Config(), a.Cfg.DataDir)
	s.access.Fresh = rt.Fresh
	rt.ReportMemory(s.access.Memory)
	// Every commit marks its table for the views (non-blocking, never dropped); Run follows them.
	rt.Commits.OnCommit(func(c app.Commit) { s.access.Notify(c.Table, c.At) })
	var err error
	s.audit, err = sqlaccess.NewAuditor(ctx, s.cfg.Audit, a.Lake, a.Log, func(table string, snap int64) {
		if ctx.Err() == nil { // the last flush at shutdown refreshes no views
			rt.Commits.Publish(app.Commit{Table: table, Snapshot: snap})
		}
	})
	if err != nil {
		return fmt.Errorf("audit table: %w", err)
	}
	s.access.Audit = s.audit
	// The backstop's last resort: a statement DuckDB cannot interrupt is
	// ended by restarting serve in place (same process id and arguments;
	// a kill -9 at any moment loses nothing, so neither does this).
	s.access.OnBackstop = func(reason string) {
		a.Log.Error("restarting serve in place to end statements DuckDB cannot interrupt / 重启服务以终止无法中断的查询", "reason", reason)
		if err := proc.Restart(reason); err != nil {
			a.Log.Error("restart in place failed; exiting with 75 so a supervisor (systemd) starts serve again", "err", err)
			os.Exit(75)
		}
	}
	rt.Auth.OnLoginFailure(s.access.AuditLogin)
	var tc *tls.Config
	if s.cfg.PGWire.Listen != "" {
		if s.cfg.PGWire.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(s.cfg.PGWire.TLSCert, s.cfg.PGWire.TLSKey)
			if err != nil {
				return fmt.Errorf("sql_access.pgwire tls_cert/tls_key: %w", err)
			}
			tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		s.ln, err = net.Listen("tcp", s.cfg.PGWire.Listen)
		if err != nil {
			msg := fmt.Sprintf("listen on %s: %v (set sql_access.pgwire.listen to another port, or empty to turn the wire server off)", s.cfg.PGWire.Listen, err)
			if s.cfg.PGWire.Listen != sqlaccess.DefaultConfig().PGWire.Listen {
				return errors.New(msg)
			}
			// The default port is taken (another serve, a PostgreSQL):
			// run without the wire server rather than not at all.
			a.Log.Error("PostgreSQL wire server not started", "err", msg)
			rt.Banner("PostgreSQL 分析接口 NOT started 未启动: " + msg)
		}
	}
	if s.ln != nil {
		s.srv = &pgwire.Server{Access: s.access, TLS: tc, Log: a.Log}
		host, port, _ := net.SplitHostPort(s.ln.Addr().String())
		ssl := ""
		if tc != nil {
			ssl = " (TLS: sslmode=require)"
		}
		rt.Banner(fmt.Sprintf("PostgreSQL 分析接口:          psql -h %s -p %s -U analyst citybrain%s", host, port, ssl))
	}
	h := &Handler{Access: s.access, Auth: rt.Auth, RowCap: s.cfg.ConsoleRowCap}
	h.Mount(rt.Mux)
	rt.Banner("SQL API:                     /api/sql (JSON, CSV, Arrow)  /api/catalog  /api/openapi.json")
	return nil
}

// Run serves until ctx is done, then commits the remaining audit entries.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.access.Follow(ctx, s.cfg.Reconcile)
	}()
	var serr error
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		if s.srv != nil {
			serr = s.srv.Serve(ctx, s.ln)
		}
	}()
	aerr := s.audit.Run(ctx)
	<-srvDone
	wg.Wait()
	// Statements still finishing (HTTP requests being shut down) are
	// audited too: wait for their sessions, then commit what is left.
	s.access.WaitIdle(5 * time.Second)
	if err := s.audit.Flush(context.Background()); err != nil && aerr == nil {
		aerr = err
	}
	s.access.Close()
	if serr != nil {
		return serr
	}
	return aerr
}

// Mount registers the HTTP API on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/sql", h.serveSQL)
	mux.HandleFunc("POST /api/sql", h.serveSQL)
	mux.HandleFunc("GET /api/catalog", h.serveCatalog)
	mux.HandleFunc("GET /api/openapi.json", serveOpenAPI)
	mux.HandleFunc("POST /api/token", h.serveToken)
}
