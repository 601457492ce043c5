// Package pgwire is a PostgreSQL wire-protocol (v3) server over the
// analysts' SQL sandbox (warehouse/sqlaccess), so psql, DBeaver, Superset,
// Metabase, FineBI and every PostgreSQL driver can query the lake.
//
// pgx's pgproto3 decodes and encodes the messages; this package is the
// protocol's state machine: startup (TLS when configured, SCRAM-SHA-256
// against the platform's users), the simple and the extended query
// protocol (prepared statements, portals, parameters in text or binary,
// row limits with PortalSuspended), CancelRequest, transaction status, and
// COPY (SELECT …) TO STDOUT. Session commands clients send on their own
// (BEGIN/COMMIT, SET application_name, SHOW transaction_isolation …) are
// answered here; everything else goes through the sandbox, and a few
// PostgreSQL-only spellings in catalog queries are rewritten for DuckDB
// (see compat.go).
package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"citybrain/internal/auth"
	"citybrain/warehouse/sqlaccess"
)

// Server serves the PostgreSQL wire protocol.
type Server struct {
	Access *sqlaccess.Access
	// TLS, when set, is offered to clients that ask (sslmode=require).
	TLS *tls.Config
	Log *slog.Logger

	mu    sync.Mutex
	conns map[uint32]*conn
	wg    sync.WaitGroup
	plans atomic.Int64 // DuckDB plans the connections hold (see heldPlans)
}

// Plans is how many prepared statements' DuckDB plans the connections
// hold now: at most heldPlans per connection, plus any with rows open.
func (s *Server) Plans() int64 { return s.plans.Load() }

// Serve accepts connections until ctx is done, then closes them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[uint32]*conn{}
	}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				// A bug on one connection must not take serve down.
				if r := recover(); r != nil {
					s.Log.Error("pgwire connection panicked; closing it", "client", nc.RemoteAddr().String(), "panic", r)
					nc.Close()
				}
			}()
			c := &conn{srv: s, nc: nc, params: defaultParams(), stmts: map[string]*prepared{}, portals: map[string]*portal{}, cursors: map[string]*cursor{}, tx: 'I'}
			if err := c.serve(ctx); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.Log.Debug("pgwire connection ended", "client", nc.RemoteAddr().String(), "err", err)
			}
			nc.Close()
		}()
	}
}

func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var b [8]byte
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4])&0x7fffffff | 1
		if _, taken := s.conns[pid]; !taken {
			c.pid, c.secret = pid, append([]byte(nil), b[4:]...)
			s.conns[pid] = c
			return
		}
	}
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.pid] == c {
		delete(s.conns, c.pid)
	}
}

// cancelQuery handles a CancelRequest: the running statement of the
// connection with that key is interrupted.
func (s *Server) cancelQuery(pid uint32, secret []byte) {
	s.mu.Lock()
	c := s.conns[pid]
	s.mu.Unlock()
	if c == nil || subtle.ConstantTimeCompare(c.secret, secret) != 1 {
		return
	}
	c.cancelMu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.cancelMu.Unlock()
}

type conn struct {
	srv     *Server
	nc      net.Conn
	be      *pgproto3.Backend
	wbuf    []byte
	scratch []byte // one value's text (appendCopyRow)
	sess    *sqlaccess.Session
	enc     encoder
	params  map[string]string
	pid     uint32
	secret  []byte
	tx      byte // I, T or E
	// skip: an error in the extended protocol; ignore messages until Sync.
	skip    bool
	stmts   map[string]*prepared
	portals map[string]*portal
	cursors map[string]*cursor
	clock   uint64        // counts statement uses, for letting the oldest plans go
	timeout time.Duration // SET statement_timeout (0: the sandbox's)

	cancelMu sync.Mutex
	cancel   context.CancelFunc
}

// prepared is a parsed statement: a sandbox statement, a COPY … TO STDOUT
// of one, or a session command answered here.
type prepared struct {
	sql string
	// st is the sandbox statement, nil while its plan is let go (see
	// heldPlans); inner is what it prepares (re-prepared from it on use).
	st     *sqlaccess.Stmt
	inner  string
	params []duckdb.Type
	empty  bool
	used   uint64 // the connection's clock at its last use
	// argSig is argTypes of the arguments its plan was last bound with.
	argSig    string
	plans     *atomic.Int64
	copyOut   bool
	copyCSV   bool
	copyHdr   bool
	local     *localResult
	cursor    *cursorOp // DECLARE, FETCH, MOVE, CLOSE (cursor.go)
	paramOIDs []uint32
	shape     // as prepared; empty when deferred
	// deferred: DuckDB binds the statement only with its parameters'
	// values (sqlaccess.Stmt.Deferred), so each portal's shape is what
	// its execution returns.
	deferred bool
	// described is the last RowDescription sent for a deferred statement
	// (by Describe of it or of one of its portals): clients that cache it
	// execute later portals without describing them, and get rows in
	// that shape or an error, never rows of another shape.
	described *shape
}

// shape is a result's columns as the wire presents them.
type shape struct {
	names []string
	cols  []pgType
}

func shapeOf(cols []sqlaccess.Column) shape {
	var sh shape
	for _, col := range cols {
		sh.names = append(sh.names, col.Name)
		sh.cols = append(sh.cols, mapType(col.Type))
	}
	return sh
}

// argTypes is the Go types of a portal's list arguments ("" when it has
// none): what DuckDB fixed the plan's untyped parameters to.
func argTypes(args []any) string {
	var b strings.Builder
	for _, a := range args {
		switch a.(type) {
		case []int64, []float64, []string, []bool, []any, []time.Time:
			fmt.Fprintf(&b, "%T,", a)
		default:
			b.WriteString(",")
		}
	}
	if strings.Trim(b.String(), ",") == "" {
		return ""
	}
	return b.String()
}

// fits tells whether rows of shape got can be sent as described by d:
// the same columns, each of the same type or described as text (any
// value has a text form).
func (d *shape) fits(got shape) bool {
	if len(d.cols) != len(got.cols) {
		return false
	}
	for i, t := range d.cols {
		if t.oid != oidText && t.oid != got.cols[i].oid {
			return false
		}
	}
	return true
}

type portal struct {
	p    *prepared
	args []any
	// alt are the arguments with each untyped list of numbers as strings
	// instead (untypedArray): tried when DuckDB cannot compare the first.
	alt     []any
	formats []int16
	rows    *sqlaccess.Rows
	sent    int64
	// shape of the rows being sent; set when the rows start.
	shape shape
}

func (p *prepared) close() {
	if p.st != nil {
		p.st.Close()
		p.st = nil
		p.plans.Add(-1)
	}
}

// heldPlans is how many named statements of one connection keep their
// DuckDB plan. Clients cache a prepared statement per distinct SQL text
// (pgx: 512 per connection), and a plan over a table of a few hundred
// files holds ~0.35 MB: a client polling with the literal in its SQL grew
// serve by ~175 MB in the soak. Beyond this many, the least recently used
// plans are closed and prepared again from their SQL when next used.
const heldPlans = 32

// plan is p's sandbox statement, prepared again if it was let go; it
// counts as a use.
func (c *conn) plan(ctx context.Context, p *prepared) (*sqlaccess.Stmt, error) {
	c.clock++
	p.used = c.clock
	if p.st == nil {
		st, err := c.sess.PrepareAs(ctx, p.sql, p.inner)
		if err != nil {
			return nil, err
		}
		p.st = st
		p.plans.Add(1)
		c.letGo(p)
	}
	return p.st, nil
}

// letGo closes the plans of the least recently used statements beyond
// heldPlans (never keep's, nor one whose portal has rows open).
func (c *conn) letGo(keep *prepared) {
	busy := map[*prepared]bool{keep: true}
	for _, pt := range c.portals {
		if pt.rows != nil {
			busy[pt.p] = true
		}
	}
	var held []*prepared
	for _, p := range c.stmts {
		if p.st != nil && !busy[p] {
			held = append(held, p)
		}
	}
	if len(held) < heldPlans {
		return
	}
	sort.Slice(held, func(i, j int) bool { return held[i].used < held[j].used })
	for _, p := range held[:len(held)-heldPlans+1] {
		p.close()
	}
}

func (c *conn) send(m pgproto3.BackendMessage) {
	c.wbuf, _ = m.Encode(c.wbuf)
}

func (c *conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

func (c *conn) maybeFlush() error {
	if len(c.wbuf) >= 256<<10 {
		return c.flush()
	}
	return nil
}

func (c *conn) sendError(err error) {
	code, msg := "XX000", err.Error()
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		code = se.SQLState()
	}
	c.send(&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg})
}

func (c *conn) fatal(code, msg string) error {
	c.send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	c.flush()
	return errors.New(msg)
}

func defaultParams() map[string]string {
	return map[string]string{
		"server_version": "15.0", "server_version_num": "150000", "server_encoding": "UTF8", "client_encoding": "UTF8",
		"datestyle": "ISO, YMD", "timezone": "Asia/Shanghai", "integer_datetimes": "on", "standard_conforming_strings": "on",
		"intervalstyle": "postgres", "is_superuser": "off", "application_name": "", "search_path": "raw, marts, catalog, main",
		"transaction_isolation": "read committed", "default_transaction_isolation": "read committed",
		"transaction_read_only": "on", "default_transaction_read_only": "on", "max_identifier_length": "63",
		"lc_collate": "C.UTF-8", "lc_ctype": "C.UTF-8", "extra_float_digits": "1", "statement_timeout": "0",
		"client_min_messages": "notice", "bytea_output": "hex", "lc_messages": "C", "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C",
	}
}

// reported are the parameters sent as ParameterStatus after login.
var reported = []string{"server_version", "server_encoding", "client_encoding", "datestyle", "timezone", "integer_datetimes",
	"standard_conforming_strings", "intervalstyle", "is_superuser", "application_name", "session_authorization"}

var reportedNames = map[string]string{"datestyle": "DateStyle", "timezone": "TimeZone", "intervalstyle": "IntervalStyle"}

func (c *conn) serve(ctx context.Context) error {
	c.be = pgproto3.NewBackend(c.nc, c.nc)
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := c.be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if c.srv.TLS == nil {
				if _, err := c.nc.Write([]byte("N")); err != nil {
					return err
				}
				continue
			}
			if _, err := c.nc.Write([]byte("S")); err != nil {
				return err
			}
			tc := tls.Server(c.nc, c.srv.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				return fmt.Errorf("tls: %w", err)
			}
			c.nc = tc
			c.be = pgproto3.NewBackend(c.nc, c.nc)
		case *pgproto3.GSSEncRequest:
			if _, err := c.nc.Write([]byte("N")); err != nil {
				return err
			}
		case *pgproto3.CancelRequest:
			c.srv.cancelQuery(m.ProcessID, m.SecretKey)
			return nil
		case *pgproto3.StartupMessage:
			startup = m
		default:
			return fmt.Errorf("unexpected startup message %T", msg)
		}
	}
	user := startup.Parameters["user"]
	if user == "" {
		return c.fatal("28000", "no user name given / 缺少用户名: connect with -U <user>")
	}
	users, addr := c.srv.Access.Users(), c.nc.RemoteAddr().String()
	if err := users.CheckLogin(user, addr); err != nil {
		users.LoginFailed(auth.LoginFailure{User: user, Addr: addr, Interface: "pgwire", Locked: true, Err: err})
		return c.fatal("28000", err.Error())
	}
	u, err := c.scram(user)
	if err != nil {
		if errors.Is(err, errBadLogin) {
			c.srv.Log.Info("pgwire login failed", "user", user, "client", addr)
			users.RecordLogin(user, addr, false)
			users.LoginFailed(auth.LoginFailure{User: user, Addr: addr, Interface: "pgwire", Err: err})
			if lerr := users.CheckLogin(user, addr); lerr != nil {
				return c.fatal("28000", lerr.Error())
			}
			return c.fatal("28P01", fmt.Sprintf("password authentication failed for user %q / 用户名或密码错误 (ask an admin: citybrain users passwd %s)", user, user))
		}
		return c.fatal("08P01", err.Error())
	}
	users.RecordLogin(user, addr, true)
	c.sess, err = c.srv.Access.Open(ctx, u, "pgwire", c.nc.RemoteAddr().String())
	if err != nil {
		return c.fatal("XX000", "cannot open the SQL sandbox: "+err.Error())
	}
	defer c.sess.Close()
	c.enc = encoder{loc: shanghai, m: pgtype.NewMap()}
	c.srv.register(c)
	defer c.srv.unregister(c)
	defer func() {
		for _, p := range c.portals {
			if p.rows != nil {
				p.rows.Close(errors.New("connection closed"))
			}
		}
		for _, p := range c.stmts {
			p.close()
		}
		for name := range c.cursors {
			c.closeCursor(name, errors.New("connection closed"))
		}
	}()
	if v := startup.Parameters["application_name"]; v != "" {
		c.params["application_name"] = v
	}
	c.params["session_authorization"] = user
	c.send(&pgproto3.AuthenticationOk{})
	for _, k := range reported {
		name := k
		if n, ok := reportedNames[k]; ok {
			name = n
		}
		c.send(&pgproto3.ParameterStatus{Name: name, Value: c.params[k]})
	}
	c.send(&pgproto3.BackendKeyData{ProcessID: c.pid, SecretKey: c.secret})
	c.send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
	if err := c.flush(); err != nil {
		return err
	}
	for {
		msg, err := c.be.Receive()
		if err != nil {
			return err
		}
		if c.skip {
			switch msg.(type) {
			case *pgproto3.Sync:
				c.skip = false
			case *pgproto3.Terminate:
				return nil
			default:
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			c.simpleQuery(ctx, m.String)
			c.send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
			if err := c.flush(); err != nil {
				return err
			}
		case *pgproto3.Parse:
			c.extended(c.parse(ctx, m))
		case *pgproto3.Bind:
			c.extended(c.bind(m))
		case *pgproto3.Describe:
			c.extended(c.describe(ctx, m))
		case *pgproto3.Execute:
			c.extended(c.execute(ctx, m))
		case *pgproto3.Close:
			if m.ObjectType == 'S' {
				if p := c.stmts[m.Name]; p != nil {
					p.close()
					delete(c.stmts, m.Name)
				}
			} else if p := c.portals[m.Name]; p != nil {
				if p.rows != nil {
					p.rows.Close(nil)
				}
				delete(c.portals, m.Name)
			}
			c.send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			c.closeUnnamedPortal()
			c.send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
			if err := c.flush(); err != nil {
				return err
			}
		case *pgproto3.Flush:
			if err := c.flush(); err != nil {
				return err
			}
		case *pgproto3.Terminate:
			return nil
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Not in COPY FROM mode (refused); ignore stray copy messages.
		default:
			c.sendError(&sqlaccess.Error{Code: "0A000", Msg: fmt.Sprintf("unsupported message %T", msg)})
			c.flush()
		}
	}
}

func (c *conn) closeUnnamedPortal() {
	if p := c.portals[""]; p != nil && p.rows != nil {
		p.rows.Close(nil)
		p.rows = nil
	}
}

func (c *conn) extended(err error) {
	if err == nil {
		return
	}
	c.sendError(err)
	c.failTx()
	c.skip = true
}

func (c *conn) failTx() {
	if c.tx == 'T' {
		c.tx = 'E'
	}
}

// stmtContext is the context one statement runs under; a CancelRequest
// cancels it.
func (c *conn) stmtContext(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	c.cancelMu.Lock()
	c.cancel = cancel
	c.cancelMu.Unlock()
	return ctx, func() {
		c.cancelMu.Lock()
		c.cancel = nil
		c.cancelMu.Unlock()
		cancel()
	}
}

var errAborted = &sqlaccess.Error{Code: "25P02", Msg: "current transaction is aborted, commands ignored until end of transaction block / 事务已中止，请先 ROLLBACK"}

// prepare turns one statement into a prepared one.
func (c *conn) prepare(ctx context.Context, q string, oids []uint32) (*prepared, error) {
	p := &prepared{sql: q, plans: &c.srv.plans}
	if l := c.local(q); l != nil {
		p.local = l
		p.names = l.cols
		for range l.cols {
			p.cols = append(p.cols, pgType{oid: oidText, size: -1, typmod: -1})
		}
		return p, nil
	}
	if c.tx == 'E' {
		return nil, errAborted
	}
	if cp, ok, err := c.prepareCursor(ctx, q, oids); ok {
		return cp, err
	}
	inner := q
	if m := copyOutRE.FindStringSubmatch(q); m != nil {
		p.copyOut = true
		inner = m[1]
		opts := strings.ToUpper(m[2])
		p.copyCSV = strings.Contains(opts, "CSV")
		p.copyHdr = strings.Contains(opts, "HEADER")
	}
	st, err := c.sess.PrepareAs(ctx, q, compat(inner))
	if err != nil {
		c.srv.Log.Debug("pgwire statement refused or failed", "sql", q, "err", err)
		return nil, err
	}
	p.st, p.inner, p.params, p.empty = st, compat(inner), st.Params, st.Empty
	p.plans.Add(1)
	for i, t := range st.Params {
		oid := paramOID(t)
		if i < len(oids) && oids[i] != 0 {
			oid = oids[i]
		} else if t == duckdb.TYPE_INVALID {
			// Neither the client nor DuckDB typed it ("x = any($1)"):
			// described as unspecified, so the client sends it as text in its
			// own type's format ('{1,3}' for a list), and bind infers it.
			oid = 0
		}
		p.paramOIDs = append(p.paramOIDs, oid)
	}
	p.shape = shapeOf(st.Cols)
	p.deferred = st.Deferred
	return p, nil
}

func rowDescription(sh shape, formats []int16) *pgproto3.RowDescription {
	rd := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(sh.cols))}
	for i, t := range sh.cols {
		rd.Fields[i] = pgproto3.FieldDescription{Name: []byte(sh.names[i]), DataTypeOID: t.oid, DataTypeSize: t.size,
			TypeModifier: t.typmod, Format: formatOf(formats, i)}
	}
	return rd
}

func formatOf(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	if i < len(formats) {
		return formats[i]
	}
	return 0
}

func (c *conn) simpleQuery(ctx context.Context, q string) {
	stmts := splitStatements(q)
	if len(stmts) == 0 {
		c.send(&pgproto3.EmptyQueryResponse{})
		return
	}
	for _, s := range stmts {
		p, err := c.prepare(ctx, s, nil)
		if err != nil {
			c.sendError(err)
			c.failTx()
			return
		}
		pt := &portal{p: p}
		sh := p.shape
		if p.deferred && !p.copyOut {
			// The shape is known once it runs (rare without parameters:
			// DuckDB defers for parameters' types).
			err = c.start(ctx, pt, true)
			sh = pt.shape
		}
		if err == nil && !p.copyOut && len(sh.cols) > 0 {
			c.send(rowDescription(sh, nil))
		}
		if err == nil {
			err = c.run(ctx, pt, 0)
		}
		p.close()
		if err != nil {
			c.sendError(err)
			c.failTx()
			return
		}
	}
}

func (c *conn) parse(ctx context.Context, m *pgproto3.Parse) error {
	if old := c.stmts[m.Name]; old != nil {
		if m.Name != "" {
			return &sqlaccess.Error{Code: "42P05", Msg: fmt.Sprintf("prepared statement %q already exists", m.Name)}
		}
		old.close()
		delete(c.stmts, m.Name)
	}
	p, err := c.prepare(ctx, m.Query, m.ParameterOIDs)
	if err != nil {
		return err
	}
	c.stmts[m.Name] = p
	c.clock++
	p.used = c.clock
	if p.st != nil {
		c.letGo(p)
	}
	c.send(&pgproto3.ParseComplete{})
	return nil
}

func (c *conn) bind(m *pgproto3.Bind) error {
	p := c.stmts[m.PreparedStatement]
	if p == nil {
		return &sqlaccess.Error{Code: "26000", Msg: fmt.Sprintf("prepared statement %q does not exist", m.PreparedStatement)}
	}
	if len(m.Parameters) != len(p.paramOIDs) {
		return &sqlaccess.Error{Code: "08P01", Msg: fmt.Sprintf("bind message supplies %d parameters, but prepared statement requires %d", len(m.Parameters), len(p.paramOIDs))}
	}
	args := make([]any, len(m.Parameters))
	var alt []any
	for i, data := range m.Parameters {
		f := formatOf(m.ParameterFormatCodes, i)
		if p.paramOIDs[i] == 0 && f == 0 && p.params[i] == duckdb.TYPE_INVALID {
			if v, other, ok := untypedArray(c.enc.m, data); ok {
				args[i] = v
				if other != nil {
					if alt == nil {
						alt = make([]any, len(m.Parameters))
					}
					alt[i] = other
				}
				continue
			}
		}
		v, err := decodeParam(c.enc.m, p.paramOIDs[i], f, data, p.params[i])
		if err != nil {
			return &sqlaccess.Error{Code: "22P02", Msg: fmt.Sprintf("parameter $%d: %v", i+1, err)}
		}
		args[i] = v
	}
	if alt != nil {
		for i := range alt {
			if alt[i] == nil {
				alt[i] = args[i]
			}
		}
	}
	if old := c.portals[m.DestinationPortal]; old != nil && old.rows != nil {
		old.rows.Close(nil)
	}
	c.portals[m.DestinationPortal] = &portal{p: p, args: args, alt: alt, formats: m.ResultFormatCodes}
	c.send(&pgproto3.BindComplete{})
	return nil
}

func (c *conn) describe(ctx context.Context, m *pgproto3.Describe) error {
	if m.ObjectType == 'S' {
		p := c.stmts[m.Name]
		if p == nil {
			return &sqlaccess.Error{Code: "26000", Msg: fmt.Sprintf("prepared statement %q does not exist", m.Name)}
		}
		sh := p.shape
		if p.deferred && !p.copyOut {
			// Without the parameters' values only the columns are known
			// (probed with NULLs); their types depend on the values, so
			// they are described as text, which every value can be sent
			// as, and a portal's own Describe gives the exact types.
			sctx, done := c.stmtContext(ctx)
			st, err := c.plan(sctx, p)
			var cols []sqlaccess.Column
			if err == nil {
				cols, err = st.Shape(sctx, make([]any, len(p.paramOIDs)))
			}
			done()
			if err != nil {
				return err
			}
			sh = shapeOf(cols)
			for i := range sh.cols {
				sh.cols[i] = pgType{oid: oidText, size: -1, typmod: -1}
			}
			p.described = &sh
		}
		c.send(&pgproto3.ParameterDescription{ParameterOIDs: p.paramOIDs})
		if len(sh.cols) == 0 || p.copyOut {
			c.send(&pgproto3.NoData{})
		} else {
			c.send(rowDescription(sh, nil))
		}
		return nil
	}
	pt := c.portals[m.Name]
	if pt == nil {
		return &sqlaccess.Error{Code: "34000", Msg: fmt.Sprintf("portal %q does not exist", m.Name)}
	}
	sh := pt.p.shape
	if pt.p.deferred && !pt.p.copyOut {
		// The portal's rows are the description: run it now and describe
		// what it returned; Execute then sends those rows.
		if pt.rows == nil {
			if err := c.start(ctx, pt, true); err != nil {
				return err
			}
		}
		sh = pt.shape
		pt.p.described = &sh
	}
	if len(sh.cols) == 0 || pt.p.copyOut {
		c.send(&pgproto3.NoData{})
	} else {
		c.send(rowDescription(sh, pt.formats))
	}
	return nil
}

// start runs a portal's statement and sets the shape its rows are sent
// in; describing: the portal is being described, so its rows are sent in
// the shape they have (else in the one last described for the
// statement).
func (c *conn) start(ctx context.Context, pt *portal, describing bool) error {
	p := pt.p
	sctx, done := c.stmtContext(ctx)
	defer done()
	// DuckDB fixes an untyped parameter's type at its first bind: a plan
	// bound with other Go types (a list of numbers, then of strings) is
	// prepared anew.
	if sig := argTypes(pt.args); sig != p.argSig {
		if p.argSig != "" {
			p.close()
		}
		p.argSig = sig
	}
	st, err := c.plan(sctx, p)
	if err != nil {
		return err
	}
	rows, err := st.Query(sctx, pt.args)
	if err != nil && pt.alt != nil && strings.Contains(err.Error(), "Cannot compare values of type") {
		p.close()
		if st, err = c.plan(sctx, p); err != nil {
			return err
		}
		p.argSig = argTypes(pt.alt)
		rows, err = st.Query(sctx, pt.alt)
	}
	if err != nil {
		c.srv.Log.Debug("pgwire statement failed", "sql", p.sql, "err", err)
		return err
	}
	pt.rows, pt.sent = rows, 0
	if !p.deferred {
		pt.shape = p.shape
		return nil
	}
	got := shapeOf(rows.Columns)
	pt.shape = got
	if d := p.described; d != nil && !describing {
		if !d.fits(got) {
			rows.Close(nil)
			pt.rows = nil
			return &sqlaccess.Error{Code: "0A000", Msg: fmt.Sprintf("this execution returns %d columns of other types than the %d described for the statement; describe the portal (Describe P) before executing it / 结果与已描述的列不一致", len(got.cols), len(d.cols))}
		}
		// Sent as described: where that is text, in the text form of
		// the type the values have (a timestamptz keeps its zone).
		sh := shape{names: d.names, cols: append([]pgType(nil), got.cols...)}
		for i := range sh.cols {
			if d.cols[i].oid == oidText && got.cols[i].oid != oidText {
				sh.cols[i].asText = true
			}
		}
		pt.shape = sh
	}
	return nil
}

func (c *conn) execute(ctx context.Context, m *pgproto3.Execute) error {
	pt := c.portals[m.Portal]
	if pt == nil {
		return &sqlaccess.Error{Code: "34000", Msg: fmt.Sprintf("portal %q does not exist", m.Portal)}
	}
	return c.run(ctx, pt, int64(m.MaxRows))
}

// run executes a portal (or resumes a suspended one), sending up to max
// rows (0: all) and the completion.
func (c *conn) run(ctx context.Context, pt *portal, max int64) error {
	p := pt.p
	if p.local != nil {
		if p.local.err != nil {
			return p.local.err
		}
		if p.local.apply != nil {
			if err := p.local.apply(c); err != nil {
				return err
			}
		}
		for _, r := range p.local.rows {
			vals := make([][]byte, len(r))
			for i, v := range r {
				vals[i] = []byte(v)
			}
			c.send(&pgproto3.DataRow{Values: vals})
		}
		if p.local.tag == "" {
			c.send(&pgproto3.EmptyQueryResponse{})
		} else {
			c.send(&pgproto3.CommandComplete{CommandTag: []byte(p.local.tag)})
		}
		return nil
	}
	if p.cursor != nil {
		return c.runCursor(ctx, p, pt.args, pt.formats)
	}
	if p.empty {
		c.send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	if pt.rows == nil {
		if err := c.start(ctx, pt, false); err != nil {
			return err
		}
		if p.copyOut {
			c.send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: make([]uint16, len(pt.shape.cols))})
			if p.copyHdr {
				var line []byte
				for i, name := range pt.shape.names {
					if i > 0 {
						line = append(line, ',')
					}
					line = append(line, name...)
				}
				c.send(&pgproto3.CopyData{Data: append(line, '\n')})
			}
		}
	}
	rows := pt.rows
	cols := pt.shape.cols
	dest := make([]driver.Value, len(cols))
	formats := make([]int16, len(cols))
	for i := range formats {
		formats[i] = formatOf(pt.formats, i)
	}
	var n int64
	// A whole result (no row limit, so nothing is read that a later Execute
	// would need) is read ahead by another goroutine: DuckDB's rows are
	// converted to Go values there while this one encodes and writes.
	var ahead *readAhead
	if max == 0 {
		ahead = newReadAhead(rows, len(cols))
		defer ahead.stop()
	}
	for {
		if max > 0 && n >= max {
			c.send(&pgproto3.PortalSuspended{})
			return nil
		}
		var err error
		if ahead != nil {
			dest, err = ahead.next()
		} else {
			err = rows.Next(dest)
		}
		if err != nil {
			if err == io.EOF || err.Error() == "EOF" {
				break
			}
			if ahead != nil {
				ahead.stop()
			}
			rows.Close(err)
			pt.rows = nil
			return err
		}
		if p.copyOut {
			c.wbuf, err = c.appendCopyRow(c.wbuf, dest, p.copyCSV, cols)
		} else {
			c.wbuf, err = c.appendDataRow(c.wbuf, dest, cols, formats)
		}
		if err == nil {
			err = c.maybeFlush()
		}
		if err != nil {
			if ahead != nil {
				ahead.stop()
			}
			rows.Close(err)
			pt.rows = nil
			return err
		}
		n++
		pt.sent++
	}
	if ahead != nil {
		ahead.stop()
	}
	total := pt.sent
	rows.Close(nil)
	pt.rows = nil
	if p.copyOut {
		c.send(&pgproto3.CopyDone{})
		c.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(total, 10))})
		return nil
	}
	c.send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(total, 10))})
	return nil
}

// appendDataRow writes a DataRow message by hand (the hot path).
func (c *conn) appendDataRow(dst []byte, vals []driver.Value, cols []pgType, formats []int16) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 'D', 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(vals)))
	for i, v := range vals {
		if v == nil {
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
			continue
		}
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		if formats[i] == 1 && !cols[i].asText {
			dst, err = c.enc.appendBinary(dst, v, &cols[i])
			if err != nil {
				return dst[:start], &sqlaccess.Error{Code: "XX000", Msg: fmt.Sprintf("encode column %d: %v", i+1, err)}
			}
		} else {
			dst = c.enc.appendText(dst, v, &cols[i])
		}
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}

// appendCopyRow writes one CopyData message: text format (tab-separated,
// \N for NULL) or CSV.
func (c *conn) appendCopyRow(dst []byte, vals []driver.Value, csv bool, cols []pgType) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 'd', 0, 0, 0, 0)
	for i, v := range vals {
		if i > 0 {
			if csv {
				dst = append(dst, ',')
			} else {
				dst = append(dst, '\t')
			}
		}
		if v == nil {
			if !csv {
				dst = append(dst, `\N`...)
			}
			continue
		}
		s := c.enc.appendText(c.scratch[:0], v, &cols[i])
		c.scratch = s
		if csv {
			if strings.ContainsAny(string(s), ",\"\n\r") {
				dst = append(dst, '"')
				dst = append(dst, strings.ReplaceAll(string(s), `"`, `""`)...)
				dst = append(dst, '"')
			} else {
				dst = append(dst, s...)
			}
			continue
		}
		for _, b := range s {
			switch b {
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, b)
			}
		}
	}
	dst = append(dst, '\n')
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}

// readAhead reads a result's rows in a goroutine of its own, in batches of
// readAheadRows, while the connection encodes and sends the ones before
// (two of a 2-core machine's cores instead of one: psql's text results came
// at 0.46 of DuckDB's own speed). stop must be called before the rows are
// closed; it waits for the goroutine.
type readAhead struct {
	full  chan *rowBatch
	free  chan *rowBatch
	quit  chan struct{}
	done  chan struct{}
	cur   *rowBatch
	i     int
	ended bool
}

type rowBatch struct {
	vals []driver.Value // n rows of ncols values
	n    int
	err  error // after the last row: io.EOF or the error
}

const readAheadRows = 512

func newReadAhead(rows *sqlaccess.Rows, ncols int) *readAhead {
	ra := &readAhead{full: make(chan *rowBatch, 2), free: make(chan *rowBatch, 3), quit: make(chan struct{}), done: make(chan struct{})}
	for i := 0; i < 3; i++ {
		ra.free <- &rowBatch{vals: make([]driver.Value, readAheadRows*ncols)}
	}
	go func() {
		defer close(ra.done)
		for {
			var b *rowBatch
			select {
			case b = <-ra.free:
			case <-ra.quit:
				return
			}
			b.n, b.err = 0, nil
			for b.n < readAheadRows {
				if err := rows.Next(b.vals[b.n*ncols : (b.n+1)*ncols]); err != nil {
					b.err = err
					break
				}
				b.n++
			}
			select {
			case ra.full <- b:
			case <-ra.quit:
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return ra
}

// next returns the next row (valid until the next call), or the error
// that ended the rows (io.EOF at their end).
func (ra *readAhead) next() ([]driver.Value, error) {
	for ra.cur == nil || ra.i >= ra.cur.n {
		if ra.cur != nil {
			if ra.cur.err != nil {
				return nil, ra.cur.err
			}
			ra.free <- ra.cur
			ra.cur = nil
		}
		if ra.ended {
			return nil, io.EOF
		}
		ra.cur, ra.i = <-ra.full, 0
	}
	ncols := len(ra.cur.vals) / readAheadRows
	row := ra.cur.vals[ra.i*ncols : (ra.i+1)*ncols]
	ra.i++
	return row, nil
}

// stop ends the goroutine and waits for it (idempotent).
func (ra *readAhead) stop() {
	select {
	case <-ra.quit:
	default:
		close(ra.quit)
	}
	<-ra.done
	ra.ended = true
}
