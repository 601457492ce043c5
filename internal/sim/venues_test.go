package sim

import (
	"strconv"
	"testing"
	"time"
)

// TestVenueCounts: every venue has its own count every interval (total,
// inbound, outbound); injected surges take the venue past its capacity at
// their peak, busy events stay under 70 % of it (the blue capacity level of
// the warnings), and ordinary days stay below 70 % of capacity — on
// average of the daily peaks well below it, and at every interval.
func TestVenueCounts(t *testing.T) {
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, Shanghai)
	const days = 35
	s, err := New(testConfig(), epoch)
	if err != nil {
		t.Fatal(err)
	}
	end := epoch.AddDate(0, 0, days)
	capOf := map[string]float64{}
	for _, v := range s.W.Venues {
		capOf[v.ID] = float64(v.Capacity)
	}
	// ratio[venue][interval start] = total / capacity
	ratio := map[string]map[time.Time]float64{}
	for tm := epoch; tm.Before(end); tm = tm.Add(s.Cfg.Rates.MobileInterval) {
		rows := s.VenueCountRows(tm)
		if len(rows) != 3*len(s.W.Venues) {
			t.Fatalf("%v: %d venue-count rows, want 3 per venue (%d venues)", tm, len(rows), len(s.W.Venues))
		}
		for _, r := range rows {
			if capOf[r[0]] == 0 || r[1] != ts(tm) || r[2] != "300" {
				t.Fatalf("bad venue-count row %v at %v", r, tm)
			}
			n, err := strconv.ParseFloat(r[4], 64)
			if err != nil || n < 0 {
				t.Fatalf("bad people in %v", r)
			}
			if r[3] == "total" {
				if ratio[r[0]] == nil {
					ratio[r[0]] = map[time.Time]float64{}
				}
				ratio[r[0]][tm] = n / capOf[r[0]]
			}
		}
	}
	busy := map[string]map[int64]bool{} // venue → local days with an injected crowd
	surges, events := 0, 0
	for _, in := range s.Incidents(epoch, end) {
		if in.Kind != KindCrowdSurge && in.Kind != KindCrowdEvent {
			continue
		}
		if busy[in.VenueID] == nil {
			busy[in.VenueID] = map[int64]bool{}
		}
		busy[in.VenueID][dayIndex(in.Start)], busy[in.VenueID][dayIndex(in.End)] = true, true
		if !in.End.Before(end) {
			continue
		}
		peak := ratio[in.VenueID][in.Peak.Truncate(5*time.Minute)]
		want := float64(in.VenuePeople) / capOf[in.VenueID]
		if d := peak/want - 1; d > 0.12 || d < -0.12 {
			t.Errorf("%s: venue count at the peak %.2f × capacity, ground truth venue_people %.2f ×", in.ID, peak, want)
		}
		switch in.Kind {
		case KindCrowdSurge:
			surges++
			if peak < 1 {
				t.Errorf("%s: surge peaks at %.2f × capacity, want past capacity", in.ID, peak)
			}
		case KindCrowdEvent:
			events++
			for tm := in.Start; tm.Before(in.End); tm = tm.Add(5 * time.Minute) {
				if x := ratio[in.VenueID][tm.Truncate(5*time.Minute)]; x >= 0.7 {
					t.Errorf("%s: busy event at %.2f × capacity at %v, want inside 70 %%", in.ID, x, tm)
					break
				}
			}
		}
	}
	if surges < 5*4 || events < 3*4 {
		t.Errorf("%d surges and %d busy events in %d days, want at least 5 and 3 a week", surges, events, days)
	}
	for _, v := range s.W.Venues {
		daily := map[int64]float64{}
		var worst float64
		var worstAt time.Time
		for tm, x := range ratio[v.ID] {
			d := dayIndex(tm)
			if busy[v.ID][d] {
				continue
			}
			daily[d] = max(daily[d], x)
			if x > worst {
				worst, worstAt = x, tm
			}
		}
		var sum float64
		for _, x := range daily {
			sum += x
		}
		mean := sum / float64(len(daily))
		if len(daily) < days/2 || mean >= 0.6 || worst >= 0.7 {
			t.Errorf("%s %s: ordinary days (%d): mean daily peak %.2f × capacity (want < 0.6), highest %.2f at %v (want < 0.7)",
				v.ID, v.NameEN, len(daily), mean, worst, worstAt.In(Shanghai))
		}
	}
}
