package geo

import (
	"math"
	"testing"
)

func FuzzLocate(f *testing.F) {
	s := streets(f)
	for _, p := range [][2]float64{
		{116.3469, 39.9435}, {0, 0}, {math.NaN(), 1}, {math.Inf(1), math.Inf(-1)},
		{1e308, -1e308}, {math.SmallestNonzeroFloat64, 5e-324}, {116.3672919, 39.9210693},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, lon, lat float64) {
		st, ok := s.Locate(lon, lat)
		if ok && (!s.Region(st.Adcode).Contains(lon, lat) || !finite(lon, lat)) {
			t.Fatalf("Locate(%v, %v) = %s but its region does not contain the point", lon, lat, st.Adcode)
		}
		s.District().Contains(lon, lat)
		wl, wa := GCJ02ToWGS84(lon, lat)
		gl, ga := WGS84ToGCJ02(lon, lat)
		if finite(lon, lat) && (!finite(wl, wa) || !finite(gl, ga)) {
			t.Fatalf("GCJ conversion of finite %v,%v gave %v,%v / %v,%v", lon, lat, wl, wa, gl, ga)
		}
		UTMToWGS84(17, true, lon, lat)
		UTMToWGS84(50, false, lat, lon)
		WGS84ToUTM(50, true, lon, lat)
	})
}
