package geo

import "math"

// ellipsoid is a reference ellipsoid by semi-major axis and flattening.
type ellipsoid struct{ a, f float64 }

var wgs84 = ellipsoid{a: 6378137.0, f: 1 / 298.257223563}

const (
	utmK0        = 0.9996
	utmFalseE    = 500000.0
	utmFalseNS   = 10000000.0
	utmZoneWidth = 6.0
)

// tm holds the Krüger-series constants of one ellipsoid.
type tm struct {
	A           float64 // rectifying radius
	n           float64 // third flattening
	alpha, beta [4]float64
	delta       [4]float64
	e           float64 // first eccentricity
}

func newTM(el ellipsoid) tm {
	n := el.f / (2 - el.f)
	n2, n3, n4 := n*n, n*n*n, n*n*n*n
	return tm{
		A: el.a / (1 + n) * (1 + n2/4 + n4/64),
		n: n,
		e: math.Sqrt(el.f * (2 - el.f)),
		alpha: [4]float64{
			n/2 - 2*n2/3 + 5*n3/16 + 41*n4/180,
			13*n2/48 - 3*n3/5 + 557*n4/1440,
			61*n3/240 - 103*n4/140,
			49561 * n4 / 161280,
		},
		beta: [4]float64{
			n/2 - 2*n2/3 + 37*n3/96 - n4/360,
			n2/48 + n3/15 - 437*n4/1440,
			17*n3/480 - 37*n4/840,
			4397 * n4 / 161280,
		},
		delta: [4]float64{
			2*n - 2*n2/3 - 2*n3 + 116*n4/45,
			7*n2/3 - 8*n3/5 - 227*n4/45,
			56*n3/15 - 136*n4/35,
			4279 * n4 / 630,
		},
	}
}

var tmWGS84 = newTM(wgs84)

// forward projects (φ, λ-λ0) in radians to transverse-Mercator x (east) and
// y (north) in metres, scale k0, no false origin.
func (t tm) forward(phi, dlam, k0 float64) (x, y float64) {
	s := math.Sin(phi)
	tau := math.Tan(phi)
	// conformal latitude via τ' (Karney 2011, eq. 7–9): robust near the poles.
	sigma := math.Sinh(t.e * math.Atanh(t.e*tau/math.Sqrt(1+tau*tau)))
	tauP := tau*math.Sqrt(1+sigma*sigma) - sigma*math.Sqrt(1+tau*tau)
	if math.Abs(s) == 1 {
		tauP = tau
	}
	xiP := math.Atan2(tauP, math.Cos(dlam))
	etaP := math.Asinh(math.Sin(dlam) / math.Sqrt(tauP*tauP+math.Cos(dlam)*math.Cos(dlam)))
	xi, eta := xiP, etaP
	for j := 1; j <= 4; j++ {
		a := t.alpha[j-1]
		xi += a * math.Sin(2*float64(j)*xiP) * math.Cosh(2*float64(j)*etaP)
		eta += a * math.Cos(2*float64(j)*xiP) * math.Sinh(2*float64(j)*etaP)
	}
	return k0 * t.A * eta, k0 * t.A * xi
}

// inverse is the inverse of forward: x, y in metres → φ, λ-λ0 in radians.
func (t tm) inverse(x, y, k0 float64) (phi, dlam float64) {
	xi := y / (k0 * t.A)
	eta := x / (k0 * t.A)
	xiP, etaP := xi, eta
	for j := 1; j <= 4; j++ {
		b := t.beta[j-1]
		xiP -= b * math.Sin(2*float64(j)*xi) * math.Cosh(2*float64(j)*eta)
		etaP -= b * math.Cos(2*float64(j)*xi) * math.Sinh(2*float64(j)*eta)
	}
	chi := math.Asin(math.Sin(xiP) / math.Cosh(etaP)) // conformal latitude
	phi = chi
	for j := 1; j <= 4; j++ {
		phi += t.delta[j-1] * math.Sin(2*float64(j)*chi)
	}
	dlam = math.Atan2(math.Sinh(etaP), math.Cos(xiP))
	return phi, dlam
}

// centralMeridian of a UTM zone (1…60), degrees.
func centralMeridian(zone int) float64 { return float64(zone)*utmZoneWidth - 183 }

// UTMToWGS84 converts UTM easting/northing (metres, with the 500 km false
// easting and, in the south, the 10,000 km false northing) in the given
// zone (1…60) and hemisphere to WGS-84 longitude and latitude in degrees.
// Invalid zones or non-finite input give NaN.
func UTMToWGS84(zone int, north bool, easting, northing float64) (lon, lat float64) {
	if zone < 1 || zone > 60 || !finite(easting, northing) {
		return math.NaN(), math.NaN()
	}
	y := northing
	if !north {
		y -= utmFalseNS
	}
	phi, dlam := tmWGS84.inverse(easting-utmFalseE, y, utmK0)
	lon = centralMeridian(zone) + dlam*180/math.Pi
	lat = phi * 180 / math.Pi
	if lon > 180 {
		lon -= 360
	} else if lon < -180 {
		lon += 360
	}
	return lon, lat
}

// WGS84ToUTM projects a WGS-84 point into the given UTM zone and
// hemisphere; it is the inverse of UTMToWGS84 (used to check it and to
// produce test fixtures).
func WGS84ToUTM(zone int, north bool, lon, lat float64) (easting, northing float64) {
	if zone < 1 || zone > 60 || !finite(lon, lat) {
		return math.NaN(), math.NaN()
	}
	dlam := math.Remainder(lon-centralMeridian(zone), 360) * math.Pi / 180
	x, y := tmWGS84.forward(lat*math.Pi/180, dlam, utmK0)
	easting = x + utmFalseE
	northing = y
	if !north {
		northing += utmFalseNS
	}
	return easting, northing
}
