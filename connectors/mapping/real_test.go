package mapping

import (
	"encoding/csv"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

// The real samples (see their SOURCES.md): the module's copy in
// testdata/real, else the shared originals beside the module; the tests skip
// when neither is there.
var realData = []string{"../../testdata/real/", "../../../shared/data/real/"}

func readReal(t *testing.T, name string) []byte {
	t.Helper()
	for _, dir := range realData {
		data, err := os.ReadFile(dir + name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	t.Skipf("real sample %s not present", name)
	return nil
}

func parseSchema(t *testing.T, doc string) *schemas.Schema {
	t.Helper()
	s, err := schemas.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const incidentsYAML = `name: police_incidents
version: 1
table: raw.police_incidents
doc: {zh: 治安警情, en: Police incidents}
event_time: occurred_at
fields:
  - {name: occurred_at, type: timestamp, required: true, doc: {zh: 发生时间, en: Occurred at}}
  - {name: address, type: string, doc: {zh: 地址, en: Address}}
  - {name: district, type: int, doc: {zh: 辖区, en: District}}
  - {name: beat, type: string, doc: {zh: 巡区, en: Beat}}
  - {name: category, type: string, doc: {zh: 类别, en: Category}}
  - {name: place, type: string, doc: {zh: 地点, en: Place}}
  - {name: lat, type: double, doc: {zh: 纬度, en: Latitude}}
  - {name: lon, type: double, doc: {zh: 经度, en: Longitude}}
  - {name: street_code, type: string, doc: {zh: 街道编码, en: Street code}}
`

// Sacramento police: pipe-delimited, "M/D/YY H:MM", "lat,lon" in one field,
// beat codes padded with spaces.
func TestRealPolice(t *testing.T) {
	lines := strings.Split(strings.TrimRight(string(readReal(t, "police/SacramentocrimeJanuary2006.csv")), "\r\n"), "\n")
	s := parseSchema(t, incidentsYAML)
	spec := Spec{
		Timezone: "America/Los_Angeles",
		Fields: map[string]FieldSpec{
			"occurred_at": {Column: "cdatetime", Layout: "1/2/06 15:04"},
			"address":     {Column: "address"},
			"district":    {Column: "district"},
			"beat":        {Column: "beat"},
			"category":    {Column: "crimedescr"},
			"place":       {Template: "{address} ({beat})"},
		},
		Filter: &FilterSpec{SkipIf: []Condition{{Column: "geo", Equals: ptr("")}}},
		Coordinates: &CoordinateSpec{
			Lat: FieldSpec{Column: "geo", Split: &SplitSpec{Sep: ",", Index: 0}},
			Lon: FieldSpec{Column: "geo", Split: &SplitSpec{Sep: ",", Index: 1}},
			CRS: "wgs84",
		},
		Street: &StreetSpec{Field: "street_code"},
	}
	spec.Coordinates.To.Lon, spec.Coordinates.To.Lat = "lon", "lat"
	m, err := New(s, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bind(strings.Split(lines[0], "|"))
	if err != nil {
		t.Fatal(err)
	}
	n := len(lines)
	if testing.Short() {
		n = 200
	}
	for i, line := range lines[1:n] {
		r, err := b.Map(strings.Split(line, "|"))
		if err != nil {
			t.Fatalf("line %d %q: %v", i+2, line, err)
		}
		lat, lon := r[s.Index("lat")].(float64), r[s.Index("lon")].(float64)
		if lat < 38.4 || lat > 38.8 || lon < -121.6 || lon > -121.2 {
			t.Errorf("line %d: %v, %v is not in Sacramento", i+2, lat, lon)
		}
		if r[s.Index("street_code")] != nil {
			t.Errorf("line %d: Sacramento located in a Xicheng street", i+2)
		}
		if b := r[s.Index("beat")].(string); b != strings.TrimSpace(b) { // some rows have no beat
			t.Errorf("line %d: beat %q", i+2, b)
		}
	}
	r, err := b.Map(strings.Split(lines[1], "|"))
	if err != nil {
		t.Fatal(err)
	}
	// 1/1/06 0:00|3108 OCCIDENTAL DR|3|3C        |1115|10851(A)VC TAKE VEH W/O OWNER|2404|38.55042047,-121.3914158
	want := map[string]any{
		"occurred_at": time.Date(2006, 1, 1, 8, 0, 0, 0, time.UTC), // PST = UTC-8
		"address":     "3108 OCCIDENTAL DR", "district": int64(3), "beat": "3C",
		"category": "10851(A)VC TAKE VEH W/O OWNER", "place": "3108 OCCIDENTAL DR (3C)",
		"lat": 38.55042047, "lon": -121.3914158, "street_code": nil,
	}
	for name, w := range want {
		got := r[s.Index(name)]
		if tv, ok := got.(time.Time); ok {
			if !tv.Equal(w.(time.Time)) {
				t.Errorf("%s = %v, want %v", name, got, w)
			}
		} else if got != w {
			t.Errorf("%s = %#v, want %#v", name, got, w)
		}
	}
}

const permitsYAML = `name: building_permits
version: 1
table: raw.building_permits
doc: {zh: 建设工程许可, en: Building permits}
event_time: issued_at
fields:
  - {name: permit_no, type: string, required: true, doc: {zh: 许可证号, en: Permit number}}
  - {name: issued_at, type: timestamp, required: true, doc: {zh: 发证时间, en: Issued at}}
  - {name: address, type: string, doc: {zh: 地址, en: Address}}
  - {name: value, type: double, unit: CAD, doc: {zh: 工程造价, en: Construction value}}
  - {name: lon, type: double, doc: {zh: 经度, en: Longitude}}
  - {name: lat, type: double, doc: {zh: 纬度, en: Latitude}}
  - {name: street_code, type: string, doc: {zh: 街道编码, en: Street code}}
`

// Burlington (Ontario) permits: UTF-8 BOM, X/Y in NAD83 / UTM zone 17N
// metres (EPSG:26917), trailing spaces.
func TestRealPlanningUTM(t *testing.T) {
	rows, err := csv.NewReader(strings.NewReader(string(readReal(t, "planning/Building_Permits.csv")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	s := parseSchema(t, permitsYAML)
	spec := Spec{
		Timezone: "America/Toronto",
		Fields: map[string]FieldSpec{
			"permit_no": {Column: "FILENO"},
			"issued_at": {Column: "ISSUEDATE", Layout: "2006/01/02 15:04:05-07"},
			"address":   {Column: "ADDRESS"},
			"value":     {Column: "CONSTRUCTVALUE"},
		},
		Coordinates: &CoordinateSpec{Lon: FieldSpec{Column: "X"}, Lat: FieldSpec{Column: "Y"}, CRS: "utm:17N"},
		Street:      &StreetSpec{Field: "street_code"},
	}
	spec.Coordinates.To.Lon, spec.Coordinates.To.Lat = "lon", "lat"
	m, err := New(s, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bind(rows[0]) // "\ufeffX" in the header
	if err != nil {
		t.Fatal(err)
	}
	n := len(rows)
	if testing.Short() {
		n = 500
	}
	var minLon, minLat, maxLon, maxLat = 180.0, 90.0, -180.0, -90.0
	for i, row := range rows[1:n] {
		r, err := b.Map(row)
		if err != nil {
			t.Fatalf("row %d: %v", i+2, err)
		}
		lon, lat := r[s.Index("lon")].(float64), r[s.Index("lat")].(float64)
		minLon, maxLon = math.Min(minLon, lon), math.Max(maxLon, lon)
		minLat, maxLat = math.Min(minLat, lat), math.Max(maxLat, lat)
		if r[s.Index("street_code")] != nil {
			t.Errorf("row %d: Burlington located in Xicheng", i+2)
		}
	}
	// The City of Burlington spans about 43.28–43.48 N, 79.96–79.70 W.
	if minLat < 43.27 || maxLat > 43.49 || minLon < -79.97 || maxLon > -79.69 {
		t.Errorf("permits span %.4f…%.4f N, %.4f…%.4f E: not Burlington", minLat, maxLat, minLon, maxLon)
	}
	r, err := b.Map(rows[1])
	if err != nil {
		t.Fatal(err)
	}
	// 593253.687520002,4800629.5,1,1268 ABBEY CRT.   ,…,24-019651,…,2024/11/04 00:00:00+00,…,20000,1
	if r[s.Index("address")] != "1268 ABBEY CRT." || r[s.Index("permit_no")] != "24-019651" || r[s.Index("value")] != 20000.0 ||
		!r[s.Index("issued_at")].(time.Time).Equal(time.Date(2024, 11, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("row 2 = %v", r)
	}
}

// Montgomery County 911: no header; lat, lng, title, timeStamp, township,
// address. keep_if keeps only EMS calls; the rest are skipped, not rejected.
func TestRealEmergencyHeaderless(t *testing.T) {
	rows, err := csv.NewReader(strings.NewReader(string(readReal(t, "emergency/montgomery_911.csv")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	s := parseSchema(t, incidentsYAML)
	spec := Spec{
		Timezone: "America/New_York",
		Fields: map[string]FieldSpec{
			"occurred_at": {Index: ptr(3), Layout: "2006-01-02 15:04"},
			"category":    {Index: ptr(2)},
			"place":       {Template: "{5}, {4}"},
		},
		Filter:      &FilterSpec{KeepIf: []Condition{{Index: ptr(2), Prefix: "EMS:"}}},
		Coordinates: &CoordinateSpec{Lat: FieldSpec{Index: ptr(0)}, Lon: FieldSpec{Index: ptr(1)}},
	}
	spec.Coordinates.To.Lon, spec.Coordinates.To.Lat = "lon", "lat"
	m, err := New(s, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bind(nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i, row := range rows[:300] {
		r, err := b.Map(row)
		if errors.Is(err, ErrSkipped) {
			if strings.HasPrefix(row[2], "EMS:") {
				t.Errorf("row %d: EMS call skipped", i+1)
			}
			continue
		}
		if err != nil {
			t.Fatalf("row %d: %v", i+1, err)
		}
		kept++
		if lat := r[s.Index("lat")].(float64); lat < 39.9 || lat > 40.5 {
			t.Errorf("row %d: lat %v not in Montgomery County, PA", i+1, lat)
		}
	}
	if kept == 0 || b.Skipped() == 0 || int64(kept)+b.Skipped() != 300 {
		t.Errorf("kept %d, skipped %d of 300", kept, b.Skipped())
	}
}
