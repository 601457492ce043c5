package models

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func mapProject(t *testing.T, files map[string]string) (*Project, error) {
	t.Helper()
	fsys := fstest.MapFS{"dbt_project.yml": {Data: []byte("name: t\nvars:\n  lookback_days: 1\n")}}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return Load(fsys)
}

const srcYML = `version: 2
sources:
  - name: raw
    schema: raw
    freshness: {warn_after: {count: 1, period: day}, error_after: {count: 3, period: day}}
    tables:
      - name: events
        loaded_at_field: at_ts
`

func TestDAGOrderAndSelect(t *testing.T) {
	p, err := mapProject(t, map[string]string{
		"models/sources.yml": srcYML,
		"models/a.sql":       "select * from {{ source('raw', 'events') }}",
		"models/b.sql":       "{{ config(materialized='table') }} select * from {{ ref('a') }}",
		"models/c.sql":       "select * from {{ ref('b') }} join {{ ref('a') }} using (id)",
		"models/d.sql":       "select 1 as x",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Order(), ","); got != "a,b,c,d" {
		t.Errorf("order %s", got)
	}
	for sel, want := range map[string]string{"b": "b", "b+": "b,c", "+b": "a,b", "+c": "a,b,c", "a+": "a,b,c", "d,b": "b,d"} {
		got, err := p.Select([]string{sel})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("select %s: %v, want %s", sel, got, want)
		}
	}
	if _, err := p.Select([]string{"nope+"}); !errors.Is(err, ErrProject) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown selector: %v", err)
	}
	if l := p.Lineage([]string{"b"}); !strings.Contains(l, "← a") || !strings.Contains(l, "→ c") {
		t.Errorf("lineage: %s", l)
	}
}

func TestProjectErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"cycle named": {map[string]string{
			"models/a.sql": "select * from {{ ref('c') }}",
			"models/b.sql": "select * from {{ ref('a') }}",
			"models/c.sql": "select * from {{ ref('b') }}",
			"models/d.sql": "select * from {{ ref('a') }}",
		}, []string{"cycle", "a → b → c → a"}},
		"self cycle":       {map[string]string{"models/a.sql": "select * from {{ ref('a') }}"}, []string{"cycle", "a → a"}},
		"unknown ref":      {map[string]string{"models/a.sql": "select * from {{ ref('zz') }}"}, []string{"models/a.sql", "zz"}},
		"undeclared src":   {map[string]string{"models/a.sql": "select * from {{ source('raw', 'x') }}"}, []string{"raw.x", "undeclared"}},
		"unsupported tag":  {map[string]string{"models/a.sql": "select 1\n{% for x in y %}{% endfor %}"}, []string{"models/a.sql", "line 2", "for"}},
		"unsupported func": {map[string]string{"models/a.sql": "select {{ adapter.dispatch('x') }}"}, []string{"models/a.sql"}},
		"unclosed if":      {map[string]string{"models/a.sql": "select 1 {% if is_incremental() %} where 1"}, []string{"endif"}},
		"bad materialized": {map[string]string{"models/a.sql": "{{ config(materialized='ephemeral') }} select 1"}, []string{"ephemeral"}},
		"incremental key":  {map[string]string{"models/a.sql": "{{ config(materialized='incremental') }} select 1"}, []string{"unique_key"}},
		"bad test": {map[string]string{"models/a.sql": "select 1 as x",
			"models/a.yml": "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: x\n        data_tests: [dbt_utils_magic]\n"}, []string{"dbt_utils_magic"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mapProject(t, tc.files)
			if !errors.Is(err, ErrProject) {
				t.Fatalf("got %v, want ErrProject", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestRender(t *testing.T) {
	p, err := mapProject(t, map[string]string{
		"models/sources.yml": srcYML,
		"models/m.sql": `{{ config(materialized='incremental', unique_key='day') }}
{# a comment #}select {{ var('lookback_days') }} as a, '{{ var("missing", "dflt") }}' as b, {{ var('f', 0.25) }} as c
from {{ source('raw', 'events') }}
{% if is_incremental() %}where day > (select max(day) from {{ this }}){% else %}where true{% endif %}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Project: p}
	m := p.Models["m"]
	full, err := r.render(m, r.vars(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	want := "select 1 as a, 'dflt' as b, 0.25 as c\nfrom \"raw\".\"events\"\nwhere true"
	if full != want {
		t.Errorf("full:\n%s\nwant:\n%s", full, want)
	}
	inc, _ := r.render(m, r.vars(nil), true)
	if !strings.Contains(inc, `where day > (select max(day) from marts."m")`) {
		t.Errorf("incremental: %s", inc)
	}
	if _, err := r.render(&Model{Name: "x", Path: "x.sql", tpl: mustTpl(t, "{{ var('nope') }}")}, r.vars(nil), false); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unset var: %v", err)
	}
}

func mustTpl(t *testing.T, s string) []node {
	n, err := parseTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const eventsSQL = `SELECT 'e' || i AS id, TIMESTAMPTZ '2026-06-20 12:00:00+08' + to_days(CAST(i % 10 AS INTEGER)) AS at_ts, i % 3 AS kind FROM range(30) r(i)`

// TestMaterializations runs a small project: a view, a table and an
// incremental model, then late data and a backfill.
func TestMaterializations(t *testing.T) {
	tl := newTestLake(t)
	tl.load("raw.events", eventsSQL)
	p, err := mapProject(t, map[string]string{
		"models/sources.yml": srcYML,
		"models/ev.sql":      "select id, at_ts, cast(timezone('Asia/Shanghai', at_ts) as date) as day, kind from {{ source('raw', 'events') }}",
		"models/per_kind.sql": "{{ config(materialized='table') }}\n" +
			"select kind, count(*) as n from {{ ref('ev') }} group by kind",
		// Daily counts up to as_of_date; incremental runs recompute the last
		// lookback_days days and leave older days alone.
		"models/daily.sql": `{{ config(materialized='incremental', unique_key='day') }}
select day, count(*) as n, '{{ var("as_of_date") }}' as computed_on
from {{ ref('ev') }}
where day <= cast('{{ var("as_of_date") }}' as date)
{% if is_incremental() %}
  and day >= cast('{{ var("as_of_date") }}' as date) - {{ var('lookback_days') }}
{% endif %}
group by day`,
	})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	r := tl.runner(p, &progress)
	ctx := context.Background()
	rep, err := r.Run(ctx, RunOptions{Vars: map[string]any{"as_of_date": "2026-06-25"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Models {
		if m.Status != "ok" {
			t.Fatalf("%s: %s %v", m.Model, m.Status, m.Err)
		}
	}
	out := progress.String()
	for _, w := range []string{"1/3", "3/3", "marts.per_kind", "marts.daily", "OK"} {
		if !strings.Contains(out, w) {
			t.Errorf("progress lacks %q:\n%s", w, out)
		}
	}
	if got := tl.query("SELECT kind, n FROM marts.per_kind ORDER BY kind"); strings.Join(got, ",") != "0|10,1|10,2|10" {
		t.Errorf("per_kind: %v", got)
	}
	// A view model is not a lake table.
	if _, err := tl.lake.Load(ctx, "marts.ev"); err == nil {
		t.Error("the view model ev became a lake table")
	}
	if got := tl.query("SELECT count(*), strftime(min(day), '%Y-%m-%d'), strftime(max(day), '%Y-%m-%d') FROM marts.daily"); got[0] != "6|2026-06-20|2026-06-25" {
		t.Errorf("daily after full run: %v", got)
	}
	// Late data: 2 more events on 06-24 (inside the lookback) and on 06-21 (outside).
	tl.appendRows("raw.events", `SELECT * FROM (VALUES ('late1', TIMESTAMPTZ '2026-06-24 09:00:00+08', 1), ('late2', TIMESTAMPTZ '2026-06-24 10:00:00+08', 1), ('late3', TIMESTAMPTZ '2026-06-21 10:00:00+08', 1)) AS t(id, at_ts, kind)`)
	rep, err = r.Run(ctx, RunOptions{Vars: map[string]any{"as_of_date": "2026-06-25"}})
	if err != nil {
		t.Fatal(err)
	}
	var daily ModelResult
	for _, m := range rep.Models {
		if m.Model == "daily" {
			daily = m
		}
	}
	if !daily.Incremental || daily.Rows != 2 {
		t.Errorf("daily second run: incremental=%v rows=%d, want incremental, 2 rows (06-24, 06-25)", daily.Incremental, daily.Rows)
	}
	got := tl.query("SELECT strftime(day, '%d') || ':' || n FROM marts.daily ORDER BY day")
	if strings.Join(got, ",") != "20:3,21:3,22:3,23:3,24:5,25:3" {
		t.Errorf("after late data: %v (06-24 must count the late rows, 06-21 is outside the lookback)", got)
	}
	// Backfill 06-20..06-23 picks up the 06-21 late row.
	if _, err := r.Run(ctx, RunOptions{Select: []string{"daily"}, Vars: map[string]any{"as_of_date": "2026-06-23", "lookback_days": 3}}); err != nil {
		t.Fatal(err)
	}
	got = tl.query("SELECT strftime(day, '%d') || ':' || n FROM marts.daily ORDER BY day")
	if strings.Join(got, ",") != "20:3,21:4,22:3,23:3,24:5,25:3" {
		t.Errorf("after backfill: %v", got)
	}
	// Full refresh rebuilds from scratch.
	if _, err := r.Run(ctx, RunOptions{FullRefresh: true, Vars: map[string]any{"as_of_date": "2026-06-22"}}); err != nil {
		t.Fatal(err)
	}
	if got := tl.query("SELECT count(*) FROM marts.daily"); got[0] != "3" {
		t.Errorf("after full refresh to 06-22: %v days", got)
	}
	// Every run was recorded.
	if got := tl.query("SELECT count(DISTINCT run_id) FROM marts.model_runs"); got[0] != "4" {
		t.Errorf("model_runs: %v runs", got)
	}
}

// TestDataTests: each test kind fails on bad data, with the model named.
func TestDataTests(t *testing.T) {
	tl := newTestLake(t)
	tl.load("raw.events", eventsSQL)
	p, err := mapProject(t, map[string]string{
		"models/sources.yml": srcYML,
		"models/good.sql":    "{{ config(materialized='table') }} select kind from {{ source('raw', 'events') }} group by kind",
		"models/bad.sql":     "{{ config(materialized='table') }} select * from (values (1, 'a', 0), (1, 'z', 9), (NULL, 'a', 1)) t(id, colour, kind)",
		"models/props.yml": `version: 2
models:
  - name: bad
    meta: {zh: 坏数据, en: Bad data}
    columns:
      - name: id
        data_tests: [not_null, unique]
      - name: colour
        data_tests:
          - accepted_values: {values: ['a', 'b']}
      - name: kind
        data_tests:
          - relationships: {to: "ref('good')", field: kind}
  - name: good
    columns:
      - name: kind
        data_tests:
          - unique
          - not_null:
              config: {severity: warn}
`,
		"tests/no_nines.sql": "select * from {{ ref('bad') }} where kind = 9",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := tl.runner(p, nil)
	ctx := context.Background()
	if _, err := r.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Test(ctx, nil, nil)
	if !errors.Is(err, ErrTestFailed) {
		t.Fatalf("Test: %v", err)
	}
	status := map[string]string{}
	for _, tr := range res {
		status[tr.Name] = tr.Status + ":" + strconv.FormatInt(tr.Failing, 10)
	}
	want := map[string]string{
		"not_null_bad_id":            "fail:1",
		"unique_bad_id":              "fail:1",
		"accepted_values_bad_colour": "fail:1",
		"relationships_bad_kind":     "fail:1",
		"unique_good_kind":           "pass:0",
		"not_null_good_kind":         "pass:0",
		"no_nines":                   "fail:1",
	}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("%s: %s, want %s", k, status[k], v)
		}
	}
	for _, w := range []string{"not_null_bad_id (model bad, column id)", "relationships_bad_kind (model bad, column kind)", "no_nines (model bad)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q: %v", w, err)
		}
	}
	// Selecting only good runs only its tests, which pass.
	if _, err := r.Test(ctx, []string{"good"}, nil); err != nil {
		t.Errorf("good alone: %v", err)
	}
}

// TestModelFailureNamed: a failing model is reported with its name and
// file, its downstream models are skipped, independent ones still run.
func TestModelFailureNamed(t *testing.T) {
	tl := newTestLake(t)
	p, err := mapProject(t, map[string]string{
		"models/broken.sql": "{{ config(materialized='table') }} select no_such_column from (select 1 as x)",
		"models/after.sql":  "{{ config(materialized='table') }} select * from {{ ref('broken') }}",
		"models/fine.sql":   "{{ config(materialized='table') }} select 42 as answer",
	})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := tl.runner(p, &progress).Run(context.Background(), RunOptions{})
	if !errors.Is(err, ErrModelFailed) || !strings.Contains(err.Error(), "model broken (models/broken.sql)") || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("error: %v", err)
	}
	st := map[string]string{}
	for _, m := range rep.Models {
		st[m.Model] = m.Status
	}
	if st["broken"] != "error" || st["after"] != "skipped" || st["fine"] != "ok" {
		t.Errorf("statuses: %v", st)
	}
	if !strings.Contains(progress.String(), "ERROR") || !strings.Contains(progress.String(), "SKIP") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if got := tl.query("SELECT answer FROM marts.fine"); got[0] != "42" {
		t.Errorf("fine: %v", got)
	}
	if got := tl.query("SELECT model || ':' || status FROM marts.model_runs ORDER BY model"); strings.Join(got, ",") != "after:skipped,broken:error,fine:ok" {
		t.Errorf("recorded: %v", got)
	}
}

func TestFreshness(t *testing.T) {
	tl := newTestLake(t)
	tl.load("raw.events", eventsSQL) // newest event 2026-06-29 12:00 +08
	p, err := mapProject(t, map[string]string{"models/sources.yml": srcYML, "models/a.sql": "select 1"})
	if err != nil {
		t.Fatal(err)
	}
	r := tl.runner(p, nil)
	for now, want := range map[string]string{"2026-06-29T20:00:00+08:00": "pass", "2026-07-01T00:00:00+08:00": "warn", "2026-07-05T00:00:00+08:00": "error"} {
		tm, _ := time.Parse(time.RFC3339, now)
		r.Now = func() time.Time { return tm }
		fr, err := r.Freshness(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(fr) != 1 || fr[0].Status != want {
			t.Errorf("at %s: %+v, want %s", now, fr, want)
		}
	}
}
