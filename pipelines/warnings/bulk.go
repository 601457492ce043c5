package warnings

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"citybrain/schemas"
)

// Catch-up in bulk.
//
// A windowed input (mobile_signal, crowd_counts) is evaluated one interval at
// a time when it is live: each interval's state, usual count and lifecycle
// depend on the one before. A backlog — a first start, a restart, falling
// behind — comes as micro-batches holding hundreds of intervals, and one pass
// of ~15 statements per interval took 7–9 min for make run's week of history.
// rules/bulk/ holds the same state and rules as sets over many intervals:
// the recurrences as window functions over each subject's ordered intervals
// (running means as cumulative averages, lags with the gap rule, usual counts
// as of an interval as versions valid over a range of intervals), the rules
// producing one row per subject and interval, then the lifecycle applied in
// Go to all the signals in event-time order, as the sequential passes apply
// them.
//
// Files, per windowed input (rules/bulk/<input>.<part>.sql):
//   - stage:  once per batch, after in_<input> holds the batch (optional);
//   - state:  the new state rows of all staged intervals, into temp tables,
//     without changing the stored state;
//   - <rule>: the bulk form of rules/<input>.<rule>.sql (same names, same
//     columns); a row may carry _only_if_active: the sequential rule returns
//     it only when a warning of the subject is open at that interval, which
//     the lifecycle decides, so the engine drops it otherwise;
//   - commit: store the state as it is after the interval in bulk_cut.
//
// crowd_counts.state.sql reads the lifecycle (no fold into the usual count
// while the venue is under a crowd warning), so its bulk form assumes the
// warnings open now stay open and the engine stops at the first interval
// after which one was raised or cleared, commits up to it and evaluates the
// rest again (see bulkFeedback).

//go:embed rules/bulk/*.sql
var builtinBulk embed.FS

// bulkFeedback names, per input, the rule whose open warnings its bulk state
// reads: a stretch ends at the first interval that raises or clears one.
var bulkFeedback = map[string]string{"crowd_counts": "crowd_counts.crowd_venue"}

// bulkRules are the bulk forms of the windowed inputs' statements and rules.
type bulkRules struct {
	Stage, State, Commit map[string][]string
	Rules                map[string]map[string]string
}

// loadBulkRules reads rules/bulk (embedded when dir is ""; <dir>/bulk else).
// It returns nil without error when a rules directory has no bulk/: such a
// copy of the rules catches up interval by interval.
func loadBulkRules(dir string, seq *RuleSet) (*bulkRules, error) {
	var fsys fs.FS
	if dir == "" {
		sub, err := fs.Sub(builtinBulk, "rules/bulk")
		if err != nil {
			return nil, err
		}
		fsys = sub
	} else {
		p := filepath.Join(dir, "bulk")
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		fsys = os.DirFS(p)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("预警批量规则目录不可读 read bulk warning rules %s/bulk: %w", dir, err)
	}
	br := &bulkRules{Stage: map[string][]string{}, State: map[string][]string{}, Commit: map[string][]string{}, Rules: map[string]map[string]string{}}
	for _, en := range entries {
		name := en.Name()
		if en.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		in, part, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), ".")
		if _, windowed := windowed[in]; !ok || !windowed || part == "" {
			return nil, fmt.Errorf("批量规则文件名无效 bulk rule file bulk/%s: want <input>.<stage|state|commit|rule>.sql with input one of mobile_signal, crowd_counts", name)
		}
		switch part {
		case "stage":
			br.Stage[in] = SplitStatements(string(b))
		case "state":
			br.State[in] = SplitStatements(string(b))
		case "commit":
			br.Commit[in] = SplitStatements(string(b))
		default:
			if br.Rules[in] == nil {
				br.Rules[in] = map[string]string{}
			}
			br.Rules[in][part] = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(string(b)), ";"))
		}
	}
	// A bulk form must cover exactly the input's rules, or catch-up would skip or add warnings.
	for in := range br.State {
		var want, got []string
		for n := range seq.Rules[in] {
			want = append(want, n)
		}
		for n := range br.Rules[in] {
			got = append(got, n)
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, ",") != strings.Join(got, ",") || br.Commit[in] == nil {
			return nil, fmt.Errorf("批量规则与规则不一致 bulk rules for %s: rules %v and a commit.sql, want the rules %v of %s.*.sql (edit bulk/ with the rules, or remove bulk/ to catch up interval by interval)",
				in, got, want, in)
		}
	}
	return br, nil
}

// useBulk says whether the intervals of an input in one batch are evaluated in bulk.
func (e *Engine) useBulk(in string, intervals int) bool {
	return e.bulk != nil && e.bulk.State[in] != nil && e.cfg.BulkMinIntervals > 0 && intervals >= e.cfg.BulkMinIntervals
}

// bulkPass evaluates many intervals of a windowed input at once (ps: one
// record set per interval, oldest first, as passes returns them).
func (e *Engine) bulkPass(ctx context.Context, s *schemas.Schema, ps [][]schemas.Record) ([]Transition, error) {
	in := s.Name
	t := time.Now()
	if e.threads != 2 {
		if _, err := e.conn.ExecContext(ctx, "SET threads = 2"); err != nil {
			return nil, err
		}
		e.threads = 2
	}
	if _, err := e.conn.ExecContext(ctx, e.staged[in]); err != nil {
		return nil, err
	}
	var recs []schemas.Record
	for _, p := range ps {
		recs = append(recs, p...)
	}
	if err := e.stage(ctx, s, recs); err != nil {
		return nil, err
	}
	last := ps[len(ps)-1][0][s.Index(windowed[in].Time)].(time.Time).UTC()
	t = e.ph.Since("bulk.stage", t)
	if err := e.exec(ctx, "批量规则 bulk rule "+in+".stage.sql", e.bulk.Stage[in]...); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(e.bulk.Rules[in]))
	for n := range e.bulk.Rules[in] {
		names = append(names, n)
	}
	sort.Strings(names)
	feedback := bulkFeedback[in]
	var out []Transition
	for stretch := 1; ; stretch++ {
		// The state statements read the open warnings (active_warnings).
		if err := e.syncActive(ctx); err != nil {
			return nil, err
		}
		for i, st := range e.bulk.State[in] {
			if err := e.exec(ctx, "批量规则 bulk rule "+in+".state.sql", st); err != nil {
				return nil, err
			}
			t = e.ph.Since(fmt.Sprintf("bulk.state.%s.%d", in, i+1), t)
		}
		if in == "crowd_counts" {
			if err := e.forecastVenues(ctx, venueForecastQuery("bulk_cc_rows", "WHERE i.ord > 0")); err != nil {
				return nil, err
			}
			t = e.ph.Since("bulk.forecast."+in, t)
		}
		var sigs []Signal
		for _, n := range names {
			ss, err := e.signals(ctx, in+"."+n, e.bulk.Rules[in][n])
			if err != nil {
				return nil, fmt.Errorf("%w (rules/bulk/%s.%s.sql)", err, in, n)
			}
			sigs = append(sigs, ss...)
		}
		t = e.ph.Since("bulk.rules", t)
		// Event-time order, and within an interval the sequential pass's (rule name) order.
		sort.SliceStable(sigs, func(i, j int) bool {
			a, b := &sigs[i], &sigs[j]
			if !a.EventTime.Equal(b.EventTime) {
				return a.EventTime.Before(b.EventTime)
			}
			if a.Rule != b.Rule {
				return a.Rule < b.Rule
			}
			return a.SubjectID < b.SubjectID
		})
		ts, cut := e.applyBulk(sigs, feedback)
		out = append(out, ts...)
		t = e.ph.Since("bulk.lifecycle", t)
		done := cut.IsZero() || !cut.Before(last)
		if done {
			cut = last
		}
		if err := e.exec(ctx, "bulk_cut", fmt.Sprintf("CREATE OR REPLACE TEMP TABLE bulk_cut AS SELECT TIMESTAMP '%s' AS cut", cut.Format("2006-01-02 15:04:05.999999"))); err != nil {
			return nil, err
		}
		if err := e.exec(ctx, "批量规则 bulk rule "+in+".commit.sql", e.bulk.Commit[in]...); err != nil {
			return nil, err
		}
		t = e.ph.Since("bulk.commit."+in, t)
		if done {
			e.log.Debug("warnings bulk pass", "input", in, "intervals", len(ps), "records", len(recs), "stretches", stretch)
			break
		}
	}
	if err := e.syncActive(ctx); err != nil {
		return nil, err
	}
	if err := e.exec(ctx, "规则 rule "+in+".after.sql", e.rules.After[in]...); err != nil {
		return nil, err
	}
	e.ph.Since("after", t)
	return out, nil
}

// applyBulk applies signals (in event-time order) to the lifecycle. A signal
// marked onlyIfActive is dropped unless a warning of its subject is open at
// its turn (the sequential rule would not have returned it). With a feedback
// rule it stops after the first interval in which a warning of that rule was
// raised or cleared, and returns that interval (zero: all applied).
func (e *Engine) applyBulk(sigs []Signal, feedback string) ([]Transition, time.Time) {
	var out []Transition
	for i := 0; i < len(sigs); {
		at := sigs[i].EventTime
		changed := false
		for ; i < len(sigs) && sigs[i].EventTime.Equal(at); i++ {
			s := &sigs[i]
			k := s.key()
			wasOpen := e.lc.active[k] != nil
			if s.onlyIfActive && !wasOpen {
				continue
			}
			if tr := e.lc.apply(s); tr != nil {
				out = append(out, *tr)
			}
			if s.Rule == feedback && (e.lc.active[k] != nil) != wasOpen {
				changed = true
			}
		}
		if changed {
			return out, at
		}
	}
	return out, time.Time{}
}
