package pgwire

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"citybrain/warehouse/sqlaccess"
)

// Server-side cursors: DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH[OUT]
// HOLD] FOR query, FETCH / MOVE [NEXT | n | FORWARD [n] | ALL | FORWARD ALL]
// FROM name, CLOSE name | ALL — what psycopg's named cursors, pandas'
// chunksize and DBeaver use to read a large result a piece at a time. The
// query is checked by the sandbox like any other and audited once, when its
// rows end or the cursor is closed. A cursor reads forward only (SCROLL and
// FETCH BACKWARD are refused); one declared WITHOUT HOLD ends with its
// transaction (COMMIT, ROLLBACK), one WITH HOLD with the connection.

var (
	declareRE = regexp.MustCompile(`(?is)^\s*DECLARE\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s+(BINARY\s+)?(?:ASENSITIVE\s+|INSENSITIVE\s+)?(NO\s+SCROLL\s+|SCROLL\s+)?CURSOR\s+(?:(WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(.*?)\s*;?\s*$`)
	fetchRE   = regexp.MustCompile(`(?is)^\s*(FETCH|MOVE)\s+(?:(NEXT|ALL|FORWARD\s+ALL|FORWARD\s+\d+|FORWARD|\d+|PRIOR|FIRST|LAST|BACKWARD(?:\s+\d+|\s+ALL)?|ABSOLUTE\s+-?\d+|RELATIVE\s+-?\d+)\s+)?(?:FROM|IN)\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*;?\s*$`)
	closeRE   = regexp.MustCompile(`(?is)^\s*CLOSE\s+(ALL|"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*;?\s*$`)
)

// cursorOp is a cursor statement.
type cursorOp struct {
	kind  string // DECLARE, FETCH, MOVE, CLOSE
	name  string
	count int64     // rows to fetch or move; -1: all
	hold  bool      // WITH HOLD
	inner *prepared // DECLARE: the query
}

// cursor is a declared cursor: the query's portal, read forward.
type cursor struct {
	pt   *portal
	hold bool
	done bool // every row has been read
}

func cursorName(s string) string {
	if strings.HasPrefix(s, `"`) {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return strings.ToLower(s)
}

// prepareCursor recognises a cursor statement; ok false for anything else.
func (c *conn) prepareCursor(ctx context.Context, q string, oids []uint32) (p *prepared, ok bool, err error) {
	if m := declareRE.FindStringSubmatch(q); m != nil {
		if m[2] != "" {
			return nil, true, &sqlaccess.Error{Code: "0A000", Msg: "BINARY cursors are not supported: declare it without BINARY (the client chooses binary per FETCH) / 不支持 BINARY 游标"}
		}
		if strings.HasPrefix(strings.ToUpper(m[3]), "SCROLL") {
			return nil, true, &sqlaccess.Error{Code: "0A000", Msg: "SCROLL cursors are not supported: cursors read forward only (declare it NO SCROLL) / 游标只能向前读取"}
		}
		inner, err := c.prepare(ctx, m[5], oids)
		if err != nil {
			return nil, true, err
		}
		if inner.local != nil || inner.copyOut {
			inner.close()
			return nil, true, &sqlaccess.Error{Code: "42601", Msg: "DECLARE … CURSOR FOR needs a query (SELECT, VALUES, …) / 游标需要一条查询语句"}
		}
		op := &cursorOp{kind: "DECLARE", name: cursorName(m[1]), hold: strings.EqualFold(m[4], "WITH"), inner: inner}
		return &prepared{sql: q, plans: &c.srv.plans, cursor: op, params: inner.params, paramOIDs: inner.paramOIDs}, true, nil
	}
	if m := fetchRE.FindStringSubmatch(q); m != nil {
		kind := strings.ToUpper(m[1])
		how := strings.ToUpper(strings.Join(strings.Fields(m[2]), " "))
		op := &cursorOp{kind: kind, name: cursorName(m[3]), count: 1}
		switch {
		case how == "" || how == "NEXT" || how == "FORWARD":
		case how == "ALL" || how == "FORWARD ALL":
			op.count = -1
		case strings.HasPrefix(how, "FORWARD "):
			op.count, _ = strconv.ParseInt(strings.TrimPrefix(how, "FORWARD "), 10, 64)
		default:
			n, err := strconv.ParseInt(how, 10, 64)
			if err != nil {
				return nil, true, &sqlaccess.Error{Code: "55000", Msg: fmt.Sprintf("%s %s: cursors read forward only (NEXT, n, FORWARD n, ALL) / 游标只能向前读取", kind, how)}
			}
			op.count = n
		}
		p := &prepared{sql: q, plans: &c.srv.plans, cursor: op}
		if kind == "FETCH" {
			cur := c.cursors[op.name]
			if cur == nil {
				return nil, true, noCursor(op.name)
			}
			p.shape = cur.pt.shape
		}
		return p, true, nil
	}
	if m := closeRE.FindStringSubmatch(q); m != nil {
		name := cursorName(m[1])
		if strings.EqualFold(m[1], "ALL") {
			name = ""
		}
		return &prepared{sql: q, plans: &c.srv.plans, cursor: &cursorOp{kind: "CLOSE", name: name}}, true, nil
	}
	return nil, false, nil
}

func noCursor(name string) error {
	return &sqlaccess.Error{Code: "34000", Msg: fmt.Sprintf("cursor %q does not exist / 游标不存在", name)}
}

// runCursor runs a cursor statement (args: DECLARE's parameters).
func (c *conn) runCursor(ctx context.Context, p *prepared, args []any, formats []int16) error {
	op := p.cursor
	switch op.kind {
	case "DECLARE":
		if c.cursors[op.name] != nil {
			return &sqlaccess.Error{Code: "42P03", Msg: fmt.Sprintf("cursor %q already exists / 游标已存在", op.name)}
		}
		if c.tx == 'I' && !op.hold {
			// As PostgreSQL: a cursor WITHOUT HOLD lives in a transaction block.
			return &sqlaccess.Error{Code: "25P01", Msg: "DECLARE CURSOR can only be used in transaction blocks (BEGIN first, or declare it WITH HOLD) / 请先 BEGIN"}
		}
		pt := &portal{p: op.inner, args: args}
		if err := c.start(ctx, pt, false); err != nil {
			op.inner.close()
			return err
		}
		c.cursors[op.name] = &cursor{pt: pt, hold: op.hold}
		c.send(&pgproto3.CommandComplete{CommandTag: []byte("DECLARE CURSOR")})
	case "FETCH", "MOVE":
		cur := c.cursors[op.name]
		if cur == nil {
			return noCursor(op.name)
		}
		n, err := c.fetch(cur, op.count, op.kind == "MOVE", formats)
		if err != nil {
			c.closeCursor(op.name, err)
			return err
		}
		c.send(&pgproto3.CommandComplete{CommandTag: []byte(op.kind + " " + strconv.FormatInt(n, 10))})
	case "CLOSE":
		if op.name == "" {
			for name := range c.cursors { // CLOSE ALL
				c.closeCursor(name, nil)
			}
		} else {
			if c.cursors[op.name] == nil {
				return noCursor(op.name)
			}
			c.closeCursor(op.name, nil)
		}
		tag := "CLOSE CURSOR"
		if op.name == "" {
			tag = "CLOSE CURSOR ALL"
		}
		c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	}
	return nil
}

// fetch sends (or, for MOVE, skips) up to max rows of the cursor (-1: all).
func (c *conn) fetch(cur *cursor, max int64, discard bool, formats []int16) (int64, error) {
	if cur.done {
		return 0, nil
	}
	pt := cur.pt
	cols := pt.shape.cols
	dest := make([]driver.Value, len(cols))
	fm := make([]int16, len(cols))
	for i := range fm {
		fm[i] = formatOf(formats, i)
	}
	var n int64
	for max < 0 || n < max {
		if err := pt.rows.Next(dest); err != nil {
			if err == io.EOF || err.Error() == "EOF" {
				cur.done = true
				pt.rows.Close(nil)
				break
			}
			return n, err
		}
		n++
		pt.sent++
		if discard {
			continue
		}
		var err error
		if c.wbuf, err = c.appendDataRow(c.wbuf, dest, cols, fm); err == nil {
			err = c.maybeFlush()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// closeCursor ends a cursor (its query is audited now if its rows had not ended).
func (c *conn) closeCursor(name string, err error) {
	cur := c.cursors[name]
	if cur == nil {
		return
	}
	if !cur.done && cur.pt.rows != nil {
		cur.pt.rows.Close(err)
	}
	cur.pt.p.close()
	delete(c.cursors, name)
}

// endTransaction closes the cursors declared WITHOUT HOLD (COMMIT, ROLLBACK).
func (c *conn) endTransaction() {
	for name, cur := range c.cursors {
		if !cur.hold {
			c.closeCursor(name, nil)
		}
	}
}
