package sqldb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestTokenRoundTrip(t *testing.T) {
	cases := []Position{
		{Watermark: Value{TypeTimestamp, "2026-11-01T08:00:00.123456Z"}, Keys: []Value{{TypeInt, "4711"}}},
		{Watermark: Value{TypeInt, "-9223372036854775808"}},
		{Watermark: Value{TypeText, "a&b=c d%e+f#g!h"}, Keys: []Value{{TypeText, "x"}, {TypeFloat, "1.5e+300"}, {TypeBool, "true"}}},
	}
	for _, p := range cases {
		tok := p.Token()
		got, err := DecodeToken(tok)
		if err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if got.Watermark != p.Watermark || len(got.Keys) != len(p.Keys) {
			t.Fatalf("%q decoded to %+v, want %+v", tok, got, p)
		}
		for i := range p.Keys {
			if got.Keys[i] != p.Keys[i] {
				t.Fatalf("%q key %d: %+v, want %+v", tok, i, got.Keys[i], p.Keys[i])
			}
		}
	}
	// Values come back as typed parameters.
	ts, _ := valueOf(time.Date(2026, 11, 1, 16, 0, 0, 1000, time.FixedZone("CST", 8*3600)))
	if ts.Text != "2026-11-01T08:00:00.000001Z" || ts.Type != TypeTimestamp {
		t.Fatalf("timestamp value %+v", ts)
	}
	arg, err := ts.Arg()
	if err != nil || !arg.(time.Time).Equal(time.Date(2026, 11, 1, 8, 0, 0, 1000, time.UTC)) {
		t.Fatalf("timestamp arg %v %v", arg, err)
	}
	if n, _ := (Value{TypeInt, "42"}).Arg(); n != int64(42) {
		t.Fatalf("int arg %#v", n)
	}
	if _, err := valueOf(nil); err == nil {
		t.Fatal("NULL watermark accepted")
	}
}

func TestDecodeTokenRejects(t *testing.T) {
	for _, tok := range []string{
		"", "wm=1", "wt=int", "wt=int&wm=x", "wt=timestamp&wm=yesterday",
		"wt=int&wm=1&k=2", "wt=int&wm=1&wt=int&wm=2", "wt=blob&wm=1", "wt=int&wm=1&k=2&kt=int&kt=int",
		"%zz",
	} {
		if _, err := DecodeToken(tok); err == nil {
			t.Errorf("DecodeToken(%q) accepted", tok)
		}
	}
}

func valid() Config {
	return Config{DSN: "postgres://x@h/db", Table: "public.incidents", Watermark: "updated_at", Key: Columns{"id"}}
}

func TestValidateIdentifiers(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Table = "x; drop table y" },
		func(c *Config) { c.Table = `incidents" ; drop table y; --` },
		func(c *Config) { c.Table = "a.b.c.d" },
		func(c *Config) { c.Table = "1abc" },
		func(c *Config) { c.Watermark = "x; drop table y" },
		func(c *Config) { c.Watermark = "updated_at desc" },
		func(c *Config) { c.Watermark = "" },
		func(c *Config) { c.Key = Columns{"id", "x; drop table y"} },
		func(c *Config) { c.Key = nil },
		func(c *Config) { c.Key = Columns{"id", "id"} },
		func(c *Config) { c.Query = "SELECT 1" },                             // both table and query
		func(c *Config) { c.Table, c.Query = "", "DELETE FROM y" },           // not a select
		func(c *Config) { c.Table, c.Query = "", "SELECT * FROM y" },         // no name
		func(c *Config) { c.DSN = "" },                                       // no dsn
		func(c *Config) { c.DSN, c.DSNEnv = "", "PG DSN" },                   // bad env name
		func(c *Config) { c.Driver = "oracle" },                              // unknown dialect
		func(c *Config) { c.Dialect = "db2" },                                //
		func(c *Config) { c.BatchRows = -1 },                                 //
		func(c *Config) { c.Table, c.Query, c.Name = "", "SELECT 1", "a#b" }, // breaks the cursor form
	}
	for i, mod := range bad {
		c := valid()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, c)
		}
	}
	good := []func(*Config){
		func(c *Config) { c.Table = "incidents" },
		func(c *Config) { c.Table, c.Query, c.Name = "", "  with x as (select 1) select * from x;", "q" },
		func(c *Config) { c.DSN, c.DSNEnv = "", "POLICE_DSN" },
		func(c *Config) { c.Driver = "mysql" },
		func(c *Config) { c.Driver, c.Dialect = "godror", "postgres" },
		func(c *Config) { c.Key = Columns{"updated_at"} },
	}
	for i, mod := range good {
		c := valid()
		mod(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("good case %d: %v", i, err)
		}
	}
	if !ValidIdentifier("updated_at") || ValidIdentifier("x; drop table y") || ValidIdentifier(strings.Repeat("a", 64)) {
		t.Fatal("ValidIdentifier")
	}
}

func TestKeyYAML(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("key: id\nwatermark: updated_at\nbatch_rows: 10\nquery_timeout: 30s\ndsn_env: PG\n"), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Key) != 1 || c.Key[0] != "id" || c.BatchRows != 10 || c.QueryTimeout != 30*time.Second || c.DSNEnv != "PG" {
		t.Fatalf("%+v", c)
	}
	if err := yaml.Unmarshal([]byte("key: [region, id]\n"), &c); err != nil || len(c.Key) != 2 || c.Key[1] != "id" {
		t.Fatalf("%+v %v", c, err)
	}
	if err := yaml.Unmarshal([]byte("key: {a: b}\n"), &c); err == nil {
		t.Fatal("map accepted as key")
	}
}

func TestSelectSQL(t *testing.T) {
	c := valid()
	c.BatchRows = 64
	s, err := New(c, mapperForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Stream() != "pgx:public.incidents" {
		t.Fatalf("stream %q", s.Stream())
	}
	q, order := s.selectSQL(true)
	want := `SELECT * FROM "public"."incidents" WHERE "updated_at" IS NOT NULL AND ("updated_at", "id") > ($1, $2) ORDER BY "updated_at", "id" LIMIT 64`
	if q != want || len(order) != 2 {
		t.Fatalf("got  %s\nwant %s", q, want)
	}
	q, order = s.selectSQL(false)
	if q != `SELECT * FROM "public"."incidents" WHERE "updated_at" IS NOT NULL ORDER BY "updated_at", "id" LIMIT 64` || len(order) != 0 {
		t.Fatalf("first page: %s", q)
	}

	c.Dialect = "sqlserver"
	c.Key = Columns{"region", "id"}
	s, _ = New(c, mapperForTest(t))
	q, order = s.selectSQL(true)
	want = `SELECT TOP (64) * FROM [public].[incidents] WHERE [updated_at] IS NOT NULL AND (([updated_at] > @p1) OR ([updated_at] = @p2 AND [region] > @p3) OR ([updated_at] = @p4 AND [region] = @p5 AND [id] > @p6)) ORDER BY [updated_at], [region], [id]`
	if q != want || len(order) != 6 || order[3] != 0 || order[5] != 2 {
		t.Fatalf("got  %s %v\nwant %s", q, order, want)
	}

	// A unique watermark named as its own key orders by it alone.
	c = valid()
	c.Table, c.Query, c.Name, c.Watermark, c.Key = "", "SELECT * FROM cases;", "cases", "id", Columns{"id"}
	s, _ = New(c, mapperForTest(t))
	q, _ = s.selectSQL(true)
	if q != `SELECT * FROM (SELECT * FROM cases) AS cb_src WHERE "id" IS NOT NULL AND "id" > $1 ORDER BY "id" LIMIT 5000` {
		t.Fatalf("query: %s", q)
	}
	if s.Stream() != "pgx:cases" {
		t.Fatalf("stream %q", s.Stream())
	}
}

func TestFormat(t *testing.T) {
	ts := time.Date(2026, 11, 1, 8, 0, 0, 500000000, time.UTC)
	for _, c := range []struct {
		v        any
		zoneless bool
		want     string
		null     bool
	}{
		{nil, false, "", true},
		{int64(-3), false, "-3", false},
		{float64(1e21), false, "1000000000000000000000", false},
		{0.25, false, "0.25", false},
		{true, false, "true", false},
		{[]byte("ab"), false, "ab", false},
		{ts, false, "2026-11-01T08:00:00.5Z", false},
		{ts, true, "2026-11-01 08:00:00.5", false},
		{time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true, "2026-11-01 00:00:00", false},
	} {
		got, null := format(c.v, c.zoneless)
		if got != c.want || null != c.null {
			t.Errorf("format(%#v, %v) = %q, %v; want %q, %v", c.v, c.zoneless, got, null, c.want, c.null)
		}
	}
	raw := rowJSON([]string{"id", "note", "x"}, []string{"1", "a \"q\"\n", ""}, []bool{false, false, true})
	if string(raw) != `{"id":"1","note":"a \"q\"\n","x":null}` {
		t.Fatalf("rowJSON %s", raw)
	}
}

type fakeState string

func (f fakeState) Error() string    { return "fake " + string(f) }
func (f fakeState) SQLState() string { return string(f) }

func TestIsPermanent(t *testing.T) {
	for code, want := range map[string]bool{
		"28P01": true, "28000": true, "42P01": true, "42703": true, "3D000": true, "42501": true,
		"57014": false, "08006": false, "53300": false, "40001": false, "": false,
	} {
		err := error(fakeState(code))
		if code == "" {
			err = errors.New("dial tcp: connection refused")
		}
		if got := IsPermanent(errors.Join(errors.New("wrapped"), err)); got != want {
			t.Errorf("IsPermanent(%q) = %v", code, got)
		}
	}
}
