package geo

import (
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
)

//go:embed data/*.geojson
var dataFS embed.FS

// Street is one of the district's streets (街道).
type Street struct {
	Adcode  string  // 9-digit administrative code, e.g. "110102009"
	NameZH  string  // e.g. "展览路街道"
	NameEN  string  // pinyin rendering, e.g. "Zhanlanlu Subdistrict"; "" if unknown
	AreaKM2 float64 // area on the WGS-84 ellipsoid (local equal-area projection)
}

// pinyin names of the 15 streets; the GeoJSON has Chinese names only.
var streetEN = map[string]string{
	"西长安街街道": "Xichang'anjie Subdistrict",
	"新街口街道":  "Xinjiekou Subdistrict",
	"月坛街道":   "Yuetan Subdistrict",
	"展览路街道":  "Zhanlanlu Subdistrict",
	"德胜街道":   "Desheng Subdistrict",
	"金融街街道":  "Jinrongjie Subdistrict",
	"什刹海街道":  "Shichahai Subdistrict",
	"大栅栏街道":  "Dashilan Subdistrict",
	"天桥街道":   "Tianqiao Subdistrict",
	"椿树街道":   "Chunshu Subdistrict",
	"陶然亭街道":  "Taoranting Subdistrict",
	"广安门内街道": "Guang'anmennei Subdistrict",
	"牛街街道":   "Niujie Subdistrict",
	"白纸坊街道":  "Baizhifang Subdistrict",
	"广安门外街道": "Guang'anmenwai Subdistrict",
}

// boundaryEps: a point closer than this (degrees, about 0.1 mm) to a ring's
// edge is on the boundary and counts as inside.
const boundaryEps = 1e-9

type point struct{ lon, lat float64 }

type bbox struct{ minLon, minLat, maxLon, maxLat float64 }

func (b bbox) contains(lon, lat float64) bool {
	return lon >= b.minLon-boundaryEps && lon <= b.maxLon+boundaryEps &&
		lat >= b.minLat-boundaryEps && lat <= b.maxLat+boundaryEps
}

func (b *bbox) extend(o bbox) {
	b.minLon, b.minLat = math.Min(b.minLon, o.minLon), math.Min(b.minLat, o.minLat)
	b.maxLon, b.maxLat = math.Max(b.maxLon, o.maxLon), math.Max(b.maxLat, o.maxLat)
}

func emptyBox() bbox { return bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)} }

// polygon is an outer ring followed by its holes; rings are closed.
type polygon struct {
	rings [][]point
	box   bbox
}

// Region is an area made of one or more polygons with holes.
type Region struct {
	polys []polygon
	box   bbox
}

// Contains reports whether a WGS-84 point lies in the region or on its
// boundary. Non-finite input is never contained.
func (r *Region) Contains(lon, lat float64) bool {
	if r == nil || !finite(lon, lat) || !r.box.contains(lon, lat) {
		return false
	}
	for i := range r.polys {
		p := &r.polys[i]
		if !p.box.contains(lon, lat) {
			continue
		}
		inside := false
		for _, ring := range p.rings {
			in, on := ringTest(ring, lon, lat)
			if on {
				return true
			}
			if in {
				inside = !inside // even-odd: inside the outer ring and not in a hole
			}
		}
		if inside {
			return true
		}
	}
	return false
}

// ringTest: even-odd crossing test (half-open rule) and an on-edge test.
func ringTest(ring []point, lon, lat float64) (in, on bool) {
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		a, b := ring[j], ring[i]
		if onSegment(a, b, lon, lat) {
			return false, true
		}
		if (a.lat > lat) != (b.lat > lat) {
			x := a.lon + (lat-a.lat)*(b.lon-a.lon)/(b.lat-a.lat)
			if lon < x {
				in = !in
			}
		}
	}
	return in, false
}

func onSegment(a, b point, lon, lat float64) bool {
	if lon < math.Min(a.lon, b.lon)-boundaryEps || lon > math.Max(a.lon, b.lon)+boundaryEps ||
		lat < math.Min(a.lat, b.lat)-boundaryEps || lat > math.Max(a.lat, b.lat)+boundaryEps {
		return false
	}
	dx, dy := b.lon-a.lon, b.lat-a.lat
	l := math.Hypot(dx, dy)
	if l == 0 {
		return math.Hypot(lon-a.lon, lat-a.lat) <= boundaryEps
	}
	cross := (lon-a.lon)*dy - (lat-a.lat)*dx
	return math.Abs(cross)/l <= boundaryEps
}

// AreaKM2 is the region's area in km², outer rings minus holes, from a
// sinusoidal (equal-area) projection about the region's centre with the
// ellipsoid's local mean radius — accurate to far better than 0.1 % at the
// size of a district.
func (r *Region) AreaKM2() float64 {
	lat0 := (r.box.minLat + r.box.maxLat) / 2 * math.Pi / 180
	lon0 := (r.box.minLon + r.box.maxLon) / 2
	e2 := wgs84.f * (2 - wgs84.f)
	s := math.Sin(lat0)
	w := 1 - e2*s*s
	m := wgs84.a * (1 - e2) / math.Pow(w, 1.5) // meridian radius
	nr := wgs84.a / math.Sqrt(w)               // prime-vertical radius
	R := math.Sqrt(m * nr)
	total := 0.0
	for _, p := range r.polys {
		for k, ring := range p.rings {
			a := 0.0
			for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
				xj := R * (ring[j].lon - lon0) * math.Pi / 180 * math.Cos(ring[j].lat*math.Pi/180)
				yj := R * ring[j].lat * math.Pi / 180
				xi := R * (ring[i].lon - lon0) * math.Pi / 180 * math.Cos(ring[i].lat*math.Pi/180)
				yi := R * ring[i].lat * math.Pi / 180
				a += xj*yi - xi*yj
			}
			a = math.Abs(a) / 2
			if k == 0 {
				total += a
			} else {
				total -= a
			}
		}
	}
	return total / 1e6
}

// Streets is the district's street map, immutable and safe for concurrent use.
type Streets struct {
	streets  []Street // sorted by adcode
	regions  []*Region
	box      bbox
	district *Region
}

// LoadStreets parses the embedded street polygons and district outline.
func LoadStreets() (*Streets, error) {
	data, err := dataFS.ReadFile("data/xicheng_streets.geojson")
	if err != nil {
		return nil, err
	}
	s, err := parseStreets(data)
	if err != nil {
		return nil, fmt.Errorf("geo: xicheng_streets.geojson: %w", err)
	}
	data, err = dataFS.ReadFile("data/xicheng_district_wgs84.geojson")
	if err != nil {
		return nil, err
	}
	fc, err := parseFeatures(data)
	if err != nil || len(fc) != 1 {
		return nil, fmt.Errorf("geo: xicheng_district_wgs84.geojson: want one feature: %v", err)
	}
	s.district = fc[0].region
	return s, nil
}

type feature struct {
	props  map[string]any
	region *Region
}

func parseFeatures(data []byte) ([]feature, error) {
	var fc struct {
		Features []struct {
			Properties map[string]any `json:"properties"`
			Geometry   struct {
				Type        string          `json:"type"`
				Coordinates json.RawMessage `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(data, &fc); err != nil {
		return nil, err
	}
	var out []feature
	for i, f := range fc.Features {
		var polys [][][][2]float64
		switch f.Geometry.Type {
		case "Polygon":
			var p [][][2]float64
			if err := json.Unmarshal(f.Geometry.Coordinates, &p); err != nil {
				return nil, fmt.Errorf("feature %d: %w", i, err)
			}
			polys = [][][][2]float64{p}
		case "MultiPolygon":
			if err := json.Unmarshal(f.Geometry.Coordinates, &polys); err != nil {
				return nil, fmt.Errorf("feature %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("feature %d: geometry %q is not a (Multi)Polygon", i, f.Geometry.Type)
		}
		r := &Region{box: emptyBox()}
		for _, p := range polys {
			poly := polygon{box: emptyBox()}
			for _, ring := range p {
				if len(ring) < 4 {
					return nil, fmt.Errorf("feature %d: ring with %d points", i, len(ring))
				}
				pts := make([]point, 0, len(ring))
				for _, c := range ring {
					if !finite(c[0], c[1]) || math.Abs(c[0]) > 180 || math.Abs(c[1]) > 90 {
						return nil, fmt.Errorf("feature %d: bad coordinate %v", i, c)
					}
					pts = append(pts, point{c[0], c[1]})
					poly.box.extend(bbox{c[0], c[1], c[0], c[1]})
				}
				poly.rings = append(poly.rings, pts)
			}
			if len(poly.rings) == 0 {
				continue
			}
			r.polys = append(r.polys, poly)
			r.box.extend(poly.box)
		}
		if len(r.polys) == 0 {
			return nil, fmt.Errorf("feature %d: empty geometry", i)
		}
		out = append(out, feature{props: f.Properties, region: r})
	}
	return out, nil
}

func parseStreets(data []byte) (*Streets, error) {
	fs, err := parseFeatures(data)
	if err != nil {
		return nil, err
	}
	type entry struct {
		st Street
		r  *Region
	}
	var es []entry
	seen := map[string]bool{}
	for i, f := range fs {
		var code string
		switch v := f.props["adcode"].(type) {
		case string:
			code = v
		case float64:
			code = strconv.FormatFloat(v, 'f', -1, 64)
		}
		name, _ := f.props["name"].(string)
		if code == "" || name == "" {
			return nil, fmt.Errorf("feature %d: needs adcode and name", i)
		}
		if seen[code] {
			return nil, fmt.Errorf("feature %d: adcode %s appears twice", i, code)
		}
		seen[code] = true
		es = append(es, entry{Street{Adcode: code, NameZH: name, NameEN: streetEN[name], AreaKM2: f.region.AreaKM2()}, f.region})
	}
	// Adcodes have equal length, so string order is numeric order.
	sort.Slice(es, func(i, j int) bool { return es[i].st.Adcode < es[j].st.Adcode })
	s := &Streets{box: emptyBox()}
	for _, e := range es {
		s.streets = append(s.streets, e.st)
		s.regions = append(s.regions, e.r)
		s.box.extend(e.r.box)
	}
	return s, nil
}

// Locate returns the street containing a WGS-84 point. A point on a boundary
// shared by several streets goes to the lowest adcode. Points outside every
// street, and NaN or infinite input, are not found.
func (s *Streets) Locate(lon, lat float64) (Street, bool) {
	if s == nil || !finite(lon, lat) || !s.box.contains(lon, lat) {
		return Street{}, false
	}
	for i, r := range s.regions { // ascending adcode: the first hit wins
		if r.Contains(lon, lat) {
			return s.streets[i], true
		}
	}
	return Street{}, false
}

// All returns the streets in ascending adcode order.
func (s *Streets) All() []Street { return append([]Street(nil), s.streets...) }

// Region returns a street's polygons by adcode, or nil.
func (s *Streets) Region(adcode string) *Region {
	for i, st := range s.streets {
		if st.Adcode == adcode {
			return s.regions[i]
		}
	}
	return nil
}

// District returns the outline of Xicheng District (adcode 110102) in
// WGS-84, converted from the GCJ-02 DataV outline (about 1 m error; it is a
// different, coarser source than the street polygons, so the two disagree by
// a few metres along the edge).
func (s *Streets) District() *Region { return s.district }
