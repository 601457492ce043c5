package sqlaccess

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"citybrain/internal/proc"
)

// The backstop. The statement timeout interrupts DuckDB between chunks and
// memory_limit bounds its buffer pool, but one scalar call working on one
// huge value is neither interrupted nor counted: levenshtein of two 60,000
// character strings ran 6 s under a 2 s timeout, and doubling a string
// with || takes gigabytes outside the limit. Size bombs with a literal
// size are refused before they run (bounds.go); compositions cannot all
// be foreseen. So every DuckDB call an analyst statement makes (prepare,
// execute, each fetch) is watched while it runs, and when one
//
//   - runs Backstop.Grace past its statement's deadline, or
//   - while it runs, serve's resident memory grows beyond the resident
//     memory when the earliest running statement began, plus each running
//     statement's memory_limit, plus Backstop.MemorySlack,
//
// the statements are audited as "killed" (the others running beside them
// as "cancelled"), the audit log is committed, and OnBackstop is called:
// serve restarts itself in place (internal/proc.Restart). That is the only
// way to stop a thread inside DuckDB; serve survives a kill -9 at any
// moment by design, so the restart loses nothing but the open connections,
// and clients reconnect. The watcher runs only while a statement does.

// backstopTick is how often the watcher looks.
const backstopTick = 250 * time.Millisecond

// call is one analyst statement the backstop watches, from its prepare or
// execution to its end.
type call struct {
	s        *Session
	sql      string
	start    time.Time
	deadline time.Time
	rss      int64       // serve's resident bytes when it began
	busy     atomic.Bool // inside a DuckDB call (false between calls: a cursor waiting for FETCH, a slow client)
	fired    bool        // already reported (OnBackstop returned)
}

func (c *call) enter() {
	if c != nil {
		c.busy.Store(true)
	}
}

func (c *call) leave() {
	if c != nil {
		c.busy.Store(false)
	}
}

// backstop is the set of watched calls and the watcher.
type backstop struct {
	mu      sync.Mutex
	calls   map[*call]struct{}
	running bool
	now     func() time.Time
	rss     func() (int64, bool)
}

// watch starts watching a statement of s; end it with unwatch.
func (a *Access) watch(s *Session, sql string) *call {
	if !a.cfg.Backstop.Enabled {
		return nil
	}
	bs := &a.bs
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.calls == nil {
		bs.calls = map[*call]struct{}{}
		bs.now = time.Now
		bs.rss = proc.Resident
	}
	now := bs.now()
	c := &call{s: s, sql: sql, start: now, deadline: now.Add(a.cfg.StatementTimeout)}
	c.rss, _ = bs.rss()
	bs.calls[c] = struct{}{}
	if !bs.running {
		bs.running = true
		go a.watcher()
	}
	return c
}

func (a *Access) unwatch(c *call) {
	if c == nil {
		return
	}
	a.bs.mu.Lock()
	delete(a.bs.calls, c)
	a.bs.mu.Unlock()
}

// watcher looks at the watched calls every tick until there are none.
func (a *Access) watcher() {
	t := time.NewTicker(backstopTick)
	defer t.Stop()
	for range t.C {
		if !a.checkBackstop() {
			return
		}
	}
}

// checkBackstop looks once; false when nothing is watched any more (the
// watcher then stops).
func (a *Access) checkBackstop() bool {
	bs := &a.bs
	bs.mu.Lock()
	if len(bs.calls) == 0 {
		bs.running = false
		bs.mu.Unlock()
		return false
	}
	now := bs.now()
	rss, rssOK := bs.rss()
	limit, _ := ParseBytes(a.cfg.MemoryLimit)
	slack, _ := ParseBytes(a.cfg.Backstop.MemorySlack)
	var culprits, others []*call
	var base int64 = math.MaxInt64
	busy := 0
	var why string
	for c := range bs.calls {
		if c.fired {
			continue
		}
		if c.rss > 0 && c.rss < base {
			base = c.rss
		}
		if !c.busy.Load() {
			others = append(others, c)
			continue
		}
		busy++
		if over := now.Sub(c.deadline); over > a.cfg.Backstop.Grace {
			culprits = append(culprits, c)
			why = fmt.Sprintf("ran %s past sql_access.statement_timeout (%s) and could not be interrupted / 超过语句超时 %s 仍无法中断",
				over.Round(time.Second), a.cfg.StatementTimeout, over.Round(time.Second))
		} else {
			others = append(others, c)
		}
	}
	if len(culprits) == 0 && rssOK && limit > 0 && busy > 0 && base != math.MaxInt64 {
		if allowed := base + int64(len(bs.calls))*limit + slack; rss > allowed {
			why = fmt.Sprintf("serve's resident memory reached %s, above the %s its running statements may take (sql_access.memory_limit %s each, backstop.memory_slack %s) / 进程内存 %s 超出查询内存上限",
				formatBytes(rss), formatBytes(allowed), a.cfg.MemoryLimit, a.cfg.Backstop.MemorySlack, formatBytes(rss))
			// the busy calls are the culprits: memory grows only inside a call
			var idle []*call
			for _, c := range others {
				if c.busy.Load() {
					culprits = append(culprits, c)
				} else {
					idle = append(idle, c)
				}
			}
			others = idle
		}
	}
	for _, c := range culprits {
		c.fired = true
	}
	for _, c := range others {
		if len(culprits) > 0 {
			c.fired = true
		}
	}
	bs.mu.Unlock()
	if len(culprits) > 0 {
		a.fire(why, culprits, others)
	}
	return true
}

// fire audits the statements the restart ends, commits the audit log and
// calls OnBackstop.
func (a *Access) fire(why string, culprits, others []*call) {
	now := time.Now()
	var who []string
	for _, c := range culprits {
		who = append(who, fmt.Sprintf("%s: %.80q", c.s.User.Name, c.sql))
		c.s.auditOutcome(c.sql, c.start, now.Sub(c.start), "killed",
			"已强制终止 killed: the statement "+why+"; citybrain serve restarted to end it — reconnect, and narrow the query (smaller values, fewer rows) / 服务已重启以终止该查询，请重新连接并缩小查询")
	}
	for _, c := range others {
		c.s.auditOutcome(c.sql, c.start, now.Sub(c.start), "cancelled",
			"已取消 cancelled: citybrain serve restarted to end another statement that could not be interrupted; reconnect and run it again / 服务重启，请重新连接后再次执行")
	}
	reason := "SQL backstop 查询兜底: " + strings.Join(who, "; ") + ": " + why
	a.log.Error("SQL backstop: ending statements DuckDB cannot interrupt", "statements", who, "why", why, "others", len(others))
	if a.Audit != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.Audit.Flush(ctx); err != nil {
			a.log.Error("SQL backstop: audit log not committed", "err", err)
		}
		cancel()
	}
	if a.OnBackstop != nil {
		a.OnBackstop(reason)
	}
}

// auditOutcome records a statement's end with a given outcome.
func (s *Session) auditOutcome(q string, start time.Time, d time.Duration, outcome, msg string) {
	if s.a.Audit == nil {
		return
	}
	s.a.Audit.Add(Entry{At: start, User: s.User.Name, Role: string(s.User.Role), Department: s.User.Department,
		Interface: s.Iface, Client: s.Client, SQL: q, Duration: d, Outcome: outcome, Error: msg})
}

var bytesRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(I?)B?\s*$`)

// ParseBytes reads a size as DuckDB writes one: "2GB", "1.8 GiB", "512MB",
// "1000" (bytes); "" is 0. KB, MB … are powers of 1000, KiB, MiB … of 1024.
func ParseBytes(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	m := bytesRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return 0, fmt.Errorf("%q: want a size such as 2GB, 1.5GiB or 512MB", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	base := 1000.0
	if m[3] != "" {
		base = 1024
	}
	exp := strings.Index("KMGT", m[2]) + 1
	if m[2] == "" {
		exp = 0
	}
	return int64(v * math.Pow(base, float64(exp))), nil
}

func formatBytes(n int64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
