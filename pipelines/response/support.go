package response

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/auth"
	"citybrain/warehouse"
)

// SupportView is what a responder sees around an event (辅助决策).
type SupportView struct {
	// Center is the subject's location; nil when neither its table nor
	// its street places it (the district).
	Center *Point `json:"center,omitempty"`
	// CenterApprox is "street" when the subject has no coordinates of its
	// own (speed segments, weather stations) and Center is its street's
	// centre: distances are from there.
	CenterApprox string `json:"center_approx,omitempty"`
	// FireStations are the 5 nearest small and micro fire stations.
	FireStations []Place `json:"fire_stations"`
	// Shelters are the 5 nearest emergency shelters, with capacity.
	Shelters []Place `json:"shelters"`
	// Warehouses are all the supply warehouses (usually 3), nearest first.
	Warehouses []Place `json:"warehouses"`
	// PeopleNearby is nil when withheld (below the k-anonymity floor) or
	// unknown (no location, no grid cells or mobile signal).
	PeopleNearby *PeopleNearby `json:"people_nearby"`
	// ResponsibleUnits: the venue's responsible unit, then the street office.
	ResponsibleUnits []string `json:"responsible_units"`
}

// Point is a WGS-84 location.
type Point struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
}

// Place is a fire station, shelter or warehouse. Kind is the station's kind
// (small, micro), the shelter's (indoor, outdoor) or the warehouse's zone
// (north, centre, south). DistanceM is the great-circle distance from the
// subject, 0 when the subject's location is unknown (Center nil).
type Place struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	Kind           string  `json:"kind"`
	CapacityPeople int64   `json:"capacity_people,omitempty"`
	Lon            float64 `json:"lon"`
	Lat            float64 `json:"lat"`
	DistanceM      float64 `json:"distance_m"`
}

// PeopleNearby is the mobile-signal people count of the grid cells whose
// centre lies within RadiusM of the subject, in the latest interval (At)
// those cells reported. MinReported is the floor it had to reach.
type PeopleNearby struct {
	Count       int64     `json:"count"`
	RadiusM     float64   `json:"radius_m"`
	At          time.Time `json:"at"`
	MinReported int64     `json:"k_floor"`
}

// SupportOptions tune Support; zero values take the defaults.
type SupportOptions struct {
	// RadiusM is the radius of "people nearby" (default 500 m).
	RadiusM float64
	// KFloor: a people count below it is withheld (default: auth.suppress_below
	// of auth.DefaultConfig, 10). It cannot be turned off here.
	KFloor int64
}

// DefaultSupportRadiusM is the radius of "people nearby" when none is given.
const DefaultSupportRadiusM = 500

// earthRadiusM is the mean Earth radius (IUGG) of the haversine distances.
const earthRadiusM = 6371008.8

// How many of the nearest fire stations and shelters a responder sees
// (warehouses: all of them).
const (
	nearestFireStations = 5
	nearestShelters     = 5
)

// Support answers for a response's subject with query (the warehouse
// engine's Query). Reference tables are read at their newest row per id.
// A table not ingested yet leaves its part empty (nil Center, empty list,
// nil PeopleNearby); only a query that fails on an existing table is an
// error. The people count is never returned below the k-anonymity floor.
func Support(ctx context.Context, query func(ctx context.Context, q string, args ...any) (*sql.Rows, error), r Response, opt SupportOptions) (SupportView, error) {
	if opt.RadiusM <= 0 {
		opt.RadiusM = DefaultSupportRadiusM
	}
	if opt.KFloor <= 0 {
		opt.KFloor = int64(auth.DefaultConfig().SuppressBelow)
	}
	v := SupportView{FireStations: []Place{}, Shelters: []Place{}, Warehouses: []Place{}, ResponsibleUnits: []string{}}
	s, err := locate(ctx, query, r)
	if err != nil {
		return v, err
	}
	v.Center = s.center
	if s.approx {
		v.CenterApprox = "street"
	}
	for _, l := range []struct {
		dst         *[]Place
		table, kind string
		capacity    string
		limit       int
	}{
		{&v.FireStations, "raw.fire_stations", "kind", "CAST(NULL AS BIGINT)", nearestFireStations},
		{&v.Shelters, "raw.shelters", "kind", "CAST(p.capacity_people AS BIGINT)", nearestShelters},
		{&v.Warehouses, "raw.supply_warehouses", "zone", "CAST(p.capacity_people AS BIGINT)", 0},
	} {
		if *l.dst, err = places(ctx, query, l.table, l.kind, l.capacity, l.limit, s); err != nil {
			return v, err
		}
	}
	if s.center != nil {
		if v.PeopleNearby, err = peopleNearby(ctx, query, *s.center, opt); err != nil {
			return v, err
		}
	}
	if s.unit != "" {
		v.ResponsibleUnits = append(v.ResponsibleUnits, s.unit)
	}
	if s.street != "" {
		var name sql.NullString
		if err := each(ctx, query, "raw.streets", `SELECT name_zh FROM raw.streets WHERE adcode = ? ORDER BY updated_at DESC LIMIT 1`,
			[]any{s.street}, func(rows *sql.Rows) error { return rows.Scan(&name) }); err != nil {
			return v, err
		}
		// The street office, named as the warning engine names a street's
		// unit (pipelines/warnings/lifecycle.go, responsibleWords).
		if office := strings.TrimSpace(name.String); office != "" && office+"办事处" != s.unit {
			v.ResponsibleUnits = append(v.ResponsibleUnits, office+"办事处")
		}
	}
	return v, nil
}

// queryFunc is the warehouse engine's Query.
type queryFunc = func(ctx context.Context, q string, args ...any) (*sql.Rows, error)

// subject is where a response's subject is and who answers for it.
type subject struct {
	center *Point
	approx bool   // center is the street's centre
	street string // the response's street, else the subject's
	unit   string // raw.venues.responsible_unit
}

// locate finds the subject in its reference table: venues and grid cells
// by their coordinates, sensors by theirs or their waterlogging point's,
// collision hot spots ("spot:LAT,LON") by the south-west corner of their
// cell (warnings.traffic.collision_cell_deg, about 500 m). Speed segments
// and weather stations have no coordinates in their schemas: their street's
// centre stands in (approx); the district has none.
func locate(ctx context.Context, query queryFunc, r Response) (subject, error) {
	s := subject{street: r.StreetCode}
	var lon, lat sql.NullFloat64
	var street, extra sql.NullString
	scan := func(rows *sql.Rows) error { return rows.Scan(&lon, &lat, &street, &extra) }
	one := func(table, q string, args ...any) error { return each(ctx, query, table, q, args, scan) }
	var err error
	switch r.SubjectType {
	case "venue":
		err = one("raw.venues", `SELECT longitude, latitude, street_code, responsible_unit FROM raw.venues
			WHERE venue_id = ? ORDER BY updated_at DESC LIMIT 1`, r.SubjectID)
		s.unit = strings.TrimSpace(extra.String)
	case "grid_cell":
		err = one("raw.grid_cells", `SELECT center_longitude, center_latitude, street_code, CAST(NULL AS VARCHAR) FROM raw.grid_cells
			WHERE grid_cell_id = ? ORDER BY updated_at DESC LIMIT 1`, r.SubjectID)
	case "sensor":
		err = one("raw.water_sensors", `SELECT longitude, latitude, street_code, waterlogging_point_id FROM raw.water_sensors
			WHERE sensor_id = ? ORDER BY updated_at DESC LIMIT 1`, r.SubjectID)
		if err == nil && !(lon.Valid && lat.Valid) {
			point, sensorStreet := extra.String, street
			err = one("raw.waterlogging_points", `SELECT longitude, latitude, street_code, id
				FROM (SELECT * FROM raw.waterlogging_points QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1)
				WHERE id = ? OR sensor_id = ? ORDER BY id = ? DESC, id LIMIT 1`, point, r.SubjectID, point)
			if !street.Valid {
				street = sensorStreet
			}
		}
	case "segment":
		spot, isSpot := strings.CutPrefix(r.SubjectID, "spot:")
		if la, lo, ok := strings.Cut(spot, ","); isSpot && ok {
			y, e1 := strconv.ParseFloat(strings.TrimSpace(la), 64)
			x, e2 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
			if e1 == nil && e2 == nil && y >= -90 && y <= 90 && x >= -180 && x <= 180 {
				lon, lat = sql.NullFloat64{Float64: x, Valid: true}, sql.NullFloat64{Float64: y, Valid: true}
			}
		}
	}
	if err != nil {
		return s, err
	}
	if lon.Valid && lat.Valid {
		s.center = &Point{Lon: lon.Float64, Lat: lat.Float64}
	}
	if s.street == "" {
		s.street = strings.TrimSpace(street.String)
	}
	// No coordinates of its own (a speed segment, a weather station):
	// the street's centre stands in, said so.
	if s.center == nil && s.street != "" {
		var clon, clat sql.NullFloat64
		if err := each(ctx, query, "raw.streets", `SELECT center_longitude, center_latitude FROM raw.streets WHERE adcode = ? ORDER BY updated_at DESC LIMIT 1`,
			[]any{s.street}, func(rows *sql.Rows) error { return rows.Scan(&clon, &clat) }); err != nil {
			return s, err
		}
		if clon.Valid && clat.Valid {
			s.center, s.approx = &Point{Lon: clon.Float64, Lat: clat.Float64}, true
		}
	}
	return s, nil
}

// distanceSQL is the haversine distance in metres from c (lon, lat) to the
// point (lonCol, latCol).
func distanceSQL(lonCol, latCol string) string {
	return fmt.Sprintf(`2 * %.1f * asin(sqrt(least(1.0, pow(sin(radians(%[3]s - c.lat) / 2), 2)
		+ cos(radians(c.lat)) * cos(radians(%[3]s)) * pow(sin(radians(%[2]s - c.lon) / 2), 2))))`, earthRadiusM, lonCol, latCol)
}

// places reads the newest row of each place of table that has coordinates
// (kind: the column of Place.Kind; capacity: an expression over p):
// nearest first when the subject's location is known, else those of its
// street first, then by id. limit 0 takes them all.
func places(ctx context.Context, query queryFunc, table, kind, capacity string, limit int, s subject) ([]Place, error) {
	latest := `SELECT * FROM ` + table + ` QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1`
	cols := `p.id, p.name, p.` + kind + `, ` + capacity + `, p.longitude, p.latitude`
	var q string
	var args []any
	if s.center != nil {
		q = `WITH c AS (SELECT CAST(? AS DOUBLE) AS lon, CAST(? AS DOUBLE) AS lat), p AS (` + latest + `)
			SELECT ` + cols + `, ` + distanceSQL("p.longitude", "p.latitude") + ` AS d
			FROM p, c WHERE p.longitude IS NOT NULL AND p.latitude IS NOT NULL ORDER BY d, p.id`
		args = []any{s.center.Lon, s.center.Lat}
	} else {
		q = `WITH p AS (` + latest + `)
			SELECT ` + cols + `, CAST(0 AS DOUBLE) AS d
			FROM p WHERE p.longitude IS NOT NULL AND p.latitude IS NOT NULL
			ORDER BY CASE WHEN p.street_code = ? THEN 0 ELSE 1 END, p.id`
		args = []any{s.street}
	}
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	out := []Place{}
	err := each(ctx, query, table, q, args, func(rows *sql.Rows) error {
		var id, name, k sql.NullString
		var capy sql.NullInt64
		var p Place
		if err := rows.Scan(&id, &name, &k, &capy, &p.Lon, &p.Lat, &p.DistanceM); err != nil {
			return err
		}
		p.ID, p.Name, p.Kind, p.CapacityPeople = id.String, name.String, k.String, capy.Int64
		out = append(out, p)
		return nil
	})
	return out, err
}

// peopleNearby sums raw.mobile_signal over the grid cells whose centre is
// within opt.RadiusM of c, in the latest interval those cells reported; nil
// when there is none or the sum is below opt.KFloor (as the dashboards hide
// a venue's summed grid count, dashboards/api.go).
func peopleNearby(ctx context.Context, query queryFunc, c Point, opt SupportOptions) (*PeopleNearby, error) {
	q := `WITH c AS (SELECT CAST(? AS DOUBLE) AS lon, CAST(? AS DOUBLE) AS lat),
		near AS (SELECT g.grid_cell_id
			FROM (SELECT * FROM raw.grid_cells QUALIFY row_number() OVER (PARTITION BY grid_cell_id ORDER BY updated_at DESC) = 1) g, c
			WHERE ` + distanceSQL("g.center_longitude", "g.center_latitude") + ` <= ?),
		m AS (SELECT grid_cell_id, window_start, max(people_count) AS n FROM raw.mobile_signal
			WHERE grid_cell_id IN (SELECT grid_cell_id FROM near) GROUP BY grid_cell_id, window_start)
		SELECT window_start, CAST(sum(n) AS BIGINT) FROM m WHERE window_start = (SELECT max(window_start) FROM m) GROUP BY window_start`
	var at sql.NullTime
	var n sql.NullInt64
	if err := each(ctx, query, "raw.grid_cells, raw.mobile_signal", q, []any{c.Lon, c.Lat, opt.RadiusM},
		func(rows *sql.Rows) error { return rows.Scan(&at, &n) }); err != nil {
		return nil, err
	}
	if !at.Valid || !n.Valid || n.Int64 < opt.KFloor {
		return nil, nil
	}
	return &PeopleNearby{Count: n.Int64, RadiusM: opt.RadiusM, At: at.Time, MinReported: opt.KFloor}, nil
}

// each runs q and calls row for every row. A table that does not exist is
// not an error: row is not called.
func each(ctx context.Context, query queryFunc, table, q string, args []any, row func(*sql.Rows) error) error {
	rows, err := query(ctx, q, args...)
	if err != nil {
		if missingTable(err) {
			return nil
		}
		return fmt.Errorf("辅助决策读取 %s 失败 / decision support: read %s: %w", table, table, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return fmt.Errorf("辅助决策读取 %s 失败 / decision support: read %s: %w", table, table, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("辅助决策读取 %s 失败 / decision support: read %s: %w", table, table, err)
	}
	return nil
}

// missingTable says whether err is a query naming a table (or schema) that
// does not exist: the engine leaves a table not ingested yet to DuckDB,
// which refuses it with a catalog error.
func missingTable(err error) bool {
	if errors.Is(err, warehouse.ErrNoTable) {
		return true
	}
	var de *duckdb.Error
	if !errors.As(err, &de) || de.Type != duckdb.ErrorTypeCatalog {
		return false
	}
	msg := de.Msg
	return strings.Contains(msg, "does not exist") && (strings.Contains(msg, "Table with name") || strings.Contains(msg, "Schema with name"))
}
