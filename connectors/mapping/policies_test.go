package mapping

import (
	"math"
	"strings"
	"testing"

	"citybrain/schemas"
)

func weatherSchema(t *testing.T) *schemas.Schema { return builtinSchema(t, "weather") }

func builtinSchema(t *testing.T, name string) *schemas.Schema {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPolicies: what a mapping can say about messy feeds — per-field null
// tokens, units converted to the schema's, rows that omit trailing empty
// fields, and (0, 0) as "no location".
func TestPolicies(t *testing.T) {
	s := weatherSchema(t)
	header := []string{"station", "at", "pm25", "pres_kpa", "wind_kmh", "temp_f", "rain_in", "wd"}
	spec := Spec{Timezone: "UTC", Fields: map[string]FieldSpec{
		"station":        {Column: "station"},
		"observed_at":    {Column: "at"},
		"pm25":           {Column: "pm25", NullValues: []string{"-999", "0"}},
		"pressure_hpa":   {Column: "pres_kpa", Unit: "kPa"},
		"wind_speed_ms":  {Column: "wind_kmh", Unit: "km/h"},
		"temperature_c":  {Column: "temp_f", Unit: "°F"},
		"rain_mm":        {Column: "rain_in", Unit: "in"},
		"wind_direction": {Column: "wd"},
	}}
	m, err := New(s, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bind(header)
	if err != nil {
		t.Fatal(err)
	}
	near := func(got any, want float64) bool {
		x, ok := got.(float64)
		return ok && math.Abs(x-want) < 1e-9
	}
	r, err := b.Map([]string{"Zürich", "2024-07-01 12:00:00", "-999", "101.3", "36", "212", "0.5", "N"})
	if err != nil {
		t.Fatal(err)
	}
	if r[s.Index("pm25")] != nil {
		t.Errorf("pm25 -999 (a per-field null token) = %v, want null", r[s.Index("pm25")])
	}
	for f, want := range map[string]float64{"pressure_hpa": 1013, "wind_speed_ms": 10, "temperature_c": 100, "rain_mm": 12.7} {
		if !near(r[s.Index(f)], want) {
			t.Errorf("%s = %v, want %v", f, r[s.Index(f)], want)
		}
	}
	// Another field's value -999 is a number: the token is per field.
	r, err = b.Map([]string{"Zürich", "2024-07-01 12:00:00", "12", "101.3", "36", "-999", "0", "N"})
	if err != nil {
		t.Fatal(err)
	}
	if !near(r[s.Index("pm25")], 12) || !near(r[s.Index("temperature_c")], (-999-32)*5.0/9) {
		t.Errorf("pm25 %v, temperature_c %v", r[s.Index("pm25")], r[s.Index("temperature_c")])
	}

	// A row without its trailing empty fields.
	short := []string{"Zürich", "2024-07-01 13:00:00", "15"}
	if _, err := b.Map(short); err == nil || !strings.Contains(err.Error(), "short_rows") {
		t.Errorf("short row without short_rows: %v (want the column count error and the hint)", err)
	}
	spec.ShortRows = true
	m2, _ := New(s, spec)
	b2, _ := m2.Bind(header)
	r, err = b2.Map(short)
	if err != nil || !near(r[s.Index("pm25")], 15) || r[s.Index("pressure_hpa")] != nil || r[s.Index("wind_direction")] != nil {
		t.Errorf("short row with short_rows: %v %v", r, err)
	}
	if _, err := b2.Map(append(append([]string{}, short...), "1", "2", "3", "4", "5", "6")); err == nil {
		t.Error("a row with more cells than the header was accepted")
	}

	// Conversions the schema cannot take are configuration errors.
	for _, bad := range []FieldSpec{
		{Column: "x", Unit: "furlong"},
	} {
		sp := Spec{Fields: map[string]FieldSpec{"station": {Column: "station"}, "observed_at": {Column: "at"}, "pressure_hpa": bad}}
		if _, err := New(s, sp); err == nil || !strings.Contains(err.Error(), "kPa→hPa") {
			t.Errorf("unit %q: %v (want the known conversions listed)", bad.Unit, err)
		}
	}
	sp := Spec{Fields: map[string]FieldSpec{"station": {Column: "station", Unit: "kPa"}, "observed_at": {Column: "at"}}}
	if _, err := New(s, sp); err == nil || !strings.Contains(err.Error(), "double") {
		t.Errorf("unit on a string field: %v", err)
	}
}

// TestZeroCoordinatesAsNull: (0, 0) is dead-lettered with a hint by
// default, and kept without a location with coordinates.zero_is_null.
func TestZeroCoordinatesAsNull(t *testing.T) {
	header := []string{"id", "at", "x", "y"}
	spec := Spec{Fields: base(nil),
		Coordinates: &CoordinateSpec{Lon: FieldSpec{Column: "x"}, Lat: FieldSpec{Column: "y"}}, Street: &StreetSpec{Field: "street_code"}}
	spec.Coordinates.To.Lon, spec.Coordinates.To.Lat = "lon", "lat"
	s, b := bindPoints(t, spec, header)
	if _, err := b.Map([]string{"1", "2024-01-01", "0", "0"}); err == nil || !strings.Contains(err.Error(), "zero_is_null") {
		t.Errorf("(0, 0) by default: %v", err)
	}
	spec.Coordinates.ZeroIsNull = true
	s, b = bindPoints(t, spec, header)
	r, err := b.Map([]string{"1", "2024-01-01", "0", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if r[s.Index("lon")] != nil || r[s.Index("lat")] != nil || r[s.Index("street_code")] != nil {
		t.Errorf("(0, 0) with zero_is_null: %v", r)
	}
	r, err = b.Map([]string{"2", "2024-01-01", "116.36679", "39.90812"})
	if err != nil || r[s.Index("lon")] == nil || r[s.Index("street_code")] == nil {
		t.Errorf("a real point with zero_is_null: %v %v", r, err)
	}
}
