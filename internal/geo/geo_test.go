package geo

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

func streets(t testing.TB) *Streets {
	t.Helper()
	s, err := LoadStreets()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Landmarks from ../shared/data/geo/SOURCES.md, given in GCJ-02.
func TestLandmarks(t *testing.T) {
	s := streets(t)
	tests := []struct {
		name           string
		gcjLon, gcjLat float64
		adcode, street string
	}{
		{"Beijing North Railway Station 北京北站", 116.353063, 39.944876, "110102009", "展览路街道"},
		{"Xidan 西单", 116.373001, 39.909500, "110102011", "金融街街道"},
		{"Houhai 后海", 116.39328, 39.93892, "110102012", "什刹海街道"},
		{"Niujie 牛街", 116.36328, 39.88677, "110102018", "牛街街道"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lon, lat := GCJ02ToWGS84(tt.gcjLon, tt.gcjLat)
			if d := math.Hypot(lon-tt.gcjLon, lat-tt.gcjLat); d < 0.001 || d > 0.01 {
				t.Errorf("GCJ-02 offset %.5f° is not the expected few hundred metres", d)
			}
			st, ok := s.Locate(lon, lat)
			if !ok || st.Adcode != tt.adcode || st.NameZH != tt.street {
				t.Errorf("Locate(%.6f, %.6f) = %+v, %v; want %s %s", lon, lat, st, ok, tt.adcode, tt.street)
			}
			if st.NameEN == "" {
				t.Errorf("%s has no English name", st.NameZH)
			}
			if !s.District().Contains(lon, lat) {
				t.Errorf("district outline does not contain %s", tt.name)
			}
		})
	}
	// Why the conversion matters: Xidan's raw GCJ-02 point lies ~600 m off,
	// in the neighbouring street.
	if st, ok := s.Locate(116.373001, 39.909500); ok && st.Adcode == "110102011" {
		t.Errorf("unconverted Xidan unexpectedly in 金融街街道; pick a better witness")
	}
}

func TestGCJRoundTrip(t *testing.T) {
	for lon := 73.0; lon <= 135; lon += 0.73 {
		for lat := 18.0; lat <= 53; lat += 0.61 {
			glon, glat := WGS84ToGCJ02(lon, lat)
			if glon == lon && glat == lat {
				t.Fatalf("no offset at %v,%v", lon, lat)
			}
			wlon, wlat := GCJ02ToWGS84(glon, glat)
			if math.Abs(wlon-lon) > 1e-6 || math.Abs(wlat-lat) > 1e-6 {
				t.Fatalf("round trip %v,%v → %v,%v → %v,%v", lon, lat, glon, glat, wlon, wlat)
			}
		}
	}
	for _, p := range [][2]float64{{-121.39, 38.55}, {2.35, 48.85}, {0, 0}, {151.2, -33.9}, {139.7, 35.7}} {
		if lon, lat := GCJ02ToWGS84(p[0], p[1]); lon != p[0] || lat != p[1] {
			t.Errorf("outside China %v changed to %v,%v", p, lon, lat)
		}
		if lon, lat := WGS84ToGCJ02(p[0], p[1]); lon != p[0] || lat != p[1] {
			t.Errorf("outside China %v changed to %v,%v", p, lon, lat)
		}
	}
	if lon, lat := GCJ02ToWGS84(math.NaN(), 39.9); !math.IsNaN(lon) || lat != 39.9 {
		t.Errorf("NaN input: %v %v", lon, lat)
	}
}

// The shipped WGS-84 district outline was derived from the GCJ-02 one with
// the standard inverse: ours must reproduce it.
func TestDistrictOutlineConversion(t *testing.T) {
	read := func(name string) [][][][2]float64 {
		data, err := os.ReadFile("data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var fc struct {
			Features []struct {
				Geometry struct {
					Coordinates [][][][2]float64 `json:"coordinates"`
				} `json:"geometry"`
			} `json:"features"`
		}
		if err := json.Unmarshal(data, &fc); err != nil {
			t.Fatal(err)
		}
		return fc.Features[0].Geometry.Coordinates
	}
	gcj, wgs := read("xicheng_district.geojson"), read("xicheng_district_wgs84.geojson")
	n := 0
	for i := range gcj {
		for j := range gcj[i] {
			for k, p := range gcj[i][j] {
				lon, lat := GCJ02ToWGS84(p[0], p[1])
				w := wgs[i][j][k]
				if math.Abs(lon-w[0]) > 2e-7 || math.Abs(lat-w[1]) > 2e-7 {
					t.Fatalf("vertex %d: %v → %.7f,%.7f, file has %v", k, p, lon, lat, w)
				}
				n++
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d vertices compared", n)
	}
}

func TestUTM(t *testing.T) {
	// Published samples.
	t.Run("GeographicLib GeoConvert 38N", func(t *testing.T) {
		// "33.3 44.4" ↔ "38n 444140.54 3684706.36" (GeoConvert documentation)
		e, n := WGS84ToUTM(38, true, 44.4, 33.3)
		if math.Abs(e-444140.54) > 0.01 || math.Abs(n-3684706.36) > 0.01 {
			t.Errorf("forward = %.3f %.3f", e, n)
		}
		lon, lat := UTMToWGS84(38, true, 444140.54, 3684706.36)
		if d := metres(lon, lat, 44.4, 33.3); d > 0.01 {
			t.Errorf("inverse = %.8f %.8f (%.3f m off)", lon, lat, d)
		}
	})
	t.Run("Snyder 1987 Clarke 1866 example", func(t *testing.T) {
		// Map Projections — A Working Manual, transverse Mercator on the
		// ellipsoid: φ=40°30'N, λ=73°30'W, λ0=75°W, k0=0.9996 →
		// x=127,106.5 m, y=4,484,124.4 m.
		clarke := newTM(ellipsoid{a: 6378206.4, f: 1 - math.Sqrt(1-0.00676866)})
		x, y := clarke.forward(40.5*math.Pi/180, 1.5*math.Pi/180, 0.9996)
		if math.Abs(x-127106.5) > 0.1 || math.Abs(y-4484124.4) > 0.1 {
			t.Errorf("forward = %.2f %.2f", x, y)
		}
		phi, dlam := clarke.inverse(127106.5, 4484124.4, 0.9996)
		if d := metres(dlam*180/math.Pi, phi*180/math.Pi, 1.5, 40.5); d > 0.1 {
			t.Errorf("inverse off by %.3f m", d)
		}
	})
	t.Run("zone 17N Burlington, Ontario", func(t *testing.T) {
		// 400 Brant St. (by Burlington City Hall, 426 Brant St., about
		// 43.3255 N, 79.7990 W) from planning/Building_Permits.csv.
		lon, lat := UTMToWGS84(17, true, 597450.125000002, 4797664.5)
		if d := metres(lon, lat, -79.7990, 43.3255); d > 150 {
			t.Errorf("400 Brant St. → %.6f %.6f, %.0f m from City Hall", lon, lat, d)
		}
	})
	t.Run("round trip", func(t *testing.T) {
		for zone := 1; zone <= 60; zone += 7 {
			cm := centralMeridian(zone)
			for _, north := range []bool{true, false} {
				for dl := -3.5; dl <= 3.5; dl += 0.5 {
					for lat := 0.0; lat <= 84; lat += 6 {
						la := lat
						if !north {
							la = -lat
						}
						lo := cm + dl
						e, n := WGS84ToUTM(zone, north, lo, la)
						lo2, la2 := UTMToWGS84(zone, north, e, n)
						if d := metres(lo+math.Remainder(lo2-lo, 360), la2, lo, la); d > 0.001 {
							t.Fatalf("zone %d %v %v,%v → %v,%v → %v,%v (%.4f m)", zone, north, lo, la, e, n, lo2, la2, d)
						}
					}
				}
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, z := range []int{0, 61, -1} {
			if lon, lat := UTMToWGS84(z, true, 500000, 0); !math.IsNaN(lon) || !math.IsNaN(lat) {
				t.Errorf("zone %d accepted", z)
			}
		}
		if lon, _ := UTMToWGS84(17, true, math.Inf(1), 0); !math.IsNaN(lon) {
			t.Error("Inf accepted")
		}
	})
}

// metres between two nearby points (equirectangular; fine below 100 km).
func metres(lon1, lat1, lon2, lat2 float64) float64 {
	const r = 6371008.8
	x := (lon1 - lon2) * math.Pi / 180 * math.Cos((lat1+lat2)/2*math.Pi/180)
	y := (lat1 - lat2) * math.Pi / 180
	return r * math.Hypot(x, y)
}

func TestStreetsAndArea(t *testing.T) {
	s := streets(t)
	all := s.All()
	if len(all) != 15 {
		t.Fatalf("%d streets, want 15", len(all))
	}
	sum := 0.0
	for i, st := range all {
		if i > 0 && all[i-1].Adcode >= st.Adcode {
			t.Errorf("not sorted by adcode: %s before %s", all[i-1].Adcode, st.Adcode)
		}
		if len(st.Adcode) != 9 || st.Adcode[:6] != "110102" || st.NameZH == "" || st.NameEN == "" {
			t.Errorf("bad street %+v", st)
		}
		if st.AreaKM2 < 0.5 || st.AreaKM2 > 10 {
			t.Errorf("%s area %.2f km²", st.NameZH, st.AreaKM2)
		}
		sum += st.AreaKM2
	}
	// SOURCES.md: "they sum to about 50.3 km²"; the ellipsoidal area of the
	// shipped polygons is 50.57 km² (official district area: about 50.5).
	if math.Abs(sum-50.3)/50.3 > 0.01 {
		t.Errorf("streets sum to %.2f km², want about 50.3", sum)
	}
	if d := s.District().AreaKM2(); math.Abs(sum-d)/d > 0.005 {
		t.Errorf("streets sum %.2f km², district outline %.2f km²", sum, d)
	}
}

func TestLocateOutsideAndInvalid(t *testing.T) {
	s := streets(t)
	for _, p := range [][2]float64{
		{-121.3914158, 38.55042047}, // Sacramento
		{116.5846, 40.0799},         // Capital Airport
		{116.3160, 39.9840},         // Zhongguancun, Haidian
		{116.4074, 39.9042},         // Dongcheng, east of Tiananmen
		{0, 0}, {180, 90}, {-180, -90},
		{math.NaN(), 39.9}, {116.37, math.NaN()}, {math.Inf(1), 39.9}, {116.37, math.Inf(-1)},
		{1e308, 1e308}, {-1e308, 39.9},
	} {
		if st, ok := s.Locate(p[0], p[1]); ok {
			t.Errorf("Locate(%v) = %+v, want not found", p, st)
		}
		if s.District().Contains(p[0], p[1]) {
			t.Errorf("district contains %v", p)
		}
	}
}

// Points exactly on a boundary shared by two streets go to the lower adcode.
func TestSharedBoundary(t *testing.T) {
	s := streets(t)
	all := s.All()
	owners := map[point][]int{}
	for i, st := range all {
		for _, p := range s.Region(st.Adcode).polys {
			for _, ring := range p.rings {
				seen := map[point]bool{}
				for _, v := range ring {
					if !seen[v] {
						seen[v] = true
						owners[v] = append(owners[v], i)
					}
				}
			}
		}
	}
	shared := 0
	for v, idx := range owners {
		if len(idx) < 2 {
			continue
		}
		shared++
		st, ok := s.Locate(v.lon, v.lat)
		if !ok || st.Adcode != all[idx[0]].Adcode { // idx ascends with adcode
			t.Fatalf("shared vertex %v of %v: Locate = %s, %v; want lowest %s", v, idx, st.Adcode, ok, all[idx[0]].Adcode)
		}
		for _, i := range idx {
			if !s.Region(all[i].Adcode).Contains(v.lon, v.lat) {
				t.Fatalf("%s does not contain its own vertex %v", all[i].NameZH, v)
			}
		}
	}
	if shared < 50 {
		t.Fatalf("only %d shared vertices; the streets should share boundaries", shared)
	}
	// Midpoint of an edge shared by two streets.
	mids := 0
	for i, st := range all {
		for _, p := range s.Region(st.Adcode).polys {
			r := p.rings[0]
			for k := 1; k < len(r); k++ {
				a, b := r[k-1], r[k]
				if len(owners[a]) < 2 || len(owners[b]) < 2 || owners[a][0] != i {
					continue
				}
				m := point{(a.lon + b.lon) / 2, (a.lat + b.lat) / 2}
				var in []string
				for _, o := range all {
					if s.Region(o.Adcode).Contains(m.lon, m.lat) {
						in = append(in, o.Adcode)
					}
				}
				if len(in) < 2 {
					continue // edge not shared (only its endpoints are)
				}
				mids++
				if got, _ := s.Locate(m.lon, m.lat); got.Adcode != in[0] {
					t.Fatalf("edge midpoint %v in %v: Locate = %s", m, in, got.Adcode)
				}
			}
		}
	}
	if mids < 10 {
		t.Fatalf("only %d shared edge midpoints", mids)
	}
}

// Streets tile the district: a grid over the outline lands in exactly one
// street almost everywhere (the two sources differ by metres at the edge).
func TestStreetsTileDistrict(t *testing.T) {
	s := streets(t)
	d := s.District()
	in, located, multi := 0, 0, 0
	for lon := d.box.minLon; lon <= d.box.maxLon; lon += 0.0005 {
		for lat := d.box.minLat; lat <= d.box.maxLat; lat += 0.0005 {
			if !d.Contains(lon, lat) {
				continue
			}
			in++
			n := 0
			for _, st := range s.All() {
				if s.Region(st.Adcode).Contains(lon, lat) {
					n++
				}
			}
			if n > 0 {
				located++
			}
			if n > 1 {
				multi++
			}
		}
	}
	if in < 1000 || float64(located) < 0.99*float64(in) || multi > in/200 {
		t.Errorf("grid: %d in district, %d located, %d in several streets", in, located, multi)
	}
}

func TestHolesAndMultiPolygon(t *testing.T) {
	const doc = `{"type":"FeatureCollection","features":[
	 {"type":"Feature","properties":{"adcode":"900000002","name":"甲"},"geometry":{"type":"MultiPolygon","coordinates":[
	   [[[0,0],[10,0],[10,10],[0,10],[0,0]],[[2,2],[8,2],[8,8],[2,8],[2,2]]],
	   [[[20,0],[30,0],[30,10],[20,10],[20,0]]]]}},
	 {"type":"Feature","properties":{"adcode":900000001,"name":"乙"},"geometry":{"type":"Polygon","coordinates":[
	   [[2,2],[8,2],[8,8],[2,8],[2,2]]]}}]}`
	s, err := parseStreets([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lon, lat float64
		want     string
	}{
		{1, 1, "900000002"}, {5, 5, "900000001"}, {25, 5, "900000002"}, {15, 5, ""},
		{2, 5, "900000001"}, // on the hole's edge: both, lowest adcode
		{10, 5, "900000002"}, {0, 0, "900000002"}, {30, 10, "900000002"}, {30.001, 10, ""},
	}
	for _, tt := range tests {
		st, ok := s.Locate(tt.lon, tt.lat)
		if st.Adcode != tt.want || ok != (tt.want != "") {
			t.Errorf("Locate(%v, %v) = %q, %v; want %q", tt.lon, tt.lat, st.Adcode, ok, tt.want)
		}
	}
	for _, bad := range []string{
		`{"features":[{"properties":{"adcode":"1","name":"a"},"geometry":{"type":"Point","coordinates":[1,2]}}]}`,
		`{"features":[{"properties":{"adcode":"1","name":"a"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[0,0]]]}}]}`,
		`{"features":[{"properties":{"name":"a"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}`,
		`{"features":[{"properties":{"adcode":"1","name":"a"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},` +
			`{"properties":{"adcode":"1","name":"b"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}`,
		`{"features":[{"properties":{"adcode":"1","name":"a"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,999]]]}}]}`,
		`not json`,
	} {
		if _, err := parseStreets([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func BenchmarkLocate(b *testing.B) {
	// go test -run '^$' -bench Locate ./internal/geo/
	s := streets(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Locate(116.35+float64(i%100)*0.0005, 39.87+float64(i%137)*0.0006)
	}
}
