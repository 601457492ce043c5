package sim

import (
	"fmt"
	"math"
	"sort"

	"citybrain/internal/geo"
)

// Street is one street (街道) of the simulated area.
type Street struct {
	Code, NameZH, NameEN string
	AreaKM2              float64
	Population           int
	District             int
}

// Cell is one grid cell.
type Cell struct {
	ID         string
	Row, Col   int
	Lon, Lat   float64
	Street     string
	Community  string
	Inspector  string
	AreaM2     float64
	residents  float64
	workers    float64
	venueShare []venueShare // venues covering the cell
}

// area is the simulated geography: the 15 real streets of Xicheng at
// scale 1, a synthetic Beijing-sized square of districts above it.
type area struct {
	streets                        []Street
	locate                         func(lon, lat float64) (string, bool)
	minLon, minLat, maxLon, maxLat float64
	real                           bool
}

const (
	metresPerDegLat = 111320.0
	refLat          = 39.91
)

func metresPerDegLon(lat float64) float64 { return metresPerDegLat * math.Cos(lat*math.Pi/180) }

// newArea builds the geography for a scale.
func newArea(scale int) (*area, error) {
	if scale <= 1 {
		st, err := geo.LoadStreets()
		if err != nil {
			return nil, fmt.Errorf("load Xicheng streets: %w", err)
		}
		a := &area{real: true, minLon: 116.28, minLat: 39.85, maxLon: 116.43, maxLat: 39.98}
		district := st.District()
		for _, s := range st.All() {
			a.streets = append(a.streets, Street{Code: s.Adcode, NameZH: s.NameZH, NameEN: s.NameEN, AreaKM2: s.AreaKM2})
		}
		sort.Slice(a.streets, func(i, j int) bool { return a.streets[i].Code < a.streets[j].Code })
		a.locate = func(lon, lat float64) (string, bool) {
			if district != nil && !district.Contains(lon, lat) {
				return "", false
			}
			s, ok := st.Locate(lon, lat)
			return s.Adcode, ok
		}
		return a, nil
	}
	// A square of scale × 164.1 km² (scale 100 ≈ Beijing's 16,410 km²)
	// centred on Xicheng, cut into districts (4×4 at scale 100) of 15
	// streets each (3 × 5 rectangles).
	side := math.Sqrt(float64(scale)*164.1) * 1000
	nd := 1
	for nd*nd*100 < 16*scale {
		nd++
	}
	if scale >= 100 {
		nd = 4
	}
	cLon, cLat := 116.366, 39.912
	dLat := side / metresPerDegLat
	dLon := side / metresPerDegLon(cLat)
	a := &area{minLon: cLon - dLon/2, minLat: cLat - dLat/2, maxLon: cLon + dLon/2, maxLat: cLat + dLat/2}
	streetKM2 := side * side / 1e6 / float64(nd*nd*15)
	for d := 0; d < nd*nd; d++ {
		for s := 0; s < 15; s++ {
			a.streets = append(a.streets, Street{
				Code:     fmt.Sprintf("11%02d%02d%03d", 1+d/100, 1+d%100, s+1),
				NameZH:   fmt.Sprintf("模拟%d区第%d街道", d+1, s+1),
				NameEN:   fmt.Sprintf("District %d Street %d (simulated)", d+1, s+1),
				AreaKM2:  streetKM2,
				District: d,
			})
		}
	}
	a.locate = func(lon, lat float64) (string, bool) {
		if lon < a.minLon || lon >= a.maxLon || lat < a.minLat || lat >= a.maxLat {
			return "", false
		}
		fx := (lon - a.minLon) / (a.maxLon - a.minLon) * float64(nd)
		fy := (lat - a.minLat) / (a.maxLat - a.minLat) * float64(nd)
		dx, dy := int(fx), int(fy)
		sx := int((fx - float64(dx)) * 3)
		sy := int((fy - float64(dy)) * 5)
		return a.streets[(dy*nd+dx)*15+sy*3+sx].Code, true
	}
	return a, nil
}

// grid lays cells of size metres over the area, keeping those whose centre
// lies in a street (the grid clipped to the outline).
func (a *area) grid(metres float64) []Cell {
	dLat := metres / metresPerDegLat
	midLat := (a.minLat + a.maxLat) / 2
	dLon := metres / metresPerDegLon(midLat)
	rows := int(math.Ceil((a.maxLat - a.minLat) / dLat))
	cols := int(math.Ceil((a.maxLon - a.minLon) / dLon))
	var cells []Cell
	for r := 0; r < rows; r++ {
		lat := a.minLat + (float64(r)+0.5)*dLat
		for c := 0; c < cols; c++ {
			lon := a.minLon + (float64(c)+0.5)*dLon
			code, ok := a.locate(lon, lat)
			if !ok {
				continue
			}
			cells = append(cells, Cell{
				ID: fmt.Sprintf("G%04d%04d", r, c), Row: r, Col: c,
				Lon: round6(lon), Lat: round6(lat), Street: code, AreaM2: metres * metres,
			})
		}
	}
	return cells
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// distM is the distance in metres between two nearby points.
func distM(lon1, lat1, lon2, lat2 float64) float64 {
	dx := (lon1 - lon2) * metresPerDegLon((lat1+lat2)/2)
	dy := (lat1 - lat2) * metresPerDegLat
	return math.Hypot(dx, dy)
}
