package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"citybrain/internal/geo"
)

// Venue is a place watched for large crowds.
type Venue struct {
	ID, NameZH, NameEN, Kind string
	Capacity                 int
	AreaM2                   float64
	Lon, Lat                 float64
	Street                   string
	Cells                    []int // indexes into World.Cells
	Outdoor                  bool
}

// Sensor is a water-network or waterlogging sensor.
type Sensor struct {
	ID, Kind, Unit, SiteKind   string
	Lon, Lat                   float64
	Street                     string
	Base, NormalMin, NormalMax float64
	Point                      string // waterlogging point id
}

// Segment is a road segment with a speed detector.
type Segment struct {
	ID, Road string
	Street   string
	FreeFlow float64
	Lanes    int
}

// Unit is a production/business unit (enterprise).
type Unit struct {
	ID        string
	Lon, Lat  float64
	Street    string
	Community string
	Cell      int
	Industry  int
	Employees int
	Risk      bool
	Insured   bool
	Inspector string
}

// World is the generated district: typed entities the feeds need, and every
// reference table as rows ready to write.
type World struct {
	Cfg          Config
	Epoch        time.Time // start of the backfilled history
	Streets      []Street
	Cells        []Cell
	Venues       []Venue
	Sensors      []Sensor
	Segments     []Segment
	Units        []Unit
	Tables       map[string]*Table
	area         *area
	cellsOf      map[string][]int // street → cells
	communities  []community
	inspectorsOf map[string][]string
}

type community struct {
	code, street string
	cells        []int
	population   int
	lon, lat     float64
}

// Table is one reference table: columns named like the canonical schema's
// fields, rows as text.
type Table struct {
	Name string
	Cols []string
	Rows [][]string
}

func (t *Table) add(vals ...any) {
	row := make([]string, len(vals))
	for i, v := range vals {
		row[i] = cell(v)
	}
	t.Rows = append(t.Rows, row)
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsNaN(x) {
			return ""
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.Format(time.RFC3339)
	case day:
		if time.Time(x).IsZero() {
			return ""
		}
		return time.Time(x).Format("2006-01-02")
	}
	return fmt.Sprint(v)
}

// day is a date written as YYYY-MM-DD.
type day time.Time

// Shanghai is the district's time zone (fixed UTC+8, no DST since 1991).
var Shanghai = time.FixedZone("CST", 8*3600)

type industry struct {
	zh, en string
	weight float64
	risky  float64 // relative chance of holding risk sources
	staff  float64 // median employees
	kinds  []string
}

var industries = []industry{
	{"餐饮", "catering", 22, 1.2, 12, []string{"gas", "electrical", "fire_load"}},
	{"零售", "retail", 18, 0.6, 6, []string{"electrical", "fire_load"}},
	{"住宿", "hotels", 5, 1.5, 40, []string{"gas", "electrical", "crowded_place", "special_equipment"}},
	{"商务楼宇", "office buildings", 10, 1.3, 200, []string{"electrical", "special_equipment", "crowded_place"}},
	{"金融", "finance", 8, 0.5, 120, []string{"electrical"}},
	{"医疗卫生", "health care", 3, 2.0, 150, []string{"hazardous_chemicals", "gas", "electrical", "crowded_place"}},
	{"教育", "education", 3, 1.5, 90, []string{"crowded_place", "electrical", "hazardous_chemicals"}},
	{"建筑施工", "construction", 4, 3.0, 60, []string{"lifting", "confined_space", "electrical", "fall_from_height"}},
	{"仓储物流", "warehousing and logistics", 2, 2.0, 30, []string{"fire_load", "special_equipment"}},
	{"加油加气站", "fuel stations", 0.3, 6.0, 15, []string{"hazardous_chemicals", "gas"}},
	{"危险化学品经营", "hazardous-chemicals trade", 0.4, 6.0, 10, []string{"hazardous_chemicals", "confined_space"}},
	{"文化娱乐", "culture and entertainment", 5, 1.6, 25, []string{"crowded_place", "electrical", "fire_load"}},
	{"商场超市", "shopping malls", 2, 2.2, 150, []string{"crowded_place", "electrical", "special_equipment", "fire_load"}},
	{"物业管理", "property management", 6, 1.8, 40, []string{"confined_space", "electrical", "special_equipment", "gas"}},
	{"机动车维修", "vehicle repair", 2, 2.5, 12, []string{"hazardous_chemicals", "electrical"}},
	{"印刷", "printing", 1, 2.5, 20, []string{"hazardous_chemicals", "fire_load"}},
	{"其他服务业", "other services", 8.3, 0.7, 10, []string{"electrical"}},
}

var riskKindZH = map[string]string{
	"gas": "燃气", "electrical": "电气线路", "fire_load": "可燃物集中", "crowded_place": "人员密集场所",
	"special_equipment": "特种设备（电梯、锅炉）", "hazardous_chemicals": "危险化学品", "lifting": "起重吊装",
	"confined_space": "有限空间", "fall_from_height": "高处作业",
}

// LEC value sets (GB/T 13861 practice; DESIGN.md) with the weights drawn.
var (
	LegalL = []float64{10, 6, 3, 1, 0.5, 0.2, 0.1}
	LegalE = []float64{10, 6, 3, 2, 1, 0.5}
	LegalC = []float64{100, 40, 15, 7, 3, 1}
	wL     = []float64{1, 4, 14, 30, 25, 16, 10}
	wE     = []float64{6, 24, 30, 20, 14, 6}
	wC     = []float64{1.5, 6, 20, 32, 28, 12.5}
)

// venueSpec is a real place; coordinates are approximate GCJ-02 (as map
// providers give them), converted to WGS-84.
type venueSpec struct {
	zh, en, kind string
	lon, lat     float64
	capacity     int
	area         float64
	outdoor      bool
}

var venueSpecs = []venueSpec{
	{"北京北站", "Beijing North Railway Station", "railway_station", 116.353063, 39.944876, 30000, 60000, false},
	{"西单商业区", "Xidan shopping district", "commercial_district", 116.373001, 39.909500, 80000, 220000, true},
	{"金融街", "Financial Street", "commercial_district", 116.359500, 39.916000, 60000, 250000, true},
	{"什刹海景区", "Shichahai scenic area", "scenic_area", 116.393280, 39.938920, 50000, 330000, true},
	{"北京动物园", "Beijing Zoo", "scenic_area", 116.339000, 39.942000, 60000, 500000, true},
	{"大栅栏商业街", "Dashilar shopping street", "commercial_district", 116.392500, 39.895500, 30000, 100000, true},
	{"陶然亭公园", "Taoranting Park", "park", 116.385000, 39.878500, 30000, 400000, true},
	{"月坛公园", "Yuetan Park", "park", 116.350500, 39.916000, 12000, 80000, true},
	{"北京展览馆", "Beijing Exhibition Center", "other", 116.345000, 39.942500, 20000, 60000, false},
	{"先农坛体育场", "Xiannongtan Stadium", "stadium", 116.396000, 39.880500, 30000, 45000, true},
	{"牛街", "Niujie", "commercial_district", 116.363280, 39.886770, 15000, 60000, true},
	{"北京大学人民医院", "Peking University People's Hospital", "hospital", 116.355500, 39.939500, 8000, 30000, false},
	{"宣武医院", "Xuanwu Hospital", "hospital", 116.368000, 39.892000, 8000, 30000, false},
	{"北京儿童医院", "Beijing Children's Hospital", "hospital", 116.353000, 39.906000, 10000, 30000, false},
	{"北京大学第一医院", "Peking University First Hospital", "hospital", 116.381000, 39.933000, 8000, 30000, false},
	{"北京市第四中学", "Beijing No. 4 High School", "school", 116.378000, 39.933000, 3000, 20000, false},
	{"北京师范大学附属实验中学", "Experimental High School attached to BNU", "school", 116.356000, 39.918000, 3000, 20000, false},
	{"北京市第八中学", "Beijing No. 8 High School", "school", 116.364000, 39.918000, 3000, 20000, false},
}

var specialHQs = []struct{ zh, en string }{
	{"防汛抗旱指挥部", "Flood control HQ"}, {"安全生产委员会", "Work safety committee"}, {"消防安全委员会", "Fire safety committee"},
	{"抗震救灾指挥部", "Earthquake relief HQ"}, {"突发公共卫生事件应急指挥部", "Public health emergency HQ"}, {"交通安全应急指挥部", "Traffic safety HQ"},
	{"大型活动安全指挥部", "Large events safety HQ"}, {"极端天气应急指挥部", "Extreme weather HQ"}, {"能源供应保障指挥部", "Energy supply HQ"},
	{"城市供水保障指挥部", "Water supply HQ"}, {"燃气安全指挥部", "Gas safety HQ"}, {"社会安全事件应急指挥部", "Public security HQ"},
}

var surnames = []rune("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段")
var givenChars = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌宇浩凯鹏飞鑫晨阳欣怡思佳雪梅")
var brandChars = []rune("华盛鼎泰恒通达瑞祥和信安永兴宏远德隆金源鑫嘉益福康宁博创新晟昌裕丰")

func personName(r *rand.Rand) string {
	n := string(surnames[r.IntN(len(surnames))]) + string(givenChars[r.IntN(len(givenChars))])
	if r.IntN(2) == 0 {
		n += string(givenChars[r.IntN(len(givenChars))])
	}
	return n
}

// creditCode is a unified social credit code (GB 32100-2015) with a valid
// check character.
func creditCode(r *rand.Rand, area string) string {
	const chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	w := []int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}
	b := []byte("91" + area)
	for len(b) < 17 {
		b = append(b, chars[r.IntN(len(chars))])
	}
	sum := 0
	for i, c := range b {
		for j := 0; j < len(chars); j++ {
			if chars[j] == c {
				sum += j * w[i]
			}
		}
	}
	return string(b) + string(chars[(31-sum%31)%31])
}

// NewWorld generates the world for cfg deterministically; epoch is the
// start of the backfilled history (reference data is "as of" it).
func NewWorld(cfg Config, epoch time.Time) (*World, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := newArea(cfg.Scale)
	if err != nil {
		return nil, err
	}
	w := &World{Cfg: cfg, Epoch: epoch.In(Shanghai), area: a, Tables: map[string]*Table{}, cellsOf: map[string][]int{}}
	w.Cells = a.grid(cfg.Counts.GridMetres)
	if len(w.Cells) == 0 {
		return nil, fmt.Errorf("sim: the grid has no cell inside the area (grid_metres %v)", cfg.Counts.GridMetres)
	}
	for i, c := range w.Cells {
		w.cellsOf[c.Street] = append(w.cellsOf[c.Street], i)
	}
	// Streets without a cell (possible with a coarse grid) are dropped.
	for _, s := range a.streets {
		if len(w.cellsOf[s.Code]) > 0 {
			w.Streets = append(w.Streets, s)
		}
	}
	w.genCommunities()
	w.genVenues()
	w.genUnits()
	w.genInspectors()
	w.genRisk()
	w.genFacilities()
	w.genWater()
	w.genSegments()
	w.genPlans()
	w.genPlansAsData()
	w.genStreetsTable()
	return w, nil
}

func (w *World) scaled(n int) int { return n * w.Cfg.Scale }

func (w *World) updated() time.Time { return w.Epoch }

// randomPoint draws a point inside the given cell and inside its street.
func (w *World) randomPoint(r *rand.Rand, ci int) (float64, float64) {
	c := w.Cells[ci]
	m := w.Cfg.Counts.GridMetres
	for try := 0; try < 20; try++ {
		lon := c.Lon + (r.Float64()-0.5)*m/metresPerDegLon(c.Lat)
		lat := c.Lat + (r.Float64()-0.5)*m/metresPerDegLat
		if s, ok := w.area.locate(lon, lat); ok && s == c.Street {
			return round6(lon), round6(lat)
		}
	}
	return c.Lon, c.Lat // the centre is inside the street by construction
}

func (w *World) genCommunities() {
	r := rng(w.Cfg.Seed, "communities")
	total := w.scaled(w.Cfg.Counts.Communities)
	nCells := len(w.Cells)
	// residents: population spread over streets by cell count with ±30 %
	pop := float64(w.scaled(w.Cfg.Counts.Population))
	t := &Table{Name: "communities", Cols: []string{"community_code", "updated_at", "name_zh", "name_en", "street_code", "area_km2", "population", "households", "center_longitude", "center_latitude"}}
	for si := range w.Streets {
		s := &w.Streets[si]
		cells := w.cellsOf[s.Code]
		k := int(math.Round(float64(total) * float64(len(cells)) / float64(nCells)))
		k = max(1, min(k, len(cells)))
		// Voronoi over k seed cells of the street
		seeds := r.Perm(len(cells))[:k]
		members := make([][]int, k)
		for _, ci := range cells {
			best, bd := 0, math.Inf(1)
			for j, sj := range seeds {
				sc := w.Cells[cells[sj]]
				if d := distM(w.Cells[ci].Lon, w.Cells[ci].Lat, sc.Lon, sc.Lat); d < bd {
					best, bd = j, d
				}
			}
			members[best] = append(members[best], ci)
		}
		streetPop := 0
		for j := 0; j < k; j++ {
			code := fmt.Sprintf("%s%03d", s.Code, j+1)
			cm := community{code: code, street: s.Code, cells: members[j]}
			density := 0.7 + 0.6*r.Float64()
			cm.population = int(pop / float64(nCells) * float64(len(members[j])) * density)
			streetPop += cm.population
			var slon, slat float64
			for _, ci := range members[j] {
				w.Cells[ci].Community = code
				w.Cells[ci].residents = float64(cm.population) / float64(len(members[j]))
				slon += w.Cells[ci].Lon
				slat += w.Cells[ci].Lat
			}
			cm.lon, cm.lat = round6(slon/float64(len(members[j]))), round6(slat/float64(len(members[j])))
			w.communities = append(w.communities, cm)
			short := []rune(s.NameZH)
			if len(short) > 2 && string(short[len(short)-2:]) == "街道" {
				short = short[:len(short)-2]
			}
			t.add(code, w.updated(), fmt.Sprintf("%s第%d社区", string(short), j+1), fmt.Sprintf("%s Community %d", s.NameEN, j+1),
				s.Code, float64(len(members[j]))*w.Cells[0].AreaM2/1e6, cm.population, cm.population*10/26, cm.lon, cm.lat)
		}
		s.Population = streetPop
	}
	w.Tables["communities"] = t
	g := &Table{Name: "grid_cells", Cols: []string{"grid_cell_id", "updated_at", "street_code", "community_code", "center_longitude", "center_latitude", "area_m2", "grid_inspector_id"}}
	w.Tables["grid_cells"] = g // rows once inspectors are known
}

func (w *World) genStreetsTable() {
	t := &Table{Name: "streets", Cols: []string{"adcode", "updated_at", "name_zh", "name_en", "area_km2", "population", "center_longitude", "center_latitude"}}
	for _, s := range w.Streets {
		var lon, lat float64
		cells := w.cellsOf[s.Code]
		for _, ci := range cells {
			lon += w.Cells[ci].Lon
			lat += w.Cells[ci].Lat
		}
		t.add(s.Code, w.updated(), s.NameZH, s.NameEN, math.Round(s.AreaKM2*1000)/1000, s.Population, round6(lon/float64(len(cells))), round6(lat/float64(len(cells))))
	}
	w.Tables["streets"] = t
	g := w.Tables["grid_cells"]
	for _, c := range w.Cells {
		g.add(c.ID, w.updated(), c.Street, c.Community, c.Lon, c.Lat, c.AreaM2, c.Inspector)
	}
}

// nearestCell is the cell whose centre is closest to a point.
func (w *World) nearestCell(lon, lat float64) int {
	best, bd := 0, math.Inf(1)
	for i, c := range w.Cells {
		if d := distM(lon, lat, c.Lon, c.Lat); d < bd {
			best, bd = i, d
		}
	}
	return best
}

func (w *World) genVenues() {
	t := &Table{Name: "venues", Cols: []string{"venue_id", "updated_at", "name_zh", "name_en", "kind", "capacity_people", "area_m2", "longitude", "latitude", "street_code", "responsible_unit"}}
	vc := &Table{Name: "venue_cells", Cols: []string{"venue_id", "grid_cell_id", "updated_at", "share"}}
	r := rng(w.Cfg.Seed, "venues")
	copies := w.Cfg.Scale
	for k := 0; k < copies; k++ {
		for i, s := range venueSpecs {
			lon, lat := geo.GCJ02ToWGS84(s.lon, s.lat)
			if k > 0 { // other districts at scale > 1: the same kinds of places elsewhere
				ci := r.IntN(len(w.Cells))
				lon, lat = w.Cells[ci].Lon, w.Cells[ci].Lat
			}
			ci := w.nearestCell(lon, lat)
			street, ok := w.area.locate(lon, lat)
			if !ok {
				lon, lat, street = w.Cells[ci].Lon, w.Cells[ci].Lat, w.Cells[ci].Street
			}
			v := Venue{ID: fmt.Sprintf("V%03d", k*len(venueSpecs)+i+1), NameZH: s.zh, NameEN: s.en, Kind: s.kind, Capacity: s.capacity,
				AreaM2: s.area, Lon: round6(lon), Lat: round6(lat), Street: street, Outdoor: s.outdoor}
			if k > 0 {
				v.NameZH += fmt.Sprintf("（模拟%d）", k+1)
				v.NameEN += fmt.Sprintf(" (simulated %d)", k+1)
			}
			radius := math.Sqrt(s.area / math.Pi)
			for cj, c := range w.Cells {
				if cj == ci || distM(v.Lon, v.Lat, c.Lon, c.Lat) <= radius {
					v.Cells = append(v.Cells, cj)
				}
			}
			vi := len(w.Venues)
			for _, cj := range v.Cells {
				w.Cells[cj].venueShare = append(w.Cells[cj].venueShare, venueShare{vi, 1 / float64(len(v.Cells))})
				vc.add(v.ID, w.Cells[cj].ID, w.updated(), 1.0)
			}
			w.Venues = append(w.Venues, v)
			t.add(v.ID, w.updated(), v.NameZH, v.NameEN, v.Kind, v.Capacity, v.AreaM2, v.Lon, v.Lat, v.Street, v.NameZH+"管理方")
		}
	}
	w.Tables["venues"] = t
	w.Tables["venue_cells"] = vc
}

// VenueByName finds a venue by its Chinese or English name.
func (w *World) VenueByName(name string) (Venue, bool) {
	for _, v := range w.Venues {
		if v.NameZH == name || v.NameEN == name {
			return v, true
		}
	}
	return Venue{}, false
}

func (w *World) genUnits() {
	r := rng(w.Cfg.Seed, "units")
	n := w.scaled(w.Cfg.Counts.Units)
	weights := make([]float64, len(industries))
	for i, ind := range industries {
		weights[i] = ind.weight
	}
	// commercial streets attract more units: weight cells by residents and venues
	cw := make([]float64, len(w.Cells))
	for i, c := range w.Cells {
		cw[i] = 1 + c.residents/2000
		if len(c.venueShare) > 0 {
			cw[i] += 3
		}
	}
	cum := make([]float64, len(cw))
	var s float64
	for i, v := range cw {
		s += v
		cum[i] = s
	}
	t := &Table{Name: "enterprises", Cols: []string{"id", "updated_at", "name", "credit_code", "industry", "address", "street_code", "community_code", "longitude", "latitude", "employees", "has_liability_insurance", "grid_inspector_id"}}
	w.Tables["enterprises"] = t
	for i := 0; i < n; i++ {
		x := r.Float64() * s
		ci := sort.SearchFloat64s(cum, x)
		if ci >= len(cum) {
			ci = len(cum) - 1
		}
		ind := pick(r, weights)
		lon, lat := w.randomPoint(r, ci)
		emp := int(math.Max(1, math.Round(industries[ind].staff*math.Exp(0.8*r.NormFloat64()))))
		w.Units = append(w.Units, Unit{ID: fmt.Sprintf("E%06d", i+1), Lon: lon, Lat: lat, Street: w.Cells[ci].Street,
			Community: w.Cells[ci].Community, Cell: ci, Industry: ind, Employees: emp})
		w.Cells[ci].workers += float64(emp)
	}
}

func (w *World) genInspectors() {
	r := rng(w.Cfg.Seed, "inspectors")
	n := w.scaled(w.Cfg.Counts.Inspectors)
	// per street: proportional to units and cells, at least one
	unitsOf := map[string][]int{}
	for i, u := range w.Units {
		unitsOf[u.Street] = append(unitsOf[u.Street], i)
	}
	shares := make([]float64, len(w.Streets))
	var tot float64
	for i, s := range w.Streets {
		shares[i] = float64(len(unitsOf[s.Code]))/float64(len(w.Units)) + float64(len(w.cellsOf[s.Code]))/float64(len(w.Cells))
		tot += shares[i]
	}
	alloc := make([]int, len(w.Streets))
	given := 0
	for i := range w.Streets {
		alloc[i] = max(1, int(float64(n)*shares[i]/tot))
		given += alloc[i]
	}
	for i := 0; given < n; i = (i + 1) % len(alloc) {
		alloc[i]++
		given++
	}
	for i := len(alloc) - 1; given > n && i >= 0; i-- {
		for alloc[i] > 1 && given > n {
			alloc[i]--
			given--
		}
	}
	t := &Table{Name: "inspectors", Cols: []string{"inspector_id", "updated_at", "name", "street_code", "community_code", "grid_cells", "enterprises", "appointed_on"}}
	seq := 0
	for si, s := range w.Streets {
		ids := make([]string, alloc[si])
		cellsN := make([]int, alloc[si])
		entN := make([]int, alloc[si])
		comm := make([]string, alloc[si])
		for j := range ids {
			seq++
			ids[j] = fmt.Sprintf("I%05d", seq)
		}
		for k, ci := range w.cellsOf[s.Code] {
			j := k % len(ids)
			w.Cells[ci].Inspector = ids[j]
			cellsN[j]++
			if comm[j] == "" {
				comm[j] = w.Cells[ci].Community
			}
		}
		for k := range unitsOf[s.Code] {
			entN[k%len(ids)]++
		}
		for j, id := range ids {
			if comm[j] == "" {
				comm[j] = w.Cells[w.cellsOf[s.Code][j%len(w.cellsOf[s.Code])]].Community
			}
			appointed := w.Epoch.AddDate(0, 0, -30-r.IntN(5*365))
			t.add(id, w.updated(), personName(r), s.Code, comm[j], cellsN[j], entN[j], day(appointed))
		}
		w.streetInspectors(s.Code, ids)
	}
	w.Tables["inspectors"] = t
	pos := map[string]int{}
	for i := range w.Units {
		u := &w.Units[i]
		ids := w.inspectorsOf[u.Street]
		u.Inspector = ids[pos[u.Street]%len(ids)]
		pos[u.Street]++
	}
}

var roads = []string{"西单北大街", "西长安街", "金融大街", "阜成门内大街", "平安里西大街", "新街口外大街", "德胜门外大街", "西直门外大街", "月坛南街", "南礼士路", "复兴门内大街", "宣武门外大街", "菜市口大街", "广安门内大街", "牛街", "陶然亭路", "天桥南大街", "前门西大街", "大栅栏街", "鼓楼西大街", "地安门西大街", "白纸坊东街", "右安门内大街", "三里河路", "车公庄大街", "展览馆路", "西四北大街", "赵登禹路"}

func streetRoad(r *rand.Rand) string { return roads[r.IntN(len(roads))] }

func (w *World) streetInspectors(code string, ids []string) {
	if w.inspectorsOf == nil {
		w.inspectorsOf = map[string][]string{}
	}
	w.inspectorsOf[code] = ids
}

type venueShare struct {
	venue int
	share float64
}
