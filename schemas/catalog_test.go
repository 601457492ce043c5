package schemas

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// catalog lists every canonical entity the platform expects, by source.
var catalog = []string{
	// emergency
	"incidents", "enterprises", "risk_sources", "inspections", "hazards",
	"shelters", "supply_warehouses", "fire_stations",
	// planning
	"building_permits", "construction_sites", "dangerous_buildings", "planned_shelters",
	// traffic
	"traffic_collisions", "traffic_speeds",
	// police
	"police_cases",
	// water
	"water_telemetry",
	// city management
	"city_events",
	// weather
	"weather",
	// mobile signal and crowd counts
	"mobile_signal", "crowd_counts",
	// reference geography
	"streets", "communities", "grid_cells", "venues",
}

// massNouns are table names that are already collective, so not plural in -s.
var massNouns = map[string]bool{"weather": true, "mobile_signal": true, "water_telemetry": true}

// Enum values are snake_case except where the domain has its own notation:
// the compass abbreviations N, NNE … of the weather feed (verbatimEnums),
// and the response levels I–IV of the emergency plans (any field whose enum
// is exactly responseLevels).
var (
	verbatimEnums  = map[string]bool{"weather.wind_direction": true}
	responseLevels = []string{"I", "II", "III", "IV"}
)

var snakeRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestCatalog(t *testing.T) {
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range catalog {
		if _, err := reg.Get(name); err != nil {
			t.Errorf("expected schema missing: %v", err)
		}
	}
	tables := map[string]string{}
	for _, name := range reg.Names() {
		for _, s := range reg.Versions(name) {
			t.Run(fmt.Sprintf("%s.v%d", s.Name, s.Version), func(t *testing.T) { checkCatalogSchema(t, s) })
			if other, dup := tables[s.Table]; dup && other != s.Name {
				t.Errorf("table %s is used by both %s and %s", s.Table, other, s.Name)
			}
			tables[s.Table] = s.Name
		}
	}
}

func checkCatalogSchema(t *testing.T, s *Schema) {
	if (s.Namespace() != "raw" && s.Namespace() != "marts") || s.TableName() != s.Name {
		t.Errorf("table %q, want raw.%s (or marts.%s for a model output)", s.Table, s.Name, s.Name)
	}
	if !snakeRE.MatchString(s.Name) || (!massNouns[s.Name] && !strings.HasSuffix(s.Name, "s")) {
		t.Errorf("name %q is not plural snake_case", s.Name)
	}
	if s.Doc.ZH == "" || s.Doc.EN == "" {
		t.Errorf("schema doc needs zh and en: %+v", s.Doc)
	}
	et := s.Fields[s.EventTimeIndex()]
	if et.Name != s.EventTime || et.Type != Timestamp || !et.Required {
		t.Errorf("event_time %q: %+v, want a required timestamp", s.EventTime, et)
	}
	if p := s.Partition; p.Field != "" && p.Field != s.EventTime {
		t.Errorf("partitioned by %q, not by the event time %q", p.Field, s.EventTime)
	}
	if got := len(s.IcebergSchema().Fields()); got != len(s.Fields)+1 {
		t.Errorf("Iceberg schema has %d fields, want %d and _cursor", got, len(s.Fields))
	}
	if spec := s.PartitionSpec(); s.Partition.Field != "" && spec.NumFields() != 1 {
		t.Errorf("partition spec %v, want one field", spec)
	}
	for _, f := range s.Fields {
		if f.Doc.ZH == "" || f.Doc.EN == "" {
			t.Errorf("field %s: doc needs zh and en", f.Name)
		}
		if f.Name == CursorField {
			t.Errorf("field %s clashes with the metadata column", f.Name)
		}
		if strings.HasSuffix(f.Name, "longitude") || strings.HasSuffix(f.Name, "latitude") {
			if f.Type != Double || f.Unit != "°" {
				t.Errorf("coordinate %s: type %s unit %q, want double in °", f.Name, f.Type, f.Unit)
			}
		}
		if strings.HasSuffix(f.Name, "_at") && f.Type != Timestamp {
			t.Errorf("field %s ends in _at but is %s, want timestamp", f.Name, f.Type)
		}
		if f.Name == "street_code" && f.Type != String {
			t.Errorf("street_code is %s, want string", f.Type)
		}
		if !verbatimEnums[s.Name+"."+f.Name] && !slices.Equal(f.Enum, responseLevels) {
			for _, v := range f.Enum {
				if !snakeRE.MatchString(v) {
					t.Errorf("field %s: enum value %q is not snake_case", f.Name, v)
				}
			}
		}
	}
}

// TestSchemasDocUpToDate checks that docs/schemas.md is the rendering of
// the registry; run with -update to rewrite it.
func TestSchemasDocUpToDate(t *testing.T) {
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	got := renderSchemasDoc(reg)
	path := filepath.Join("..", "docs", "schemas.md")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./schemas/ -run TestSchemasDoc -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/schemas.md is out of date; run: go test ./schemas/ -run TestSchemasDoc -update")
	}
}

func renderSchemasDoc(reg *Registry) []byte {
	var b bytes.Buffer
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	partition := func(s *Schema) string {
		if s.Partition.Field == "" {
			return "none"
		}
		return fmt.Sprintf("%s(`%s`)", s.Partition.Transform, s.Partition.Field)
	}
	key := func(s *Schema) string {
		if len(s.Key) == 0 {
			return "none (rows are appended)"
		}
		return "(`" + strings.Join(s.Key, "`, `") + "`)"
	}
	b.WriteString("# 规范数据模型 Canonical schemas\n\n")
	b.WriteString("<!-- Generated from schemas/*.yaml by `go test ./schemas/ -run TestSchemasDoc -update`; do not edit by hand. -->\n\n")
	b.WriteString("Every source is mapped onto one of these versioned schemas; each is one Iceberg table in the `raw` namespace.\n")
	b.WriteString("Every table also carries the metadata column `_cursor` (the source cursor the record came from).\n")
	b.WriteString("Times are instants in UTC; coordinates are WGS-84 longitude/latitude in degrees.\n")
	b.WriteString("每个数据源都映射到下列有版本的规范模型之一，每个模型对应 `raw` 命名空间中的一张 Iceberg 表；每张表另有元数据列 `_cursor`（记录的来源游标）。时间为 UTC 时刻，坐标为 WGS-84 经纬度。\n\n")
	b.WriteString("A natural key (自然键) identifies one row: a table with a key keeps one row per key, a later version replacing an earlier one\n")
	b.WriteString("(see [sources.md](sources.md#natural-keys-and-de-duplication--自然键与去重)).\n\n")
	b.WriteString("| schema | table | 中文 | English | event time | partition | natural key |\n|---|---|---|---|---|---|---|\n")
	for _, name := range reg.Names() {
		s, _ := reg.Get(name)
		fmt.Fprintf(&b, "| [%s](#%s) | `%s` | %s | %s | `%s` | %s | %s |\n", s.Name, s.Name, s.Table, cell(s.Doc.ZH), cell(s.Doc.EN), s.EventTime, partition(s), key(s))
	}
	for _, name := range reg.Names() {
		s, _ := reg.Get(name)
		fmt.Fprintf(&b, "\n## %s\n\n", s.Name)
		route := ""
		if s.RouteBy != "" {
			route = fmt.Sprintf(" Kafka records keyed by `%s` (route_by: one %s, one partition / 按该字段分区).", s.RouteBy, s.RouteBy)
		}
		fmt.Fprintf(&b, "%s — %s. Table `%s`, version %d, event time `%s`, partition %s, natural key %s.%s\n\n", cell(s.Doc.ZH), cell(s.Doc.EN), s.Table, s.Version, s.EventTime, partition(s), key(s), route)
		b.WriteString("| field | type | required | unit | 中文 | English | values |\n|---|---|---|---|---|---|---|\n")
		for _, f := range s.Fields {
			req := ""
			if f.Required {
				req = "yes"
			}
			var vals []string
			for _, v := range f.Enum {
				vals = append(vals, "`"+v+"`")
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", f.Name, f.Type, req, cell(f.Unit), cell(f.Doc.ZH), cell(f.Doc.EN), strings.Join(vals, ", "))
		}
	}
	return b.Bytes()
}
