package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"citybrain/internal/auth"
)

// TestBackstopRestartsServe: a statement DuckDB cannot interrupt
// (levenshtein of two 120,000-character strings is one call on one row,
// minutes of work) sent over the wire by a department user ends when it
// runs backstop.grace past its statement timeout: serve restarts itself
// in place (same process), the client's connection drops, the statement
// is audited as killed, and serve answers again.
func TestBackstopRestartsServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serve twice: skipped with -short")
	}
	pgPort := freePort(t)
	e := newEnv(t, "auth: {demo_users: true}\n")
	e.replace(`sql_access: {pgwire: {listen: "127.0.0.1:0"}}`,
		fmt.Sprintf(`sql_access: {pgwire: {listen: "127.0.0.1:%d"}, statement_timeout: 2s, backstop: {grace: 2s}}`, pgPort))
	s := e.serve("serve.log")
	banners := func() int { b, _ := os.ReadFile(s.log); return strings.Count(string(b), "Stop with Ctrl-C") }
	waitFor(t, "serve's banner", 2*time.Minute, func() (bool, string) { return banners() == 1, s.logTail() })
	pid := s.cmd.Process.Pid
	connect := func(user string) (*pgx.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/citybrain?sslmode=disable", user, auth.DemoPassword, pgPort))
	}
	c, err := connect("dept_water")
	if err != nil {
		t.Fatal(err)
	}
	bomb := "select levenshtein(repeat('a', 120000), repeat('b', 120000))"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var n int64
	err = c.QueryRow(ctx, bomb, pgx.QueryExecModeSimpleProtocol).Scan(&n)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("%s answered %d after %v: the backstop did not end it\n%s", bomb, n, took, s.logTail())
	}
	t.Logf("client saw %v after %v", err, took)
	select {
	case <-s.done:
		t.Fatalf("serve exited instead of restarting in place\n%s", s.logTail())
	default:
	}
	waitFor(t, "serve's second banner", 2*time.Minute, func() (bool, string) { return banners() == 2, s.logTail() })
	t.Logf("serve answered again %v after the connection dropped", time.Since(start)-took)
	if s.cmd.Process.Pid != pid {
		t.Fatalf("pid changed")
	}
	if b, _ := os.ReadFile(s.log); !strings.Contains(string(b), "已自动重启 restarted in place: SQL backstop") {
		t.Errorf("the new serve does not say why it restarted\n%s", s.logTail())
	}
	var outcome, msg string
	waitFor(t, "the killed statement in audit.queries", time.Minute, func() (bool, string) {
		a, err := connect("admin")
		if err != nil {
			return false, err.Error()
		}
		defer a.Close(context.Background())
		err = a.QueryRow(context.Background(), "select outcome, error from audit.queries where sql = $1 order by started_at desc limit 1", bomb).Scan(&outcome, &msg)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if outcome != "killed" || !strings.Contains(msg, "could not be interrupted") || !strings.Contains(msg, "服务已重启") {
		t.Errorf("audit: %s %q; want killed, with why in both languages", outcome, msg)
	}
	// The department's session works again after reconnecting.
	c2, err := connect("dept_water")
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRow(context.Background(), "select 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Errorf("after the restart: %d, %v", n, err)
	}
	c2.Close(context.Background())
	s.stop(t)
}
