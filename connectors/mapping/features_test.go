package mapping

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"citybrain/internal/geo"
	"citybrain/schemas"
)

const pointsYAML = `name: points
version: 1
table: raw.points
doc: {zh: 点位, en: Points}
event_time: at
fields:
  - {name: id, type: long, required: true, doc: {zh: 编号, en: Id}}
  - {name: at, type: timestamp, required: true, doc: {zh: 时间, en: Time}}
  - {name: name, type: string, doc: {zh: 名称, en: Name}}
  - {name: lon, type: double, doc: {zh: 经度, en: Longitude}}
  - {name: lat, type: double, doc: {zh: 纬度, en: Latitude}}
  - {name: street_code, type: string, doc: {zh: 街道编码, en: Street code}}
  - {name: street_num, type: long, doc: {zh: 街道编码数字, en: Street code number}}
  - {name: flag, type: boolean, doc: {zh: 标志, en: Flag}}
`

func points(t testing.TB) *schemas.Schema {
	t.Helper()
	s, err := schemas.Parse([]byte(pointsYAML))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bindPoints(t *testing.T, spec Spec, header []string) (*schemas.Schema, *Bound) {
	t.Helper()
	s := points(t)
	m, err := New(s, spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b, err := m.Bind(header)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	return s, b
}

func base(extra map[string]FieldSpec) map[string]FieldSpec {
	f := map[string]FieldSpec{"id": {Column: "id"}, "at": {Column: "at"}}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// wantErr checks that err mentions every string in want (English and Chinese).
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestSplit(t *testing.T) {
	header := []string{"id", "at", "geo"}
	spec := Spec{NullValues: []string{"NA"}, Fields: base(map[string]FieldSpec{
		"lat": {Column: "geo", Split: &SplitSpec{Sep: ",", Index: 0}},
		"lon": {Column: "geo", Split: &SplitSpec{Sep: ",", Index: 1}},
	})}
	s, b := bindPoints(t, spec, header)
	tests := []struct {
		cell     string
		lat, lon any
		err      []string
	}{
		{"38.55042047,-121.3914158", 38.55042047, -121.3914158, nil},
		{" 38.5 , -121.4 ", 38.5, -121.4, nil},
		{"", nil, nil, nil},
		{"  ", nil, nil, nil},
		{"NA", nil, nil, nil},
		{"38.5,", 38.5, nil, nil},
		{"38.5,NA", 38.5, nil, nil},
		{"38.5", nil, nil, []string{"lon", "geo", `"38.5"`, "1 part(s)", "拆分后缺少该段"}},
		{"x,1", nil, nil, []string{"lat", "column geo", `"x"`, "不是数字"}},
	}
	for _, tt := range tests {
		t.Run(tt.cell, func(t *testing.T) {
			r, err := b.Map([]string{"1", "2024-01-01", tt.cell})
			if tt.err != nil {
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r[s.Index("lat")]; got != tt.lat {
				t.Errorf("lat = %#v, want %#v", got, tt.lat)
			}
			if got := r[s.Index("lon")]; got != tt.lon {
				t.Errorf("lon = %#v, want %#v", got, tt.lon)
			}
		})
	}
	t.Run("headerless index and multi-char sep", func(t *testing.T) {
		s, b := bindPoints(t, Spec{Fields: map[string]FieldSpec{
			"id": {Index: ptr(0)}, "at": {Index: ptr(1)},
			"name": {Index: ptr(2), Split: &SplitSpec{Sep: " | ", Index: 2}},
		}}, nil)
		r, err := b.Map([]string{"1", "2024-01-01", "a | b | third | d"})
		if err != nil || r[s.Index("name")] != "third" {
			t.Errorf("got %v, %v", r, err)
		}
	})
}

func TestTemplate(t *testing.T) {
	header := []string{"id", "at", "BOROUGH", "ON STREET NAME", "date", "time"}
	spec := Spec{NullValues: []string{"NA"}, Fields: map[string]FieldSpec{
		"id":   {Column: "id"},
		"at":   {Template: "{date} {time}"},
		"name": {Template: "{BOROUGH} {ON STREET NAME}"},
	}}
	s, b := bindPoints(t, spec, header)
	at := time.Date(2024, 1, 2, 0, 4, 5, 0, time.UTC) // 08:04:05 Beijing
	tests := []struct {
		borough, street string
		want            any
	}{
		{"BROOKLYN", "ATLANTIC AVENUE", "BROOKLYN ATLANTIC AVENUE"},
		{"  QUEENS ", "   NORTHERN BLVD        ", "QUEENS NORTHERN BLVD"},
		{"", "MAIN ST", "MAIN ST"},
		{"BRONX", "", "BRONX"},
		{"NA", "BROADWAY", "BROADWAY"},
		{"", " ", nil},
		{"NA", "NA", nil},
	}
	for _, tt := range tests {
		t.Run(tt.borough+"/"+tt.street, func(t *testing.T) {
			r, err := b.Map([]string{"1", "", tt.borough, tt.street, "2024-01-02", "08:04:05"})
			if err != nil {
				t.Fatal(err)
			}
			if got := r[s.Index("name")]; got != tt.want {
				t.Errorf("name = %#v, want %#v", got, tt.want)
			}
			if got := r[s.Index("at")].(time.Time); !got.Equal(at) {
				t.Errorf("at = %v, want %v", got, at)
			}
		})
	}
	t.Run("cast error names the template", func(t *testing.T) {
		_, err := b.Map([]string{"1", "", "X", "Y", "2024-01-02", "25:00"})
		wantErr(t, err, "at", `template "{date} {time}"`, `"2024-01-02 25:00"`, "时间格式不符")
	})
	t.Run("headerless", func(t *testing.T) {
		s, b := bindPoints(t, Spec{Fields: map[string]FieldSpec{
			"id": {Index: ptr(0)}, "at": {Index: ptr(1)}, "name": {Template: "{2}, {3} ({0})"},
		}}, nil)
		r, err := b.Map([]string{"7", "2024-01-01", "a", "b"})
		if err != nil || r[s.Index("name")] != "a, b (7)" {
			t.Errorf("got %v, %v", r, err)
		}
		if _, err := b.Map([]string{"7", "2024-01-01", "a"}); err == nil || !strings.Contains(err.Error(), "column 3 missing") {
			t.Errorf("short row: %v", err)
		}
	})
	t.Run("bind: unknown column", func(t *testing.T) {
		m, err := New(points(t), spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Bind([]string{"id", "date", "time", "BOROUGH"})
		if !errors.Is(err, ErrMapping) {
			t.Fatalf("Bind = %v", err)
		}
		wantErr(t, err, "name", `"ON STREET NAME"`, "not in header")
	})
}

func TestFilter(t *testing.T) {
	header := []string{"id", "at", "kind", "geo"}
	spec := Spec{
		Fields: base(map[string]FieldSpec{"name": {Column: "kind"}}),
		Filter: &FilterSpec{
			SkipIf: []Condition{
				{Column: "geo", Equals: ptr("")},
				{Column: "kind", In: []string{"TEST", "DUPLICATE"}},
			},
			KeepIf: []Condition{{Column: "kind", Prefix: "EMS:"}, {Index: ptr(0), Prefix: "1"}},
		},
	}
	s, b := bindPoints(t, spec, header)
	tests := []struct {
		name string
		row  []string
		why  []string // "" when kept
	}{
		{"kept", []string{"1", "2024-01-01", "EMS: FALL", "1,2"}, nil},
		{"kept, trimmed", []string{"10", "2024-01-01", " EMS: BACK ", "1,2"}, nil},
		{"empty geo", []string{"1", "2024-01-01", "EMS: FALL", "  "}, []string{"skip_if[0] (column geo)", `equals ""`}},
		{"in list", []string{"1", "2024-01-01", "TEST", "1,2"}, []string{"skip_if[1] (column kind)", `"TEST" in [TEST, DUPLICATE]`}},
		{"keep prefix fails", []string{"1", "2024-01-01", "Fire: X", "1,2"}, []string{"not keep_if[0] (column kind)", `"Fire: X" has prefix "EMS:"`}},
		{"second keep fails", []string{"2", "2024-01-01", "EMS: FALL", "1,2"}, []string{"not keep_if[1] (column #0)"}},
	}
	skipped := int64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := b.Map(tt.row)
			if tt.why == nil {
				if err != nil {
					t.Fatal(err)
				}
				if r[s.Index("name")] == nil {
					t.Error("kept row not mapped")
				}
				return
			}
			skipped++
			if !errors.Is(err, ErrSkipped) || r != nil {
				t.Fatalf("Map = %v, %v; want ErrSkipped", r, err)
			}
			wantErr(t, err, append(tt.why, "skipped by filter", "按过滤规则跳过")...)
		})
	}
	if b.Skipped() != skipped {
		t.Errorf("Skipped() = %d, want %d", b.Skipped(), skipped)
	}
	t.Run("malformed rows are rejected, not skipped", func(t *testing.T) {
		_, err := b.Map([]string{"1", "2024-01-01", "TEST"})
		if err == nil || errors.Is(err, ErrSkipped) {
			t.Errorf("short row: %v", err)
		}
		_, err = b.Map([]string{"1", "x", "EMS: A", "1,2"}) // kept, then bad time
		if err == nil || errors.Is(err, ErrSkipped) {
			t.Errorf("bad kept row: %v", err)
		}
	})
	t.Run("bind: unknown column", func(t *testing.T) {
		m, _ := New(points(t), spec)
		_, err := m.Bind([]string{"id", "at", "kind"})
		if !errors.Is(err, ErrMapping) {
			t.Fatalf("Bind = %v", err)
		}
		wantErr(t, err, "filter skip_if[0]", `"geo"`)
	})
}

func TestCoordinates(t *testing.T) {
	header := []string{"id", "at", "x", "y"}
	coord := func(crs string, street bool) Spec {
		sp := Spec{NullValues: []string{"NA"}, Fields: base(nil),
			Coordinates: &CoordinateSpec{Lon: FieldSpec{Column: "x"}, Lat: FieldSpec{Column: "y"}, CRS: crs}}
		sp.Coordinates.To.Lon, sp.Coordinates.To.Lat = "lon", "lat"
		if street {
			sp.Street = &StreetSpec{Field: "street_code"}
		}
		return sp
	}
	type pt struct{ lon, lat float64 }
	e, n := geo.WGS84ToUTM(50, true, 116.36679, 39.90812) // Xidan, WGS-84
	e50, n50 := strconv.FormatFloat(e, 'f', 3, 64), strconv.FormatFloat(n, 'f', 3, 64)
	tests := []struct {
		name, crs string
		x, y      string
		want      *pt // nil: null fields
		street    any
		err       []string
	}{
		{"wgs84 Xidan", "wgs84", "116.36679", "39.90812", &pt{116.36679, 39.90812}, "110102011", nil},
		{"default crs", "", " 116.34688 ", " 39.94353 ", &pt{116.34688, 39.94353}, "110102009", nil},
		{"gcj02 Xidan", "gcj02", "116.373001", "39.909500", &pt{116.366787, 39.908122}, "110102011", nil},
		{"gcj02 Houhai", "GCJ02", "116.39328", "39.93892", &pt{116.387038, 39.937520}, "110102012", nil},
		{"gcj02 outside China unchanged", "gcj02", "-121.39", "38.55", &pt{-121.39, 38.55}, nil, nil},
		{"utm 17N Burlington", "utm:17N", "597450.125", "4797664.5", &pt{-79.798056, 43.325510}, nil, nil},
		{"utm 50N Xicheng", "utm:50n", e50, n50, &pt{116.36679, 39.90812}, "110102011", nil},
		{"outside Xicheng", "wgs84", "-121.3914158", "38.55042047", &pt{-121.3914158, 38.55042047}, nil, nil},
		{"both empty", "wgs84", "", " ", nil, nil, nil},
		{"both null", "utm:17N", "NA", "NA", nil, nil, nil},
		{"one empty", "wgs84", "116.3", "", nil, nil, []string{"coordinates", "only one", "坐标不完整"}},
		{"not a number", "wgs84", "116.3", "north", nil, nil, []string{"lat y", `"north"`, "is not a number", "坐标不是数字"}},
		{"NaN", "wgs84", "NaN", "39.9", nil, nil, []string{"not a finite point", "坐标不是有限数"}},
		{"Inf", "gcj02", "116.3", "+Inf", nil, nil, []string{"not a finite point", "坐标不是有限数"}},
		{"lat > 90", "wgs84", "116.3", "95", nil, nil, []string{"lat 95", "out of range", "坐标超出范围"}},
		{"lon > 180", "gcj02", "-200.5", "39.9", nil, nil, []string{"lon -200.5", "out of range", "坐标超出范围"}},
		{"swapped in the south", "wgs84", "39.9", "-116.3", nil, nil, []string{"lat -116.3", "坐标超出范围"}},
		{"(0,0)", "wgs84", "0", "0.0", nil, nil, []string{"(0, 0)", "placeholder", "占位值"}},
		{"utm (0,0)", "utm:17N", "0", "0", nil, nil, []string{"(0, 0)", "占位值"}},
		{"utm lon/lat given", "utm:17N", "-79.8", "43.3", nil, nil, []string{"utm:17N", "easting x", "outside a UTM zone", "UTM 坐标超出范围"}},
		{"utm huge", "utm:17S", "500000", "1e9", nil, nil, []string{"UTM 坐标超出范围"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := bindPoints(t, coord(tt.crs, true), header)
			r, err := b.Map([]string{"1", "2024-01-01", tt.x, tt.y})
			if tt.err != nil {
				if errors.Is(err, ErrSkipped) {
					t.Fatalf("rejection reported as skip: %v", err)
				}
				wantErr(t, err, tt.err...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lon, lat := r[s.Index("lon")], r[s.Index("lat")]
			if tt.want == nil {
				if lon != nil || lat != nil || r[s.Index("street_code")] != nil {
					t.Errorf("got %v, %v, %v; want nulls", lon, lat, r[s.Index("street_code")])
				}
				return
			}
			tol := 1e-6
			if math.Abs(lon.(float64)-tt.want.lon) > tol || math.Abs(lat.(float64)-tt.want.lat) > tol {
				t.Errorf("got %.7f, %.7f; want %.7f, %.7f", lon, lat, tt.want.lon, tt.want.lat)
			}
			if got := r[s.Index("street_code")]; got != tt.street {
				t.Errorf("street_code = %#v, want %#v", got, tt.street)
			}
		})
	}
	t.Run("street into a long field, split origins", func(t *testing.T) {
		sp := Spec{Fields: base(nil), Street: &StreetSpec{Field: "street_num"}, Coordinates: &CoordinateSpec{
			Lat: FieldSpec{Column: "geo", Split: &SplitSpec{Sep: ",", Index: 0}},
			Lon: FieldSpec{Column: "geo", Split: &SplitSpec{Sep: ",", Index: 1}}, CRS: "gcj02"}}
		sp.Coordinates.To.Lon, sp.Coordinates.To.Lat = "lon", "lat"
		s, b := bindPoints(t, sp, []string{"id", "at", "geo"})
		r, err := b.Map([]string{"1", "2024-01-01", "39.88677,116.36328"}) // Niujie, GCJ-02
		if err != nil {
			t.Fatal(err)
		}
		if got := r[s.Index("street_num")]; got != int64(110102018) {
			t.Errorf("street_num = %#v", got)
		}
		_, err = b.Map([]string{"1", "2024-01-01", "39.88677"})
		wantErr(t, err, "coordinates", `geo[1 of ","]`, "拆分后缺少该段")
	})
	t.Run("required coordinate fields count as mapped", func(t *testing.T) {
		s, err := schemas.Parse([]byte(strings.Replace(pointsYAML, "{name: lat, type: double,", "{name: lat, type: double, required: true,", 1)))
		if err != nil {
			t.Fatal(err)
		}
		sp := coord("wgs84", false)
		if _, err := New(s, sp); err != nil {
			t.Errorf("New: %v", err)
		}
		sp.Coordinates = nil
		if _, err := New(s, sp); err == nil || !strings.Contains(err.Error(), "lat") {
			t.Errorf("New without coordinates: %v", err)
		}
	})
}

func TestNewErrorsFeatures(t *testing.T) {
	coords := func(mod func(*CoordinateSpec)) *CoordinateSpec {
		c := &CoordinateSpec{Lon: FieldSpec{Column: "x"}, Lat: FieldSpec{Column: "y"}}
		c.To.Lon, c.To.Lat = "lon", "lat"
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"split without column", Spec{Fields: base(map[string]FieldSpec{"name": {Value: ptr("a"), Split: &SplitSpec{Sep: ","}}})}, []string{"name", "split needs column or index"}},
		{"split empty sep", Spec{Fields: base(map[string]FieldSpec{"name": {Column: "a", Split: &SplitSpec{}}})}, []string{"name", "sep must not be empty"}},
		{"split negative index", Spec{Fields: base(map[string]FieldSpec{"name": {Column: "a", Split: &SplitSpec{Sep: ",", Index: -1}}})}, []string{"name", "index -1"}},
		{"template and column", Spec{Fields: base(map[string]FieldSpec{"name": {Column: "a", Template: "{b}"}})}, []string{"name", "exactly one", "template"}},
		{"template unclosed", Spec{Fields: base(map[string]FieldSpec{"name": {Template: "{a} {b"}})}, []string{"name", `"{a} {b"`, "'{' without '}'"}},
		{"template stray }", Spec{Fields: base(map[string]FieldSpec{"name": {Template: "a}"}})}, []string{"'}' without '{'"}},
		{"template nested", Spec{Fields: base(map[string]FieldSpec{"name": {Template: "{a{b}}"}})}, []string{"'{' without '}'"}},
		{"template empty ref", Spec{Fields: base(map[string]FieldSpec{"name": {Template: "x {} y"}})}, []string{"empty {}"}},
		{"template constant", Spec{Fields: base(map[string]FieldSpec{"name": {Template: "constant"}})}, []string{"no {column}", "value:"}},
		{"filter no column", Spec{Fields: base(nil), Filter: &FilterSpec{SkipIf: []Condition{{Equals: ptr("")}}}}, []string{"filter skip_if[0]", "column, index"}},
		{"filter two tests", Spec{Fields: base(nil), Filter: &FilterSpec{KeepIf: []Condition{{Column: "a", Equals: ptr("x"), Prefix: "y"}}}}, []string{"filter keep_if[0]", "exactly one of equals, in"}},
		{"filter no test", Spec{Fields: base(nil), Filter: &FilterSpec{KeepIf: []Condition{{Column: "a", In: []string{}}}}}, []string{"keep_if[0]", "equals, in"}},
		{"bad crs", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.CRS = "epsg:3857" })}, []string{"coordinates", `"epsg:3857"`, "utm:17N"}},
		{"bad utm zone", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.CRS = "utm:61N" })}, []string{`"utm:61N"`}},
		{"utm no hemisphere", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.CRS = "utm:17" })}, []string{`"utm:17"`}},
		{"to missing", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.To.Lat = "" })}, []string{"coordinates.to.lat", "name the target field"}},
		{"to unknown", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.To.Lat = "latitude" })}, []string{"coordinates.to.lat", "no field latitude"}},
		{"to not double", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.To.Lat = "name" })}, []string{"field name is string, want double"}},
		{"to same twice", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.To.Lat = "lon" })}, []string{"coordinates.to.lat", "lon", "also mapped"}},
		{"to also in fields", Spec{Fields: base(map[string]FieldSpec{"lat": {Column: "y"}}), Coordinates: coords(nil)}, []string{"coordinates.to.lat", "also mapped"}},
		{"origin missing", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.Lon = FieldSpec{} })}, []string{"coordinates.lon", "column, index"}},
		{"origin template", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.Lat.Template = "{a}" })}, []string{"coordinates.lat", "only column or index"}},
		{"origin bad split", Spec{Fields: base(nil), Coordinates: coords(func(c *CoordinateSpec) { c.Lat.Split = &SplitSpec{} })}, []string{"coordinates.lat", "sep"}},
		{"street without coordinates", Spec{Fields: base(nil), Street: &StreetSpec{Field: "street_code"}}, []string{"street", "needs coordinates"}},
		{"street bad type", Spec{Fields: base(nil), Coordinates: coords(nil), Street: &StreetSpec{Field: "flag"}}, []string{"street", "flag is boolean"}},
		{"street is a coordinate", Spec{Fields: base(nil), Coordinates: coords(nil), Street: &StreetSpec{Field: "lat"}}, []string{"street", "lat is double"}},
		{"street also in fields", Spec{Fields: base(map[string]FieldSpec{"street_code": {Column: "s"}}), Coordinates: coords(nil), Street: &StreetSpec{Field: "street_code"}}, []string{"street", "also mapped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(points(t), tt.spec)
			if !errors.Is(err, ErrMapping) {
				t.Fatalf("New = %v, want ErrMapping", err)
			}
			wantErr(t, err, tt.want...)
		})
	}
}

// The YAML examples of the package doc decode (with unknown keys refused, as
// source definitions are read) and pass New.
func TestSpecYAML(t *testing.T) {
	const doc = `
timezone: America/Los_Angeles
null_values: ["NA", ""]
fields:
  id:   {index: 0}
  at:   {template: "{1} {2}", layout: "2006-01-02 15:04"}
  name: {template: "{3} {4}"}
  flag: {column: "5", split: {sep: ",", index: 0}}
filter:
  skip_if: [{index: 6, equals: ""}, {index: 3, in: ["TEST", "DUPLICATE"]}]
  keep_if: [{index: 4, prefix: "EMS:"}]
coordinates: {lon: {index: 7}, lat: {index: 6}, crs: "utm:17N", to: {lon: lon, lat: lat}}
street: {field: street_code}
`
	var spec Spec
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.Fields["flag"].Split == nil || spec.Filter == nil || len(spec.Filter.SkipIf) != 2 || *spec.Filter.SkipIf[0].Equals != "" ||
		spec.Coordinates == nil || spec.Coordinates.To.Lat != "lat" || spec.Street.Field != "street_code" {
		t.Fatalf("decoded %+v", spec)
	}
	m, err := New(points(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bind(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := points(t)
	r, err := b.Map([]string{"9", "2024-03-01", "10:00", "  BRANT", "EMS: FALL", "yes,no", "4797664.5", "597450.125"})
	if err != nil {
		t.Fatal(err)
	}
	if r[s.Index("name")] != "BRANT EMS: FALL" || r[s.Index("flag")] != true || r[s.Index("street_code")] != nil ||
		math.Abs(r[s.Index("lat")].(float64)-43.3255) > 1e-3 || !r[s.Index("at")].(time.Time).Equal(time.Date(2024, 3, 1, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("mapped %v", r)
	}
	if _, err := b.Map([]string{"9", "2024-03-01", "10:00", "X", "Fire: Y", "1", "1", "1"}); !errors.Is(err, ErrSkipped) {
		t.Errorf("keep_if: %v", err)
	}
	var bad Spec
	dec = yaml.NewDecoder(strings.NewReader("filter: {skip: []}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Error("unknown filter key accepted")
	}
}
