// Package sqldb is the database transport: an incremental pull from
// PostgreSQL (or any database/sql driver) by a watermark column.
//
// Departments that keep their records in a database (police cases, hotline
// events, emergency incidents) rarely offer a change feed, but nearly every
// table has a column that grows as rows are written or updated — an
// updated_at timestamp or a serial id. The transport reads the rows after
// the last one it sent, in (watermark, key) order, keyset-paginated:
//
//	SELECT * FROM t WHERE (wm, key) > ($1, $2) ORDER BY wm, key LIMIT n
//
// repeating until a page comes back short. Each page is fetched completely
// and its result set closed before the page is emitted, so no query or
// transaction stays open while the broker applies backpressure. Rows are
// mapped by the source's mapping with the result's column names as the
// header and the values rendered as text: timestamps with a zone as RFC 3339
// (timestamps without one, and dates, without a zone, so the mapping's
// timezone applies), numbers plainly, booleans as true/false, NULL as "".
//
// # Cursor
//
// The stream is "<driver>:<table>" (or "<driver>:<name>" for a query), never
// the DSN. Pos numbers the records of the stream: one more than the
// previous record's, continuing from the position Read starts from, so it
// strictly grows for the lake to de-duplicate on. Token is the resume state
// after the record: its watermark and key values, each tagged with its type
// (see Token). Read(from) continues with the first row whose (watermark, key)
// is greater than the token's, so a cut anywhere — including among many rows
// sharing one watermark value — loses and repeats nothing, because the key
// makes (watermark, key) unique and totally ordered.
//
// # Limitation
//
// Like every watermark pull, rows that appear later with a watermark lower
// than the last one read are never seen: a transaction that sets
// updated_at = now() and commits after a later-stamped one has committed
// and been read, a back-dated correction, or a clock step back. Rows whose
// watermark is NULL are skipped. Prefer a watermark that grows in commit
// order (a sequence assigned by a trigger at commit, or a commit-time
// column); with an updated_at stamped at statement time, read with a lag
// through a query, e.g. WHERE updated_at < now() - interval '5 minutes'.
// Deleted rows are not reported. Index (watermark, key) so each page is an
// index range scan.
package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the driver "pgx"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
)

// Columns is one column name or a list of them; in YAML either `id` or
// `[region, id]`.
type Columns []string

// UnmarshalYAML accepts a scalar or a sequence.
func (c *Columns) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*c = Columns{one}
		return nil
	}
	var many []string
	if err := unmarshal(&many); err != nil {
		return errors.New("sql.key: want a column name or a list of column names")
	}
	*c = many
	return nil
}

// Config is the database transport's part of a source definition.
type Config struct {
	// Driver is the database/sql driver name; default "pgx" (PostgreSQL,
	// built in). Other drivers must be linked into the binary.
	Driver string `yaml:"driver"`
	// Dialect selects bind-parameter style, identifier quoting and paging syntax:
	// postgres, mysql, sqlite or sqlserver. Default: derived from Driver
	// (pgx, postgres → postgres; mysql; sqlite, sqlite3; sqlserver, mssql).
	Dialect string `yaml:"dialect"`
	// DSN is the driver's data source name, e.g.
	// postgres://reader@db.police.local:5432/cases?sslmode=require.
	// Prefer DSNEnv for anything holding a password.
	DSN string `yaml:"dsn"`
	// DSNEnv names the environment variable holding the DSN, so passwords
	// stay out of YAML. Used when DSN is empty.
	DSNEnv string `yaml:"dsn_env"`
	// Table is the table (or view) to read, optionally schema-qualified:
	// incidents or public.incidents. Set exactly one of Table and Query.
	Table string `yaml:"table"`
	// Query is a SELECT (or WITH … SELECT) whose result columns are mapped;
	// it is read as a derived table, so Watermark and Key name its output
	// columns. Needs Name.
	Query string `yaml:"query"`
	// Name names the stream of a Query (the cursor stream is
	// "<driver>:<name>"); keep it stable. Optional with Table, whose name it
	// replaces in the stream.
	Name string `yaml:"name"`
	// Watermark is the column that grows as rows are written, e.g.
	// updated_at or id. Rows are read in (Watermark, Key) order.
	Watermark string `yaml:"watermark"`
	// Key is the column or columns that, with Watermark, identify a row
	// uniquely (e.g. id): the tie-breaker among rows sharing a watermark.
	// Required; when the watermark itself is unique, repeat it (key: id).
	Key Columns `yaml:"key"`
	// BatchRows is the page size: rows per query and per emitted batch;
	// default 5000.
	BatchRows int `yaml:"batch_rows"`
	// PollTimeout bounds one Read: once it has run this long it stops after
	// the page in hand and returns nil, and the next poll continues from
	// there (a long backfill is then taken in slices). 0: read until caught up.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// QueryTimeout bounds each page query, from sending it to the last row
	// fetched; default 5m. A timeout is a transient error.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// identRE is what an identifier from the configuration may look like; it is
// then quoted as well, so reserved words work and nothing can be injected.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidIdentifier reports whether s is a plain SQL identifier: a letter or
// underscore, then letters, digits or underscores, at most 63 bytes.
func ValidIdentifier(s string) bool { return identRE.MatchString(s) }

var queryStartRE = regexp.MustCompile(`(?is)^\s*(select|with)\b`)

func (c Config) driver() string {
	if c.Driver == "" {
		return "pgx"
	}
	return c.Driver
}

// Validate checks the config. It does not connect and does not need the
// DSNEnv variable to be set.
func (c Config) Validate() error {
	if (c.Table == "") == (strings.TrimSpace(c.Query) == "") {
		return errors.New("sql: set exactly one of table and query")
	}
	if c.Table != "" {
		parts := strings.Split(c.Table, ".")
		if len(parts) > 3 {
			return fmt.Errorf("sql.table %q: want table, schema.table or catalog.schema.table", c.Table)
		}
		for _, p := range parts {
			if !ValidIdentifier(p) {
				return fmt.Errorf("sql.table %q: %q is not a plain identifier (letters, digits, _; not starting with a digit)", c.Table, p)
			}
		}
	}
	if c.Query != "" {
		if !queryStartRE.MatchString(c.Query) {
			return errors.New("sql.query: must be a single SELECT or WITH … SELECT statement")
		}
		if c.Name == "" {
			return errors.New("sql.name: a query needs a stable stream name")
		}
	}
	if c.Name != "" && strings.ContainsAny(c.Name, "#!") {
		return fmt.Errorf("sql.name %q: the characters # and ! are reserved for cursors", c.Name)
	}
	if c.DSN == "" && c.DSNEnv == "" {
		return errors.New("sql: set dsn or dsn_env (the environment variable holding the DSN)")
	}
	if c.DSNEnv != "" && !ValidIdentifier(c.DSNEnv) {
		return fmt.Errorf("sql.dsn_env %q: not an environment variable name", c.DSNEnv)
	}
	if !ValidIdentifier(c.Watermark) {
		return fmt.Errorf("sql.watermark %q: want a column name (letters, digits, _)", c.Watermark)
	}
	if len(c.Key) == 0 {
		return errors.New("sql.key: name the unique tie-breaker column(s), e.g. id (repeat the watermark if it is unique)")
	}
	seen := map[string]bool{}
	for _, k := range c.Key {
		if !ValidIdentifier(k) {
			return fmt.Errorf("sql.key %q: want a column name (letters, digits, _)", k)
		}
		if seen[k] {
			return fmt.Errorf("sql.key: %s listed twice", k)
		}
		seen[k] = true
	}
	if _, err := c.dialect(); err != nil {
		return err
	}
	if c.BatchRows < 0 || c.PollTimeout < 0 || c.QueryTimeout < 0 {
		return errors.New("sql: batch_rows, poll_timeout and query_timeout must not be negative")
	}
	return nil
}

// dialect is how SQL differs between the supported databases.
type dialect struct {
	name     string
	quote    func(string) string
	param    func(n int) string // n from 1
	rowCmp   bool               // supports (a, b) > (x, y)
	topLimit bool               // SELECT TOP (n) instead of LIMIT n
}

func dq(s string) string { return `"` + s + `"` }

var dialects = map[string]dialect{
	"postgres":  {name: "postgres", quote: dq, param: func(n int) string { return "$" + strconv.Itoa(n) }, rowCmp: true},
	"mysql":     {name: "mysql", quote: func(s string) string { return "`" + s + "`" }, param: func(int) string { return "?" }, rowCmp: true},
	"sqlite":    {name: "sqlite", quote: dq, param: func(int) string { return "?" }, rowCmp: true},
	"sqlserver": {name: "sqlserver", quote: func(s string) string { return "[" + s + "]" }, param: func(n int) string { return "@p" + strconv.Itoa(n) }, topLimit: true},
}

func (c Config) dialect() (dialect, error) {
	name := strings.ToLower(c.Dialect)
	if name == "" {
		switch strings.ToLower(c.driver()) {
		case "pgx", "pgx/v5", "postgres", "postgresql":
			name = "postgres"
		case "mysql":
			name = "mysql"
		case "sqlite", "sqlite3":
			name = "sqlite"
		case "sqlserver", "mssql":
			name = "sqlserver"
		default:
			return dialect{}, fmt.Errorf("sql.dialect: driver %q is not known; set dialect to postgres, mysql, sqlite or sqlserver", c.driver())
		}
	}
	d, ok := dialects[name]
	if !ok {
		return dialect{}, fmt.Errorf("sql.dialect %q: want postgres, mysql, sqlite or sqlserver", c.Dialect)
	}
	return d, nil
}

// Source reads a table or query through a mapping.
type Source struct {
	cfg    Config
	mapper *mapping.Mapper
	dia    dialect
	stream string
	keys   []string // tie-breaker columns after the watermark (none when the key is the watermark)

	mu     sync.Mutex
	db     *sql.DB
	header []string
	bound  *mapping.Bound
}

var _ connectors.Source = (*Source)(nil)

// New returns a database source. It checks the config but does not
// connect: the first Read does, so a definition can be validated where
// the database or the DSNEnv variable is not available.
func New(cfg Config, m *mapping.Mapper) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("sql: a mapping is required")
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 5000
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 5 * time.Minute
	}
	cfg.Query = strings.TrimRight(strings.TrimSpace(cfg.Query), "; \t\r\n")
	d, _ := cfg.dialect()
	name := cfg.Name
	if name == "" {
		name = cfg.Table
	}
	s := &Source{cfg: cfg, mapper: m, dia: d, stream: cfg.driver() + ":" + name}
	if !(len(cfg.Key) == 1 && cfg.Key[0] == cfg.Watermark) {
		s.keys = append([]string(nil), cfg.Key...)
	}
	return s, nil
}

// Stream is the cursor stream of the source: "<driver>:<table or name>".
func (s *Source) Stream() string { return s.stream }

// Close closes the database handle, if Read opened one.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

func (s *Source) open() (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		return s.db, nil
	}
	dsn := s.cfg.DSN
	if dsn == "" {
		dsn = os.Getenv(s.cfg.DSNEnv)
		if dsn == "" {
			return nil, fmt.Errorf("%w: sql: environment variable %s (sql.dsn_env) is empty or unset", connectors.ErrPermanent, s.cfg.DSNEnv)
		}
	}
	var db *sql.DB
	var err error
	if s.cfg.driver() == "pgx" {
		// Parse now, so that a malformed DSN is reported as such (pgx
		// masks the password in its parse errors).
		var pc *pgx.ConnConfig
		if pc, err = pgx.ParseConfig(dsn); err == nil {
			db = stdlib.OpenDB(*pc)
		}
	} else {
		db, err = sql.Open(s.cfg.driver(), dsn)
	}
	if err != nil {
		// Unknown driver or a DSN the driver cannot parse; the message
		// must not echo the DSN, which may hold a password.
		return nil, fmt.Errorf("%w: sql: open %s: %v", connectors.ErrPermanent, s.stream, redact(err, dsn))
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	return db, nil
}

// redact removes the DSN from an error message.
func redact(err error, dsn string) string {
	msg := err.Error()
	if dsn != "" {
		msg = strings.ReplaceAll(msg, dsn, "<dsn>")
	}
	return msg
}

// selectSQL builds the page query; after says whether a resume position is
// bound. It returns the statement and how the arguments are laid out:
// argument i is position value order[i] (0: watermark, 1…: keys).
func (s *Source) selectSQL(after bool) (string, []int) {
	q := s.dia.quote
	var from string
	if s.cfg.Table != "" {
		parts := strings.Split(s.cfg.Table, ".")
		for i, p := range parts {
			parts[i] = q(p)
		}
		from = strings.Join(parts, ".")
	} else {
		from = "(" + s.cfg.Query + ") AS cb_src"
	}
	cols := append([]string{s.cfg.Watermark}, s.keys...)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = q(c)
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	if s.dia.topLimit {
		fmt.Fprintf(&b, "TOP (%d) ", s.cfg.BatchRows)
	}
	b.WriteString("* FROM ")
	b.WriteString(from)
	b.WriteString(" WHERE ")
	b.WriteString(quoted[0])
	b.WriteString(" IS NOT NULL")
	var order []int
	if after {
		b.WriteString(" AND ")
		switch {
		case len(cols) == 1:
			b.WriteString(quoted[0] + " > " + s.dia.param(1))
			order = []int{0}
		case s.dia.rowCmp:
			params := make([]string, len(cols))
			for i := range cols {
				params[i] = s.dia.param(i + 1)
				order = append(order, i)
			}
			fmt.Fprintf(&b, "(%s) > (%s)", strings.Join(quoted, ", "), strings.Join(params, ", "))
		default:
			// (a > x) OR (a = x AND b > y) OR (a = x AND b = y AND c > z) …
			var ors []string
			for i := range cols {
				var ands []string
				for j := 0; j < i; j++ {
					order = append(order, j)
					ands = append(ands, quoted[j]+" = "+s.dia.param(len(order)))
				}
				order = append(order, i)
				ands = append(ands, quoted[i]+" > "+s.dia.param(len(order)))
				ors = append(ors, "("+strings.Join(ands, " AND ")+")")
			}
			b.WriteString("(" + strings.Join(ors, " OR ") + ")")
		}
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(strings.Join(quoted, ", "))
	if !s.dia.topLimit {
		fmt.Fprintf(&b, " LIMIT %d", s.cfg.BatchRows)
	}
	return b.String(), order
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context, from connectors.Positions, emit connectors.Emit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	var pos *Position
	cur, seen := from[s.stream]
	if seen && cur.Token != "" {
		p, err := DecodeToken(cur.Token)
		if err != nil {
			return fmt.Errorf("%w: sql %s: cursor %v: %v", connectors.ErrPermanent, s.stream, cur, err)
		}
		if len(p.Keys) != len(s.keys) {
			return fmt.Errorf("%w: sql %s: cursor %v has %d key values but sql.key has %d tie-breaker columns (was the key changed?)",
				connectors.ErrPermanent, s.stream, cur, len(p.Keys), len(s.keys))
		}
		pos = &p
	} else if seen && cur.Pos > 0 {
		return fmt.Errorf("%w: sql %s: cursor %v carries no watermark token, cannot resume", connectors.ErrPermanent, s.stream, cur)
	}
	seq := cur.Pos
	db, err := s.open()
	if err != nil {
		return err
	}
	for {
		page, err := s.page(ctx, db, pos)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return err
		}
		if len(page.recs) > 0 {
			for i := range page.recs {
				seq++
				page.recs[i].Cursor = connectors.Cursor{Stream: s.stream, Pos: seq, Token: page.tokens[i]}
			}
			if err := emit(ctx, page.recs); err != nil {
				return err
			}
			pos = &page.last
		}
		if len(page.recs) < s.cfg.BatchRows {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.cfg.PollTimeout > 0 && time.Since(start) >= s.cfg.PollTimeout {
			return nil
		}
	}
}

type page struct {
	recs   []connectors.Record
	tokens []string
	last   Position
}

// page fetches one page after pos (nil: from the start) and maps it.
func (s *Source) page(ctx context.Context, db *sql.DB, pos *Position) (page, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	stmt, order := s.selectSQL(pos != nil)
	var args []any
	if pos != nil {
		vals := append([]Value{pos.Watermark}, pos.Keys...)
		for _, i := range order {
			a, err := vals[i].Arg()
			if err != nil {
				return page{}, fmt.Errorf("%w: sql %s: %v", connectors.ErrPermanent, s.stream, err)
			}
			args = append(args, a)
		}
	}
	rows, err := db.QueryContext(qctx, stmt, args...)
	if err != nil {
		return page{}, s.classify("query", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return page{}, s.classify("columns", err)
	}
	types, _ := rows.ColumnTypes()
	zoneless := make([]bool, len(cols))
	for i := range types {
		if types[i] != nil {
			zoneless[i] = zonelessType(types[i].DatabaseTypeName())
		}
	}
	wmIdx, keyIdx, err := s.positions(cols)
	if err != nil {
		return page{}, err
	}
	bound, err := s.bind(cols)
	if err != nil {
		return page{}, err
	}
	var p page
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	cells := make([]string, len(cols))
	for rows.Next() {
		for i := range raw {
			raw[i] = nil
		}
		if err := rows.Scan(ptrs...); err != nil {
			return page{}, s.classify("scan", err)
		}
		var last Position
		if last.Watermark, err = valueOf(raw[wmIdx]); err != nil {
			return page{}, fmt.Errorf("%w: sql %s: watermark column %s: %v", connectors.ErrPermanent, s.stream, s.cfg.Watermark, err)
		}
		for j, ki := range keyIdx {
			v, err := valueOf(raw[ki])
			if err != nil {
				return page{}, fmt.Errorf("%w: sql %s: key column %s: %v", connectors.ErrPermanent, s.stream, s.keys[j], err)
			}
			last.Keys = append(last.Keys, v)
		}
		var nulls []bool
		for i, v := range raw {
			var null bool
			cells[i], null = format(v, zoneless[i])
			if null {
				if nulls == nil {
					nulls = make([]bool, len(cols))
				}
				nulls[i] = true
			}
		}
		rec := connectors.Record{}
		if rec.Values, err = bound.Map(cells); err != nil {
			rec.Err = fmt.Errorf("%s %s=%s: %w", s.stream, s.cfg.Watermark, last.Watermark.Text, err)
			rec.Values = nil
			rec.Raw = rowJSON(cols, cells, nulls)
		}
		p.recs = append(p.recs, rec)
		p.tokens = append(p.tokens, last.Token())
		p.last = last
	}
	if err := rows.Err(); err != nil {
		return page{}, s.classify("fetch", err)
	}
	return p, nil
}

// positions finds the watermark and key columns in the result.
func (s *Source) positions(cols []string) (int, []int, error) {
	find := func(name string) int {
		for i, c := range cols {
			if c == name {
				return i
			}
		}
		for i, c := range cols {
			if strings.EqualFold(c, name) {
				return i
			}
		}
		return -1
	}
	wm := find(s.cfg.Watermark)
	if wm < 0 {
		return 0, nil, fmt.Errorf("%w: sql %s: watermark column %s not in result [%s]", connectors.ErrPermanent, s.stream, s.cfg.Watermark, strings.Join(cols, ", "))
	}
	keys := make([]int, len(s.keys))
	for j, k := range s.keys {
		if keys[j] = find(k); keys[j] < 0 {
			return 0, nil, fmt.Errorf("%w: sql %s: key column %s not in result [%s]", connectors.ErrPermanent, s.stream, k, strings.Join(cols, ", "))
		}
	}
	return wm, keys, nil
}

// bind returns the mapping bound to the result's columns, cached while
// they stay the same.
func (s *Source) bind(cols []string) (*mapping.Bound, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound != nil && equal(s.header, cols) {
		return s.bound, nil
	}
	b, err := s.mapper.Bind(cols)
	if err != nil {
		return nil, fmt.Errorf("%w: sql %s: %v", connectors.ErrPermanent, s.stream, err)
	}
	s.header, s.bound = append([]string(nil), cols...), b
	return b, nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sqlStater is implemented by PostgreSQL errors (pgconn.PgError) and by
// other drivers' errors that carry an SQLSTATE.
type sqlStater interface{ SQLState() string }

// permanentStates are SQLSTATE classes (two characters) and codes that
// retrying cannot fix.
var permanentStates = map[string]bool{
	"28":    true, // invalid authorization: bad password (28P01), unknown role (28000)
	"42":    true, // syntax error or access rule violation: missing table (42P01) or column (42703), no privilege (42501)
	"3D":    true, // database does not exist (3D000)
	"3F":    true, // schema does not exist (3F000)
	"22023": true, // invalid parameter value (e.g. in the DSN's options)
}

// SQLState returns the SQLSTATE carried by err, or "".
func SQLState(err error) string {
	var st sqlStater
	if errors.As(err, &st) {
		return st.SQLState()
	}
	return ""
}

// IsPermanent reports whether a database error cannot be fixed by retrying.
func IsPermanent(err error) bool {
	code := SQLState(err)
	if len(code) != 5 {
		return false
	}
	return permanentStates[code] || permanentStates[code[:2]]
}

func (s *Source) classify(op string, err error) error {
	if IsPermanent(err) {
		return fmt.Errorf("%w: sql %s: %s: %w", connectors.ErrPermanent, s.stream, op, err)
	}
	return fmt.Errorf("sql %s: %s: %w", s.stream, op, err)
}

// zonelessType reports whether a database type holds times without a zone
// (their wall clock is rendered without one so the mapping's timezone applies).
func zonelessType(name string) bool {
	switch strings.ToUpper(name) {
	case "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE", "DATETIME", "DATETIME2", "SMALLDATETIME", "DATE", "TIME":
		return true
	}
	return false
}

// format renders a scanned value as mapping input; null reports SQL NULL.
func format(v any, zoneless bool) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, false
	case []byte:
		return string(x), false
	case int64:
		return strconv.FormatInt(x, 10), false
	case int32:
		return strconv.FormatInt(int64(x), 10), false
	case int:
		return strconv.Itoa(x), false
	case uint64:
		return strconv.FormatUint(x, 10), false
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), false
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), false
	case bool:
		return strconv.FormatBool(x), false
	case time.Time:
		if zoneless {
			if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
				return x.Format("2006-01-02 15:04:05"), false
			}
			return x.Format("2006-01-02 15:04:05.999999999"), false
		}
		return x.Format(time.RFC3339Nano), false
	case fmt.Stringer:
		return x.String(), false
	}
	return fmt.Sprint(v), false
}

// rowJSON renders a row as a JSON object of its columns, in order, with
// NULL as null and every other value as the string given to the mapping.
func rowJSON(cols, cells []string, nulls []bool) []byte {
	b := []byte{'{'}
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c)
		b = append(b, ':')
		if nulls != nil && nulls[i] {
			b = append(b, "null"...)
			continue
		}
		b = appendJSONString(b, cells[i])
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
