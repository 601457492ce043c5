package response

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // database/sql driver "duckdb"
)

// The event: a venue in street 110102001 (Xidan).
const supportLon, supportLat, supportStreet = 116.3700, 39.9100, "110102001"

var (
	refOld = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC) // an older version of a reference row
	refNew = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	sigT1  = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC) // mobile-signal intervals
	sigT2  = sigT1.Add(5 * time.Minute)
)

// haversineTestM is the great-circle distance on the mean Earth sphere,
// computed independently of the SQL under test.
func haversineTestM(lon1, lat1, lon2, lat2 float64) float64 {
	const r = 6371008.8
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

// offset returns the point about m metres from the event on a bearing
// (degrees from north); the tests measure the distance again with
// haversineTestM rather than trusting m.
func offset(bearing, m float64) (lon, lat float64) {
	b := bearing * math.Pi / 180
	lat = supportLat + m*math.Cos(b)/111195.0
	lon = supportLon + m*math.Sin(b)/(111195.0*math.Cos(supportLat*math.Pi/180))
	return lon, lat
}

type supportDB struct {
	t  *testing.T
	db *sql.DB
}

func newSupportDB(t *testing.T, ddl ...string) *supportDB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &supportDB{t, db}
	for _, q := range ddl {
		s.exec(q)
	}
	return s
}

func (s *supportDB) exec(q string, args ...any) {
	s.t.Helper()
	if _, err := s.db.Exec(q, args...); err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
}

var supportDDL = []string{
	`CREATE SCHEMA raw`,
	`CREATE TABLE raw.venues (venue_id VARCHAR, updated_at TIMESTAMP, name_zh VARCHAR, longitude DOUBLE, latitude DOUBLE, street_code VARCHAR, responsible_unit VARCHAR)`,
	`CREATE TABLE raw.grid_cells (grid_cell_id VARCHAR, updated_at TIMESTAMP, street_code VARCHAR, center_longitude DOUBLE, center_latitude DOUBLE, area_m2 DOUBLE)`,
	`CREATE TABLE raw.mobile_signal (grid_cell_id VARCHAR, window_start TIMESTAMP, people_count BIGINT, inflow BIGINT, outflow BIGINT)`,
	`CREATE TABLE raw.fire_stations (id VARCHAR, updated_at TIMESTAMP, name VARCHAR, kind VARCHAR, staff INTEGER, longitude DOUBLE, latitude DOUBLE, street_code VARCHAR)`,
	`CREATE TABLE raw.shelters (id VARCHAR, updated_at TIMESTAMP, name VARCHAR, kind VARCHAR, capacity_people BIGINT, longitude DOUBLE, latitude DOUBLE, street_code VARCHAR)`,
	`CREATE TABLE raw.supply_warehouses (id VARCHAR, updated_at TIMESTAMP, name VARCHAR, zone VARCHAR, capacity_people BIGINT, longitude DOUBLE, latitude DOUBLE, street_code VARCHAR)`,
	`CREATE TABLE raw.streets (adcode VARCHAR, updated_at TIMESTAMP, name_zh VARCHAR, name_en VARCHAR, center_longitude DOUBLE, center_latitude DOUBLE)`,
	`CREATE TABLE raw.water_sensors (sensor_id VARCHAR, updated_at TIMESTAMP, kind VARCHAR, waterlogging_point_id VARCHAR, street_code VARCHAR, longitude DOUBLE, latitude DOUBLE)`,
	`CREATE TABLE raw.waterlogging_points (id VARCHAR, updated_at TIMESTAMP, name VARCHAR, sensor_id VARCHAR, street_code VARCHAR, longitude DOUBLE, latitude DOUBLE)`,
}

type fixturePlace struct {
	id, kind, street string
	capacity         int64
	bearing, m       float64
	at               time.Time
}

// supportFixture: 7 fire stations (F7's newest version moved from 30 m to
// 1.5 km, F8 without coordinates), 6 shelters (S3's capacity revised),
// 3 warehouses, grid cells in and out of 500 m (G6 moved out, G7 moved in)
// with two intervals of mobile signal.
func supportFixture(t *testing.T) *supportDB {
	s := newSupportDB(t, supportDDL...)
	s.exec(`INSERT INTO raw.venues VALUES ('V1', ?, '西单', 116.40, 39.95, '110102999', '旧单位'), ('V1', ?, '西单', ?, ?, ?, '西单商圈管委会')`,
		refOld, refNew, supportLon, supportLat, supportStreet)
	s.exec(`INSERT INTO raw.streets VALUES (?, ?, '西长安街街道', 'Xichang''anjie', 116.3750, 39.9080)`, supportStreet, refNew)
	for _, f := range []fixturePlace{
		{"F5", "micro", supportStreet, 0, 45, 700, refNew},
		{"F2", "micro", supportStreet, 0, 90, 260, refNew},
		{"F7", "small", supportStreet, 0, 300, 30, refOld},
		{"F7", "small", supportStreet, 0, 300, 1500, refNew},
		{"F1", "small", supportStreet, 0, 0, 120, refNew},
		{"F6", "micro", "110102002", 0, 135, 880, refNew},
		{"F3", "small", supportStreet, 0, 180, 410, refNew},
		{"F4", "micro", "110102002", 0, 270, 530, refNew},
	} {
		lon, lat := offset(f.bearing, f.m)
		s.exec(`INSERT INTO raw.fire_stations VALUES (?, ?, ?, ?, 6, ?, ?, ?)`, f.id, f.at, "消防站"+f.id, f.kind, lon, lat, f.street)
	}
	s.exec(`INSERT INTO raw.fire_stations VALUES ('F8', ?, '消防站F8', 'micro', 4, NULL, NULL, ?)`, refNew, supportStreet)
	for _, f := range []fixturePlace{
		{"S1", "outdoor", supportStreet, 3000, 20, 150, refNew},
		{"S2", "indoor", supportStreet, 800, 160, 320, refNew},
		{"S3", "indoor", supportStreet, 100, 240, 90, refOld},
		{"S3", "indoor", supportStreet, 2500, 240, 90, refNew},
		{"S4", "outdoor", supportStreet, 12000, 60, 640, refNew},
		{"S5", "indoor", supportStreet, 450, 300, 800, refNew},
		{"S6", "outdoor", supportStreet, 20000, 10, 1200, refNew},
	} {
		lon, lat := offset(f.bearing, f.m)
		s.exec(`INSERT INTO raw.shelters VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, f.id, f.at, "避难场所"+f.id, f.kind, f.capacity, lon, lat, f.street)
	}
	for _, f := range []fixturePlace{
		{"W-N", "north", "110102010", 30000, 0, 3000, refNew},
		{"W-S", "south", "110102012", 25000, 180, 5000, refNew},
		{"W-C", "centre", supportStreet, 28000, 200, 1200, refNew},
	} {
		lon, lat := offset(f.bearing, f.m)
		s.exec(`INSERT INTO raw.supply_warehouses VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, f.id, f.at, "储备库"+f.id, f.kind, f.capacity, lon, lat, f.street)
	}
	for _, g := range []fixturePlace{
		{id: "G1", bearing: 10, m: 100, at: refNew},
		{id: "G2", bearing: 100, m: 300, at: refNew},
		{id: "G3", bearing: 250, m: 450, at: refNew},
		{id: "G4", bearing: 30, m: 560, at: refNew},
		{id: "G5", bearing: 200, m: 1000, at: refNew},
		{id: "G6", bearing: 0, m: 200, at: refOld}, {id: "G6", bearing: 0, m: 2000, at: refNew},
		{id: "G7", bearing: 0, m: 3000, at: refOld}, {id: "G7", bearing: 300, m: 350, at: refNew},
	} {
		lon, lat := offset(g.bearing, g.m)
		s.exec(`INSERT INTO raw.grid_cells VALUES (?, ?, ?, ?, ?, 62500)`, g.id, g.at, supportStreet, lon, lat)
	}
	// Latest interval: 40 + 30 + 20 + 5 = 95 inside 500 m (G1 delivered twice).
	for id, n := range map[string]int64{"G1": 40, "G2": 30, "G3": 20, "G4": 500, "G5": 700, "G6": 900, "G7": 5} {
		s.exec(`INSERT INTO raw.mobile_signal VALUES (?, ?, 1000, 0, 0), (?, ?, ?, 0, 0)`, id, sigT1, id, sigT2, n)
	}
	s.exec(`INSERT INTO raw.mobile_signal VALUES ('G1', ?, 40, 0, 0)`, sigT2)
	return s
}

// expectedPlaces lists the newest located rows of table nearest first, with
// distances measured in Go.
func expectedPlaces(t *testing.T, s *supportDB, table, kind string, withCapacity bool, n int) []Place {
	t.Helper()
	capExpr := "CAST(0 AS BIGINT)"
	if withCapacity {
		capExpr = "capacity_people"
	}
	rows, err := s.db.Query(`SELECT id, name, ` + kind + `, ` + capExpr + `, longitude, latitude FROM ` + table + ` t
		WHERE updated_at = (SELECT max(updated_at) FROM ` + table + ` u WHERE u.id = t.id) AND longitude IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Place
	for rows.Next() {
		var p Place
		if err := rows.Scan(&p.ID, &p.Name, &p.Kind, &p.CapacityPeople, &p.Lon, &p.Lat); err != nil {
			t.Fatal(err)
		}
		p.DistanceM = haversineTestM(supportLon, supportLat, p.Lon, p.Lat)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DistanceM < out[j].DistanceM })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func samePlaces(t *testing.T, what string, got, want []Place) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d places %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Name != w.Name || g.Kind != w.Kind || g.CapacityPeople != w.CapacityPeople || g.Lon != w.Lon || g.Lat != w.Lat {
			t.Errorf("%s[%d] = %+v, want %+v", what, i, g, w)
		}
		if math.Abs(g.DistanceM-w.DistanceM) > 1 {
			t.Errorf("%s[%d] %s: distance %.2f m, haversine %.2f m", what, i, g.ID, g.DistanceM, w.DistanceM)
		}
	}
}

func ids(ps []Place) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

var venueResponse = Response{ID: "R1", Kind: "crowd", SubjectType: "venue", SubjectID: "V1", StreetCode: supportStreet}

func TestSupportVenue(t *testing.T) {
	s := supportFixture(t)
	v, err := Support(context.Background(), s.db.QueryContext, venueResponse, SupportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Center == nil || v.Center.Lon != supportLon || v.Center.Lat != supportLat {
		t.Fatalf("center %+v, want the venue's newest location", v.Center)
	}
	samePlaces(t, "fire stations", v.FireStations, expectedPlaces(t, s, "raw.fire_stations", "kind", false, 5))
	samePlaces(t, "shelters", v.Shelters, expectedPlaces(t, s, "raw.shelters", "kind", true, 5))
	samePlaces(t, "warehouses", v.Warehouses, expectedPlaces(t, s, "raw.supply_warehouses", "zone", true, 0))
	// The same, spelled out: F7's old version (30 m) must not win, F8 has no location.
	if got, want := ids(v.FireStations), []string{"F1", "F2", "F3", "F4", "F5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fire stations %v, want %v", got, want)
	}
	if got, want := ids(v.Shelters), []string{"S3", "S1", "S2", "S4", "S5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("shelters %v, want %v", got, want)
	}
	if v.Shelters[0].CapacityPeople != 2500 {
		t.Errorf("S3 capacity %d, want the revised 2500", v.Shelters[0].CapacityPeople)
	}
	if got, want := ids(v.Warehouses), []string{"W-C", "W-N", "W-S"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warehouses %v, want %v", got, want)
	}
	want := &PeopleNearby{Count: 95, RadiusM: 500, At: sigT2, MinReported: 10}
	if p := v.PeopleNearby; p == nil || p.Count != want.Count || p.RadiusM != want.RadiusM || !p.At.Equal(want.At) || p.MinReported != want.MinReported {
		t.Errorf("people nearby %+v, want %+v", p, want)
	}
	if got, want := v.ResponsibleUnits, []string{"西单商圈管委会", "西长安街街道办事处"}; !reflect.DeepEqual(got, want) {
		t.Errorf("responsible units %q, want %q", got, want)
	}
}

func TestSupportPeopleFloor(t *testing.T) {
	s := supportFixture(t)
	for _, c := range []struct {
		name   string
		opt    SupportOptions
		want   int64 // -1: withheld
		radius float64
	}{
		{"default floor", SupportOptions{}, 95, 500},
		{"at the floor", SupportOptions{KFloor: 95}, 95, 500},
		{"below the floor", SupportOptions{KFloor: 96}, -1, 500},
		{"small radius", SupportOptions{RadiusM: 150}, 40, 150},
		{"small radius below the floor", SupportOptions{RadiusM: 150, KFloor: 41}, -1, 150},
		{"no cell inside", SupportOptions{RadiusM: 50}, -1, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Support(context.Background(), s.db.QueryContext, venueResponse, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			p := v.PeopleNearby
			switch {
			case c.want < 0 && p != nil:
				t.Errorf("people nearby %+v, want withheld", *p)
			case c.want >= 0 && (p == nil || p.Count != c.want || p.RadiusM != c.radius || !p.At.Equal(sigT2)):
				t.Errorf("people nearby %+v, want %d within %.0f m at %s", p, c.want, c.radius, sigT2)
			}
			b, _ := json.Marshal(v)
			if c.want < 0 && !strings.Contains(string(b), `"people_nearby":null`) {
				t.Errorf("withheld count not null in JSON: %s", b)
			}
		})
	}
}

func TestSupportLocate(t *testing.T) {
	s := supportFixture(t)
	gLon, gLat := offset(10, 100)
	wpLon, wpLat := offset(90, 40)
	s.exec(`INSERT INTO raw.water_sensors VALUES ('WS1', ?, 'water_level', NULL, '110102003', 116.36, 39.92),
		('WS2', ?, 'water_level', 'WP1', '110102004', NULL, NULL), ('WS3', ?, 'water_level', NULL, NULL, NULL, NULL)`, refNew, refNew, refNew)
	s.exec(`INSERT INTO raw.waterlogging_points VALUES ('WP1', ?, '低点一', NULL, NULL, ?, ?),
		('WP2', ?, '低点二', 'WS3', '110102005', 116.35, 39.93), ('WP2', ?, '低点二', 'WS9', '110102005', 116.30, 39.90)`, refNew, wpLon, wpLat, refNew, refOld)
	for _, c := range []struct {
		name, typ, id string
		want          *Point
		street        string
	}{
		{"venue", "venue", "V1", &Point{supportLon, supportLat}, supportStreet},
		{"unknown venue", "venue", "V404", nil, ""},
		{"grid cell", "grid_cell", "G1", &Point{gLon, gLat}, supportStreet},
		{"sensor", "sensor", "WS1", &Point{116.36, 39.92}, "110102003"},
		{"sensor at its low point", "sensor", "WS2", &Point{wpLon, wpLat}, "110102004"},
		{"sensor named by a low point", "sensor", "WS3", &Point{116.35, 39.93}, "110102005"},
		{"collision hot spot", "segment", "spot:39.9100,116.3700", &Point{116.37, 39.91}, ""},
		{"speed segment", "segment", "SEG-0042", nil, ""},
		{"weather station", "station", "Guanyuan", nil, ""},
		{"district", "district", "110102", nil, ""},
		// No coordinates of their own, but a street: its centre stands in.
		{"speed segment in a street", "segment", "SEG-0042@" + supportStreet, &Point{116.3750, 39.9080}, supportStreet},
		{"weather station in a street", "station", "Guanyuan@" + supportStreet, &Point{116.3750, 39.9080}, supportStreet},
		{"speed segment in a street without a row", "segment", "SEG-0042@110102002", nil, "110102002"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, street, _ := strings.Cut(c.id, "@")
			got, err := locate(context.Background(), s.db.QueryContext, Response{SubjectType: c.typ, SubjectID: id, StreetCode: street})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.center, c.want) || got.street != c.street {
				t.Errorf("center %+v street %q, want %+v %q", got.center, got.street, c.want, c.street)
			}
			if approx := street != "" && c.want != nil; got.approx != approx {
				t.Errorf("approx %v, want %v", got.approx, approx)
			}
		})
	}
	v, err := Support(context.Background(), s.db.QueryContext, Response{SubjectType: "segment", SubjectID: "SEG-0042", StreetCode: supportStreet}, SupportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.CenterApprox != "street" || v.Center == nil || len(v.FireStations) == 0 || v.FireStations[0].DistanceM == 0 {
		t.Errorf("a speed segment's support: approx %q center %+v stations %+v; want the street's centre and distances from it", v.CenterApprox, v.Center, v.FireStations)
	}
}

// Without a location the lists put the response's street first.
func TestSupportNoLocation(t *testing.T) {
	s := supportFixture(t)
	v, err := Support(context.Background(), s.db.QueryContext,
		Response{SubjectType: "station", SubjectID: "Guanyuan", StreetCode: "110102002"}, SupportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Center != nil || v.PeopleNearby != nil {
		t.Errorf("center %+v, people %+v: want both unknown", v.Center, v.PeopleNearby)
	}
	if got, want := ids(v.FireStations), []string{"F4", "F6", "F1", "F2", "F3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fire stations %v, want %v", got, want)
	}
	for _, p := range v.FireStations {
		if p.DistanceM != 0 {
			t.Errorf("%s: distance %.1f without a location", p.ID, p.DistanceM)
		}
	}
	if len(v.Warehouses) != 3 || len(v.Shelters) != 5 {
		t.Errorf("%d warehouses, %d shelters; want 3 and 5", len(v.Warehouses), len(v.Shelters))
	}
}

func TestSupportMissingTables(t *testing.T) {
	for _, c := range []struct {
		name  string
		ddl   []string
		units []string
	}{
		{"no raw schema", nil, []string{}},
		{"venues only", []string{supportDDL[0], supportDDL[1],
			`INSERT INTO raw.venues VALUES ('V1', TIMESTAMP '2025-03-01', '西单', 116.37, 39.91, '110102001', '西单商圈管委会')`}, []string{"西单商圈管委会"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSupportDB(t, c.ddl...)
			v, err := Support(context.Background(), s.db.QueryContext, venueResponse, SupportOptions{})
			if err != nil {
				t.Fatalf("missing tables are not an error: %v", err)
			}
			if len(v.FireStations)+len(v.Shelters)+len(v.Warehouses) != 0 || v.PeopleNearby != nil || !reflect.DeepEqual(v.ResponsibleUnits, c.units) {
				t.Errorf("got %+v, want empty parts and units %q", v, c.units)
			}
			b, _ := json.Marshal(v)
			if !strings.Contains(string(b), `"fire_stations":[]`) {
				t.Errorf("empty list not [] in JSON: %s", b)
			}
		})
	}
}

// A query that fails on a table that exists is an error naming the table.
func TestSupportBrokenTable(t *testing.T) {
	s := newSupportDB(t, supportDDL[0], supportDDL[1], `CREATE TABLE raw.shelters (id VARCHAR, updated_at TIMESTAMP, name VARCHAR, kind VARCHAR, longitude DOUBLE, latitude DOUBLE)`)
	_, err := Support(context.Background(), s.db.QueryContext, venueResponse, SupportOptions{})
	if err == nil || !strings.Contains(err.Error(), "raw.shelters") {
		t.Fatalf("err = %v, want one naming raw.shelters", err)
	}
}

func TestSupportJSON(t *testing.T) {
	s := supportFixture(t)
	v, err := Support(context.Background(), s.db.QueryContext, venueResponse, SupportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"center", "fire_stations", "shelters", "warehouses", "people_nearby", "responsible_units"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	var pn map[string]any
	json.Unmarshal(m["people_nearby"], &pn)
	for _, k := range []string{"count", "radius_m", "at", "k_floor"} {
		if _, ok := pn[k]; !ok {
			t.Errorf("people_nearby has no %q: %s", k, m["people_nearby"])
		}
	}
	var fs, sh []map[string]any
	json.Unmarshal(m["fire_stations"], &fs)
	json.Unmarshal(m["shelters"], &sh)
	if _, ok := fs[0]["capacity_people"]; ok {
		t.Errorf("fire station with a capacity: %v", fs[0])
	}
	for _, k := range []string{"id", "name", "kind", "capacity_people", "lon", "lat", "distance_m"} {
		if _, ok := sh[0][k]; !ok {
			t.Errorf("shelter has no %q: %v", k, sh[0])
		}
	}
	if !strings.Contains(string(m["center"]), `"lon":116.37`) {
		t.Errorf("center %s", m["center"])
	}
}
