package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"time"
)

// Sim is a world plus its clockless feeds: every feed value is a pure
// function of the seed and the simulated time, so the same configuration
// yields byte-identical output whether generated as history or live.
type Sim struct {
	W     *World
	Cfg   Config
	Epoch time.Time // first instant of history

	weather  map[[3]int][]string // (month, day, hour) of 2016 → PRSA row
	wxHeader []string
	holidays map[string]bool

	mu     sync.Mutex
	blocks map[int64][]*Incident
}

// ErrNoWeather is returned when the real Guanyuan file is not there.
var ErrNoWeather = errors.New("sim: weather file not found")

// New generates the world and prepares the feeds. epoch is the first
// instant of history (Start − BackfillDays); it is truncated to the hour.
func New(cfg Config, epoch time.Time) (*Sim, error) {
	epoch = epoch.In(Shanghai).Truncate(time.Hour)
	w, err := NewWorld(cfg, epoch)
	if err != nil {
		return nil, err
	}
	s := &Sim{W: w, Cfg: cfg, Epoch: epoch, blocks: map[int64][]*Incident{}, holidays: map[string]bool{}}
	for _, h := range cfg.Holidays {
		s.holidays[h] = true
	}
	if err := s.loadWeather(cfg.WeatherFile); err != nil {
		return nil, err
	}
	return s, nil
}

// loadWeather reads the real Guanyuan hourly file; the year 2016 (a leap
// year inside the file's range) is replayed on any simulated year.
func (s *Sim) loadWeather(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s (气象回放需要真实的官园站数据 sim.weather_file; run from the repository root or set sim.weather_file): %v", ErrNoWeather, path, err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	hdr, err := cr.Read()
	if err != nil {
		return fmt.Errorf("weather file %s: %w", path, err)
	}
	s.wxHeader = hdr
	s.weather = map[[3]int][]string{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("weather file %s: %w", path, err)
		}
		if len(rec) < 18 || rec[1] != "2016" {
			continue
		}
		m, _ := strconv.Atoi(rec[2])
		d, _ := strconv.Atoi(rec[3])
		h, _ := strconv.Atoi(rec[4])
		s.weather[[3]int{m, d, h}] = rec
	}
	if len(s.weather) < 8000 {
		return fmt.Errorf("weather file %s: only %d hours of 2016 (want the PRSA Guanyuan file 2013-03-01…2017-02-28)", path, len(s.weather))
	}
	return nil
}

// weatherRow is the replayed real observation for the simulated hour t
// (rain raised by an injected rainstorm), in the file's own columns.
func (s *Sim) weatherRow(t time.Time, n int64) []string {
	t = t.In(Shanghai)
	src, ok := s.weather[[3]int{int(t.Month()), t.Day(), t.Hour()}]
	if !ok {
		src = s.weather[[3]int{int(t.Month()), min(t.Day(), 28), t.Hour()}]
	}
	row := append([]string(nil), src...)
	row[0] = strconv.FormatInt(n, 10)
	row[1], row[2], row[3], row[4] = strconv.Itoa(t.Year()), strconv.Itoa(int(t.Month())), strconv.Itoa(t.Day()), strconv.Itoa(t.Hour())
	if storm := s.stormRain(t); storm > 0 {
		base, _ := strconv.ParseFloat(row[14], 64)
		row[14] = strconv.FormatFloat(math.Round((base+storm)*10)/10, 'f', -1, 64)
		row[16] = "6.8"
	}
	return row
}

// rawRain is the replayed rain (mm in the hour) without injected storms.
func (s *Sim) rawRain(t time.Time) float64 {
	t = t.In(Shanghai)
	src, ok := s.weather[[3]int{int(t.Month()), t.Day(), t.Hour()}]
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(src[14], 64)
	if err != nil {
		return 0
	}
	return v
}

// stormRain is the rain an injected rainstorm adds in the hour starting at
// t (hourly mean of its intensity profile).
func (s *Sim) stormRain(t time.Time) float64 {
	t = t.Truncate(time.Hour)
	var mm float64
	for _, in := range s.active(t, time.Hour) {
		if in.Kind != KindRainstorm {
			continue
		}
		var sum float64
		for m := 0; m < 60; m += 5 {
			sum += in.intensity(t.Add(time.Duration(m) * time.Minute))
		}
		mm += in.PeakRainMM * sum / 12
	}
	return mm
}

// rain is the hour's rain as the weather feed reports it.
func (s *Sim) rain(t time.Time) float64 { return s.rawRain(t) + s.stormRain(t) }

// isHoliday: 1 Jan, 1–5 May, 1–7 Oct and the configured dates.
func (s *Sim) isHoliday(t time.Time) bool {
	t = t.In(Shanghai)
	m, d := t.Month(), t.Day()
	if m == time.January && d == 1 || m == time.May && d <= 5 || m == time.October && d <= 7 {
		return true
	}
	return s.holidays[t.Format("2006-01-02")]
}

func (s *Sim) restDay(t time.Time) bool {
	wd := t.In(Shanghai).Weekday()
	return wd == time.Saturday || wd == time.Sunday || s.isHoliday(t)
}

// hourFrac is the hour of day as a fraction (14.5 = 14:30).
func hourFrac(t time.Time) float64 {
	t = t.In(Shanghai)
	return float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
}

// interp reads a 24-point daily profile at a fractional hour.
func interp(p *[24]float64, h float64) float64 {
	i := int(h) % 24
	f := h - math.Floor(h)
	return p[i]*(1-f) + p[(i+1)%24]*f
}

var (
	// share of residents at home
	homeWork = [24]float64{.97, .97, .97, .97, .97, .96, .92, .80, .62, .55, .54, .55, .57, .56, .55, .55, .58, .64, .75, .85, .90, .93, .95, .96}
	homeRest = [24]float64{.97, .97, .97, .97, .97, .97, .95, .92, .86, .78, .72, .70, .70, .70, .70, .72, .75, .80, .85, .90, .93, .95, .96, .97}
	// share of workers at work
	workWork = [24]float64{.04, .03, .03, .03, .03, .04, .08, .30, .75, .92, .95, .93, .85, .92, .95, .93, .88, .70, .40, .22, .12, .08, .06, .05}
	workRest = [24]float64{.03, .03, .03, .03, .03, .03, .05, .08, .15, .22, .25, .25, .24, .25, .25, .24, .22, .18, .12, .08, .06, .05, .04, .03}
	// Venue occupancy on an ordinary weekday as a share of the venue's
	// maximum capacity (its 最大承载量). Venues manage entry (tickets, gates,
	// one-way flows), so ordinary peaks stay well inside capacity: about
	// 0.4–0.5 on weekdays, up to about 0.55–0.6 on rest days and holidays
	// (the multipliers in venueLoad). Only injected surges go beyond.
	venueProfile = map[string]*[24]float64{
		"railway_station":     {.02, .01, .01, .01, .02, .06, .18, .32, .40, .29, .25, .25, .27, .26, .25, .29, .36, .45, .43, .32, .25, .18, .09, .04},
		"commercial_district": {.01, .01, .01, .01, .01, .01, .03, .05, .08, .13, .21, .27, .29, .27, .29, .32, .33, .36, .38, .36, .29, .20, .08, .03},
		"scenic_area":         {.02, .01, .01, .01, .01, .01, .04, .07, .12, .19, .25, .28, .28, .30, .30, .30, .28, .30, .35, .38, .33, .22, .10, .04},
		"park":                {.01, .01, .01, .01, .02, .10, .22, .25, .22, .24, .28, .28, .26, .26, .28, .30, .32, .34, .36, .30, .18, .08, .03, .01},
		"hospital":            {.05, .05, .05, .05, .05, .05, .09, .23, .41, .47, .46, .41, .30, .35, .40, .38, .31, .21, .13, .09, .07, .06, .05, .05},
		"school":              {.00, .00, .00, .00, .00, .00, .01, .23, .47, .48, .48, .47, .42, .46, .47, .46, .31, .13, .04, .02, .01, .00, .00, .00},
		"stadium":             {.00, .00, .00, .00, .00, .00, .01, .02, .03, .04, .05, .05, .05, .05, .05, .05, .05, .05, .06, .06, .05, .03, .01, .00},
		"other":               {.00, .00, .00, .00, .00, .00, .01, .03, .10, .30, .40, .40, .35, .38, .40, .38, .30, .15, .05, .02, .01, .00, .00, .00},
	}
)

// venueLoad is the share of capacity expected at a venue at t on an
// ordinary day (before the day's own variation, fluctuations and injected
// incidents): time of day, rest days, holidays, rain.
func (s *Sim) venueLoad(v *Venue, t time.Time, rain float64) float64 {
	h := hourFrac(t)
	load := interp(venueProfile[v.Kind], h)
	rest := s.restDay(t)
	switch v.Kind {
	case "commercial_district", "scenic_area", "park":
		if rest {
			load *= 1.35
		}
		if s.isHoliday(t) {
			load *= 1.1
		}
	case "railway_station":
		if s.isHoliday(t) || s.isHoliday(t.AddDate(0, 0, 1)) || s.isHoliday(t.AddDate(0, 0, -1)) {
			load *= 1.2 // station peaks around holidays
		}
		if t.In(Shanghai).Weekday() == time.Friday || t.In(Shanghai).Weekday() == time.Sunday {
			load *= 1.12
		}
	case "school", "other":
		if rest {
			load *= 0.1
		}
	case "hospital":
		if rest {
			load *= 0.6
		}
	}
	if v.Outdoor && rain > 1 {
		load *= math.Max(0.35, 1-0.04*rain)
	}
	return load
}

// venueBaseline is the people expected in a venue's cells at t without
// incidents (residents and workers included).
func (s *Sim) venueBaseline(vi int, t time.Time) float64 {
	v := &s.W.Venues[vi]
	rain := s.rawRain(t)
	var sum float64
	for _, ci := range v.Cells {
		sum += s.cellBase(ci, t, rain)
	}
	return sum
}

// cellResidents is the expected people in a cell at t who are not in a
// venue: residents at home, workers (and their clients) at work.
func (s *Sim) cellResidents(ci int, t time.Time) float64 {
	c := &s.W.Cells[ci]
	h := hourFrac(t)
	home, work := &homeWork, &workWork
	if s.restDay(t) {
		home, work = &homeRest, &workRest
	}
	return c.residents*interp(home, h) + c.workers*interp(work, h)*1.6 // workers + clients
}

// cellBase is the expected people in a cell at t without noise or incidents.
func (s *Sim) cellBase(ci int, t time.Time, rain float64) float64 {
	n := s.cellResidents(ci, t)
	for _, vs := range s.W.Cells[ci].venueShare {
		v := &s.W.Venues[vs.venue]
		n += float64(v.Capacity) * vs.share * s.venueLoad(v, t, rain)
	}
	return n
}
