package response

import (
	"fmt"
	"sort"
	"time"
)

// Incident is one emergency call of raw.incidents, as the response service
// needs it.
type Incident struct {
	ID, Category, StreetCode, Title string
	At                              time.Time
}

var incidentZh = map[string]string{"fire": "火警", "medical": "医疗救护", "traffic": "交通事故", "police": "治安警情", "other": "其他警情"}

// ApplyIncidents takes emergency calls. One call does not activate a plan
// — the district receives a hundred a day — but a cluster does: at least
// Incidents.MinCount calls of one category in one street within
// Incidents.Window activate the level whose incident_type is the category
// (a special HQ's), as one response for the street; later calls of the
// cluster join it; when the window holds fewer again the response clears.
// Calls already seen, or older than liveFrom (history), only count for
// nothing.
func (e *Engine) ApplyIncidents(ins []Incident, liveFrom time.Time) error {
	if e.cfg.Incidents.MinCount <= 0 {
		return nil
	}
	return e.change(func(touched map[string]bool) error {
		if e.st.Calls == nil {
			e.st.Calls = map[string][]Call{}
		}
		if e.st.CallSeen == nil {
			e.st.CallSeen = map[string]time.Time{}
		}
		now := e.now()
		for _, in := range ins {
			if in.Category == "" || in.StreetCode == "" {
				continue
			}
			key := in.ID
			if key == "" {
				key = in.Category + "|" + in.StreetCode + "|" + in.At.Format(time.RFC3339Nano)
			}
			if _, seen := e.st.CallSeen[key]; seen {
				continue
			}
			e.st.CallSeen[key] = in.At
			if in.At.After(e.st.CallCursor) {
				e.st.CallCursor = in.At
			}
			if !liveFrom.IsZero() && in.At.Before(liveFrom) {
				continue
			}
			g := in.Category + "|" + in.StreetCode
			calls := append(e.st.Calls[g], Call{ID: key, At: in.At, Title: in.Title})
			sort.Slice(calls, func(i, j int) bool { return calls[i].At.Before(calls[j].At) })
			// Keep the window ending at the newest call.
			from := calls[len(calls)-1].At.Add(-e.cfg.Incidents.Window)
			k := 0
			for k < len(calls) && calls[k].At.Before(from) {
				k++
			}
			calls = calls[k:]
			e.st.Calls[g] = calls
			e.incidentCluster(in, calls, now, touched)
		}
		// Seen ids are kept two windows (late calls are compared to them).
		for k, at := range e.st.CallSeen {
			if len(ins) > 0 && at.Before(ins[len(ins)-1].At.Add(-2*e.cfg.Incidents.Window-time.Hour)) {
				delete(e.st.CallSeen, k)
			}
		}
		return nil
	})
}

func (e *Engine) incidentCluster(in Incident, calls []Call, now time.Time, touched map[string]bool) {
	group := "incident|" + in.Category + "|" + in.StreetCode
	r := e.openResponse(group)
	zh := incidentZh[in.Category]
	if zh == "" {
		zh = in.Category
	}
	detailZh := fmt.Sprintf("%s 内 %d 起%s：%s", e.cfg.Incidents.Window, len(calls), zh, in.Title)
	detailEn := fmt.Sprintf("%d %s calls within %s: %s", len(calls), in.Category, e.cfg.Incidents.Window, in.Title)
	if r != nil {
		e.emit(r, Event{Event: EvRaised, DetailZh: detailZh, DetailEn: detailEn})
		return
	}
	if len(calls) < e.cfg.Incidents.MinCount {
		return
	}
	w := Warning{Kind: "incident", SubjectType: "street", SubjectID: in.StreetCode, StreetCode: in.StreetCode,
		SubjectNameZh: zh + "聚集", SubjectNameEn: in.Category + " calls cluster", MessageZh: detailZh, MessageEn: detailEn}
	if e.plans.Empty() {
		e.unplanned(nil, w, now, "预案数据未导入", "plans not ingested yet")
		return
	}
	pl, ok := e.plans.ResolveIncident(in.Category, in.StreetCode, now)
	if !ok {
		e.unplanned(nil, w, now, "无适用预案等级（警情类别 "+in.Category+"）", "no plan level for incident category "+in.Category)
		return
	}
	r = &Response{ID: e.id("R"), Group: group, Kind: "incident", SubjectType: "street", SubjectID: in.StreetCode,
		SubjectNameZh: w.SubjectNameZh, SubjectNameEn: w.SubjectNameEn, StreetCode: in.StreetCode,
		MessageZh: detailZh, MessageEn: detailEn, Warnings: map[string]string{}, OpenedAt: now}
	r.Subjects = []Subject{{Type: "street", ID: in.StreetCode, NameZh: w.SubjectNameZh, NameEn: w.SubjectNameEn}}
	e.st.Responses[r.ID] = r
	e.emit(r, Event{Event: EvRaised, DetailZh: detailZh, DetailEn: detailEn})
	e.activate(r, pl, w, now, touched)
}

// Call is an emergency call kept for its cluster's window.
type Call struct {
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
	Title string    `json:"title,omitempty"`
}

// clearIncidents clears the incident responses whose window — ending now,
// or at the newest call if that is later (the simulator's clock runs ahead)
// — holds fewer than MinCount calls.
func (e *Engine) clearIncidents(now time.Time) {
	if e.st.CallCursor.After(now) {
		now = e.st.CallCursor
	}
	for _, r := range e.st.Responses {
		if r.Kind != "incident" || !r.Open() || r.ClearedAt != nil {
			continue
		}
		g := r.Group[len("incident|"):]
		calls := e.st.Calls[g]
		n := 0
		for _, c := range calls {
			if !c.At.Before(now.Add(-e.cfg.Incidents.Window)) {
				n++
			}
		}
		if n < e.cfg.Incidents.MinCount {
			at := now
			r.ClearedAt = &at
			e.emit(r, Event{Event: EvCleared, DetailZh: "警情聚集已消退", DetailEn: "the cluster of calls has passed"})
		}
	}
}

// CallCursor is the newest emergency call time taken.
func (e *Engine) CallCursor() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.CallCursor
}
