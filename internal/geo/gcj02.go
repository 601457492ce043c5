package geo

import "math"

// Krasovsky 1940 ellipsoid, as used by the published GCJ-02 transform.
const (
	gcjA  = 6378245.0
	gcjEE = 0.00669342162296594323
)

// outOfChina reports whether a point lies outside the rough bounding box in
// which GCJ-02 differs from WGS-84.
func outOfChina(lon, lat float64) bool {
	return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271)
}

// gcjOffset returns the GCJ-02 offset (degrees) at a WGS-84 point.
func gcjOffset(lon, lat float64) (dLon, dLat float64) {
	x, y := lon-105.0, lat-35.0
	sx := math.Sqrt(math.Abs(x))
	common := (20*math.Sin(6*x*math.Pi) + 20*math.Sin(2*x*math.Pi)) * 2 / 3

	tLat := -100 + 2*x + 3*y + 0.2*y*y + 0.1*x*y + 0.2*sx + common +
		(20*math.Sin(y*math.Pi)+40*math.Sin(y/3*math.Pi))*2/3 +
		(160*math.Sin(y/12*math.Pi)+320*math.Sin(y*math.Pi/30))*2/3
	tLon := 300 + x + 2*y + 0.1*x*x + 0.1*x*y + 0.1*sx + common +
		(20*math.Sin(x*math.Pi)+40*math.Sin(x/3*math.Pi))*2/3 +
		(150*math.Sin(x/12*math.Pi)+300*math.Sin(x/30*math.Pi))*2/3

	rad := lat / 180 * math.Pi
	s := math.Sin(rad)
	magic := 1 - gcjEE*s*s
	sq := math.Sqrt(magic)
	dLat = tLat * 180 / ((gcjA * (1 - gcjEE)) / (magic * sq) * math.Pi)
	dLon = tLon * 180 / (gcjA / sq * math.Cos(rad) * math.Pi)
	return dLon, dLat
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// WGS84ToGCJ02 converts a WGS-84 point to GCJ-02. Points outside China, and
// non-finite input, are returned unchanged.
func WGS84ToGCJ02(lon, lat float64) (float64, float64) {
	if !finite(lon, lat) || outOfChina(lon, lat) {
		return lon, lat
	}
	dLon, dLat := gcjOffset(lon, lat)
	return lon + dLon, lat + dLat
}

// GCJ02ToWGS84 converts a GCJ-02 point to WGS-84 by inverting WGS84ToGCJ02
// iteratively (fixed-point on the offset; converges to < 1e-9° in a few
// steps). Points outside China, and non-finite input, are returned unchanged.
func GCJ02ToWGS84(lon, lat float64) (float64, float64) {
	if !finite(lon, lat) || outOfChina(lon, lat) {
		return lon, lat
	}
	wLon, wLat := lon, lat
	for i := 0; i < 30; i++ {
		gLon, gLat := WGS84ToGCJ02(wLon, wLat)
		eLon, eLat := lon-gLon, lat-gLat
		wLon += eLon
		wLat += eLat
		if math.Abs(eLon) < 1e-10 && math.Abs(eLat) < 1e-10 {
			break
		}
	}
	return wLon, wLat
}
