package mapping

import (
	"math"
	"testing"
)

// FuzzMapFeatures: split, template, filter, coordinates and street never
// panic, and a mapped point is always finite, in range and not (0, 0).
func FuzzMapFeatures(f *testing.F) {
	for _, seed := range [][4]string{
		{"38.55,-121.39", "116.3", "39.9", "a"},
		{"", "", "", ""},
		{",,,", "NaN", "Inf", "{x}"},
		{"1e308,1e308", "1e308", "-1e308", "EMS: x"},
		{"39.88677,116.36328", "597450.125", "4797664.5", "TEST"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	mk := func(crs string, latFromGeo bool) *Bound {
		c := &CoordinateSpec{Lon: FieldSpec{Column: "x"}, Lat: FieldSpec{Column: "y"}, CRS: crs}
		if latFromGeo {
			c.Lat = FieldSpec{Column: "geo", Split: &SplitSpec{Sep: ",", Index: 0}}
			c.Lon = FieldSpec{Column: "geo", Split: &SplitSpec{Sep: ",", Index: 1}}
		}
		c.To.Lon, c.To.Lat = "lon", "lat"
		spec := Spec{NullValues: []string{"NA"}, Fields: map[string]FieldSpec{
			"id": {Value: ptr("1")}, "at": {Value: ptr("2024-01-01")},
			"name": {Template: "{kind} {geo}"}, "flag": {Column: "kind", Split: &SplitSpec{Sep: ":", Index: 1}},
		}, Filter: &FilterSpec{SkipIf: []Condition{{Column: "kind", Prefix: "TEST"}}},
			Coordinates: c, Street: &StreetSpec{Field: "street_code"}}
		m, err := New(points(f), spec)
		if err != nil {
			f.Fatal(err)
		}
		b, err := m.Bind([]string{"geo", "x", "y", "kind"})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	bounds := []*Bound{mk("wgs84", true), mk("gcj02", false), mk("utm:17N", false), mk("utm:50S", true)}
	s := points(f)
	f.Fuzz(func(t *testing.T, geo, x, y, kind string) {
		for _, b := range bounds {
			r, err := b.Map([]string{geo, x, y, kind})
			if err != nil {
				if r != nil {
					t.Fatalf("record and error: %v %v", r, err)
				}
				continue
			}
			lon, lat := r[s.Index("lon")], r[s.Index("lat")]
			if (lon == nil) != (lat == nil) {
				t.Fatalf("half a point: %v %v", lon, lat)
			}
			if lon == nil {
				continue
			}
			lo, la := lon.(float64), lat.(float64)
			if math.IsNaN(lo) || math.IsNaN(la) || math.Abs(lo) > 180 || math.Abs(la) > 90 || (lo == 0 && la == 0) {
				t.Fatalf("bad point %v, %v from %q %q %q", lo, la, geo, x, y)
			}
		}
	})
}
