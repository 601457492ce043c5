package response

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Warning is one transition of marts.warnings, as the response service
// needs it.
type Warning struct {
	WarningID, Kind, SubjectType, SubjectID string
	SubjectNameZh, SubjectNameEn            string
	StreetCode, Level, State                string
	MessageZh, MessageEn                    string
	Seq                                     int64
	// EventTime is the data time of the transition; TransitionAt when
	// the engine made it.
	EventTime, TransitionAt time.Time
}

// Silence mutes new responses that match it (Alertmanager's silences):
// empty matchers match anything.
type Silence struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind,omitempty"`
	SubjectID  string    `json:"subject_id,omitempty"`
	StreetCode string    `json:"street_code,omitempty"`
	Reason     string    `json:"reason"`
	Author     string    `json:"author"`
	StartsAt   time.Time `json:"starts_at"`
	EndsAt     time.Time `json:"ends_at"`
}

func (s Silence) matches(w Warning, at time.Time) bool {
	return !at.Before(s.StartsAt) && at.Before(s.EndsAt) &&
		(s.Kind == "" || s.Kind == w.Kind) && (s.SubjectID == "" || s.SubjectID == w.SubjectID) &&
		(s.StreetCode == "" || s.StreetCode == w.StreetCode)
}

// Response is one activation of a plan for one event: the warnings of one
// subject and kind grouped while it is open.
type Response struct {
	ID            string            `json:"id"`
	Group         string            `json:"group"`
	Kind          string            `json:"kind"`
	SubjectType   string            `json:"subject_type"`
	SubjectID     string            `json:"subject_id"`
	SubjectNameZh string            `json:"subject_name_zh,omitempty"`
	SubjectNameEn string            `json:"subject_name_en,omitempty"`
	StreetCode    string            `json:"street_code,omitempty"`
	PlanID        string            `json:"plan_id"`
	PlanTitleZh   string            `json:"plan_title_zh,omitempty"`
	PlanTitleEn   string            `json:"plan_title_en,omitempty"`
	Level         string            `json:"level"`
	WarningLevel  string            `json:"warning_level"`
	MessageZh     string            `json:"message_zh,omitempty"`
	MessageEn     string            `json:"message_en,omitempty"`
	Warnings      map[string]string `json:"warnings"` // warning_id → level; cleared ones removed
	Subjects      []Subject         `json:"subjects"` // every subject that joined, first first
	OpenedAt      time.Time         `json:"opened_at"`
	ClearedAt     *time.Time        `json:"cleared_at,omitempty"`
	ClosedAt      *time.Time        `json:"closed_at,omitempty"`
}

// Subject is a subject whose warning joined a response.
type Subject struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	NameZh string `json:"name_zh,omitempty"`
	NameEn string `json:"name_en,omitempty"`
}

func (r *Response) join(w Warning) {
	r.Warnings[w.WarningID] = w.Level
	for _, s := range r.Subjects {
		if s.Type == w.SubjectType && s.ID == w.SubjectID {
			return
		}
	}
	r.Subjects = append(r.Subjects, Subject{Type: w.SubjectType, ID: w.SubjectID, NameZh: w.SubjectNameZh, NameEn: w.SubjectNameEn})
}

// Open says whether the response is not closed.
func (r *Response) Open() bool { return r.ClosedAt == nil }

// Task states.
const (
	TaskNotified     = "notified"
	TaskAcknowledged = "acknowledged"
	TaskClosed       = "closed"
)

// Task is one duty of one role in a response, with the person it is with
// now (the holder, then the deputy, then the superior role's holder).
type Task struct {
	ID         string     `json:"id"`
	ResponseID string     `json:"response_id"`
	RoleID     string     `json:"role_id"`
	RoleZh     string     `json:"role_zh"`
	RoleEn     string     `json:"role_en,omitempty"`
	DutyZh     string     `json:"duty_zh"`
	DutyEn     string     `json:"duty_en,omitempty"`
	Level      string     `json:"level"`
	StreetCode string     `json:"street_code,omitempty"`
	Assignees  []string   `json:"assignees"` // person ids, in escalation order so far
	Names      []string   `json:"names"`
	Tier       int        `json:"tier"` // 0 holder, 1 deputy, 2 superior
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	StepAt     time.Time  `json:"step_at"` // when the current assignee was notified
	AckBy      string     `json:"ack_by,omitempty"`
	AckAt      *time.Time `json:"ack_at,omitempty"`
	ClosedAt   *time.Time `json:"closed_at,omitempty"`
	Notes      []Note     `json:"notes,omitempty"`
}

// Note is a progress report on a task.
type Note struct {
	At     time.Time `json:"at"`
	Person string    `json:"person"`
	Text   string    `json:"text"`
}

// Assignee is the person the task is with now.
func (t *Task) Assignee() string { return t.Assignees[len(t.Assignees)-1] }

// For says whether person has been given the task.
func (t *Task) For(person string) bool {
	for _, a := range t.Assignees {
		if a == person {
			return true
		}
	}
	return false
}

// Event is one row of a response's timeline (marts.responses).
type Event struct {
	Seq           int64     `json:"seq"`
	At            time.Time `json:"at"`
	Event         string    `json:"event"`
	ResponseID    string    `json:"response_id"`
	TaskID        string    `json:"task_id,omitempty"`
	WarningID     string    `json:"warning_id,omitempty"`
	Kind          string    `json:"kind,omitempty"`
	SubjectType   string    `json:"subject_type,omitempty"`
	SubjectID     string    `json:"subject_id,omitempty"`
	SubjectNameZh string    `json:"subject_name_zh,omitempty"`
	StreetCode    string    `json:"street_code,omitempty"`
	WarningLevel  string    `json:"warning_level,omitempty"`
	PlanID        string    `json:"plan_id,omitempty"`
	PlanLevel     string    `json:"plan_level,omitempty"`
	RoleID        string    `json:"role_id,omitempty"`
	PersonID      string    `json:"person_id,omitempty"`
	PersonName    string    `json:"person_name,omitempty"`
	Channel       string    `json:"channel,omitempty"`
	Attempt       int       `json:"attempt,omitempty"`
	DetailZh      string    `json:"detail_zh,omitempty"`
	DetailEn      string    `json:"detail_en,omitempty"`
	OpenedAt      time.Time `json:"opened_at"`
}

// Timeline events.
const (
	EvRaised       = "raised"       // a warning reached the response service
	EvActivated    = "activated"    // a plan level activated (again, higher, on escalation of the warning)
	EvNotified     = "notified"     // a task handed to a person on a channel
	EvDelivered    = "delivered"    // the channel accepted it
	EvFailed       = "failed"       // the channel refused it (every attempt recorded)
	EvAcknowledged = "acknowledged" // the person took it
	EvProgress     = "progress"     // a progress report
	EvEscalated    = "escalated"    // unacknowledged: passed to the deputy or the superior
	EvInhibited    = "inhibited"    // a lower warning of a subject whose response is higher
	EvSilenced     = "silenced"     // a warning matched a silence
	EvCleared      = "cleared"      // every warning of the response cleared
	EvClosed       = "closed"       // a task or the response closed
	EvUnplanned    = "unplanned"    // no plan level applies (recorded, nobody notified)
)

// Delivery is one notification to send: a task to a person on a channel.
type Delivery struct {
	ID         string    `json:"id"`
	TaskID     string    `json:"task_id"`
	ResponseID string    `json:"response_id"`
	PersonID   string    `json:"person_id"`
	Name       string    `json:"name"`
	Mobile     string    `json:"mobile,omitempty"`
	Email      string    `json:"email,omitempty"`
	Channel    string    `json:"channel"`
	Level      string    `json:"level"`
	WarnLevel  string    `json:"warning_level"`
	TitleZh    string    `json:"title_zh"`
	TitleEn    string    `json:"title_en"`
	BodyZh     string    `json:"body_zh"`
	BodyEn     string    `json:"body_en"`
	Queued     time.Time `json:"queued"`
}

// Attempt is one try of a delivery, reported back by the sender.
type Attempt struct {
	At  time.Time
	Err error
}

// State is everything the service keeps between restarts.
type State struct {
	Seq        int64                `json:"seq"`  // last timeline sequence
	Next       int64                `json:"next"` // id counter
	Responses  map[string]*Response `json:"responses"`
	Tasks      map[string]*Task     `json:"tasks"`
	Silences   []Silence            `json:"silences"`
	Outbox     []Event              `json:"outbox"`      // not yet in marts.responses
	Deliveries []Delivery           `json:"deliveries"`  // not yet sent
	Seen       map[int64]int64      `json:"seen"`        // warnings seq class → last seq applied
	Started    bool                 `json:"started"`     // the cursors were set once
	Skipped    int64                `json:"skipped"`     // transitions taken as history
	Calls      map[string][]Call    `json:"calls"`       // category|street → emergency calls in the window
	CallSeen   map[string]time.Time `json:"call_seen"`   // emergency calls taken, by id
	CallCursor time.Time            `json:"call_cursor"` // newest call time read
}

// Engine turns warning transitions into responses, tasks, deliveries and
// timeline events, and runs the escalation timers. Safe for concurrent use.
// Every change is saved (Save) before the method returns.
type Engine struct {
	mu    sync.Mutex
	st    *State
	plans *Plans
	cfg   Config
	now   func() time.Time
	save  func(*State) error
	// OnChange, if set, is called (outside the lock) after a change with
	// the ids of the people whose tasks changed.
	OnChange func(people []string)
	channels map[string]bool // configured channels (nil: all)
}

// NewEngine returns an engine on st (nil: empty), saving with save (nil: not saved).
func NewEngine(cfg Config, st *State, plans *Plans, now func() time.Time, save func(*State) error) *Engine {
	if st == nil {
		st = &State{}
	}
	if st.Responses == nil {
		st.Responses = map[string]*Response{}
	}
	if st.Tasks == nil {
		st.Tasks = map[string]*Task{}
	}
	if st.Seen == nil {
		st.Seen = map[int64]int64{}
	}
	if now == nil {
		now = time.Now
	}
	if save == nil {
		save = func(*State) error { return nil }
	}
	return &Engine{st: st, plans: plans, cfg: cfg, now: now, save: save}
}

// SetPlans replaces the plans (a new version of the tables).
func (e *Engine) SetPlans(p *Plans) {
	e.mu.Lock()
	e.plans = p
	e.mu.Unlock()
}

// change runs fn under the lock, saves, and tells OnChange.
func (e *Engine) change(fn func(touched map[string]bool) error) error {
	touched := map[string]bool{}
	e.mu.Lock()
	err := fn(touched)
	if err == nil {
		err = e.save(e.st)
	}
	e.mu.Unlock()
	if err == nil && len(touched) > 0 && e.OnChange != nil {
		people := make([]string, 0, len(touched))
		for p := range touched {
			people = append(people, p)
		}
		sort.Strings(people)
		e.OnChange(people)
	}
	return err
}

func (e *Engine) id(prefix string) string {
	e.st.Next++
	return fmt.Sprintf("%s%06d", prefix, e.st.Next)
}

func (e *Engine) emit(r *Response, ev Event) {
	e.st.Seq++
	ev.Seq = e.st.Seq
	if ev.At.IsZero() {
		ev.At = e.now()
	}
	ev.ResponseID, ev.Kind, ev.SubjectType, ev.SubjectID, ev.SubjectNameZh = r.ID, r.Kind, r.SubjectType, r.SubjectID, r.SubjectNameZh
	ev.StreetCode, ev.WarningLevel, ev.PlanID, ev.PlanLevel, ev.OpenedAt = r.StreetCode, r.WarningLevel, r.PlanID, r.Level, r.OpenedAt
	e.st.Outbox = append(e.st.Outbox, ev)
}

// groupKey is the response a warning belongs to while it is open
// (Alertmanager's group_by): by default the kind and the street — the
// cells, venue and sensors of one surge or storm in a street are one
// response for the street's people; "subject" makes one per subject.
func (e *Engine) groupKey(w Warning) string {
	if e.cfg.GroupBy == "subject" || w.StreetCode == "" {
		return w.Kind + "|" + w.SubjectType + "|" + w.SubjectID
	}
	return w.Kind + "|street|" + w.StreetCode
}

// Seen says whether the warning transition seq was applied already (the
// cursor is kept per class seq mod stride: a partitioned engine's units).
func (e *Engine) Seen(seq, stride int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return seq <= e.st.Seen[seq%max(stride, 1)]
}

// Cursors returns the last applied warning sequence per class.
func (e *Engine) Cursors() map[int64]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[int64]int64{}
	for k, v := range e.st.Seen {
		out[k] = v
	}
	return out
}

// Apply takes one warning transition (in seq order within its class; one
// already applied is ignored).
func (e *Engine) Apply(w Warning, stride int64) error {
	return e.ApplyBatch([]Warning{w}, stride, time.Time{})
}

// ApplyBatch takes transitions in seq order and saves once. A transition
// whose data time is before liveFrom (not zero) is history — the warning
// engine replaying its topics, or an outage long past — and only moves the
// cursor: nobody is paged for it.
func (e *Engine) ApplyBatch(ws []Warning, stride int64, liveFrom time.Time) error {
	return e.change(func(touched map[string]bool) error {
		for _, w := range ws {
			class := w.Seq % max(stride, 1)
			if w.Seq != 0 && w.Seq <= e.st.Seen[class] {
				continue
			}
			if w.Seq != 0 {
				e.st.Seen[class] = w.Seq
			}
			if !liveFrom.IsZero() && !w.EventTime.IsZero() && w.EventTime.Before(liveFrom) {
				e.st.Skipped++
				continue
			}
			e.apply(w, touched)
		}
		return nil
	})
}

// SetChannels names the channels deliveries can go out on besides the
// in-app one (the configured ones); nil: every channel a person has.
func (e *Engine) SetChannels(names []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.channels = map[string]bool{"app": true}
	for _, n := range names {
		e.channels[n] = true
	}
}

func (e *Engine) openResponse(group string) *Response {
	for _, r := range e.st.Responses {
		if r.Group == group && r.Open() && r.ClearedAt == nil {
			return r
		}
	}
	return nil
}

func (e *Engine) apply(w Warning, touched map[string]bool) {
	now := e.now()
	r := e.openResponse(e.groupKey(w))
	if w.State == "cleared" || w.State == "lowered" {
		if r == nil {
			return
		}
		if w.State == "lowered" {
			r.Warnings[w.WarningID] = w.Level
		} else {
			delete(r.Warnings, w.WarningID)
		}
		if w.State == "cleared" && len(r.Warnings) == 0 {
			r.ClearedAt = &now
			e.emit(r, Event{Event: EvCleared, WarningID: w.WarningID,
				DetailZh: "预警已全部解除，未确认任务停止升级", DetailEn: "every warning cleared; unacknowledged tasks stop escalating"})
		}
		return
	}
	// raised or escalated
	for _, s := range e.st.Silences {
		if s.matches(w, now) {
			tmp := &Response{ID: "", Kind: w.Kind, SubjectType: w.SubjectType, SubjectID: w.SubjectID, SubjectNameZh: w.SubjectNameZh,
				StreetCode: w.StreetCode, WarningLevel: w.Level, OpenedAt: now}
			if r != nil {
				tmp = r
			}
			e.emit(tmp, Event{Event: EvSilenced, WarningID: w.WarningID, PersonID: s.Author,
				DetailZh: fmt.Sprintf("静默 %s（%s，至 %s）", s.ID, s.Reason, s.EndsAt.Format(time.RFC3339)),
				DetailEn: fmt.Sprintf("silence %s (%s, until %s)", s.ID, s.Reason, s.EndsAt.Format(time.RFC3339))})
			return
		}
	}
	if r != nil && warningLevels[w.Level] < warningLevels[r.WarningLevel] {
		// Inhibition: the group's response is at a higher warning level.
		r.join(w)
		e.emit(r, Event{Event: EvInhibited, WarningID: w.WarningID,
			DetailZh: fmt.Sprintf("%s级预警被本对象已有的%s级响应抑制", zhLevel(w.Level), zhLevel(r.WarningLevel)),
			DetailEn: fmt.Sprintf("%s warning inhibited by the subject's %s response", w.Level, r.WarningLevel)})
		return
	}
	if e.plans.Empty() {
		e.unplanned(r, w, now, "预案数据未导入", "plans not ingested yet")
		return
	}
	pl, ok := e.plans.Resolve(w.Kind, w.Level, w.StreetCode, now)
	if !ok {
		e.unplanned(r, w, now, "无适用预案等级", "no plan level applies")
		return
	}
	if r == nil {
		r = &Response{ID: e.id("R"), Group: e.groupKey(w), Kind: w.Kind, SubjectType: w.SubjectType, SubjectID: w.SubjectID,
			SubjectNameZh: w.SubjectNameZh, SubjectNameEn: w.SubjectNameEn, StreetCode: w.StreetCode, WarningLevel: w.Level,
			MessageZh: w.MessageZh, MessageEn: w.MessageEn, Warnings: map[string]string{}, OpenedAt: now}
		e.st.Responses[r.ID] = r
		r.join(w)
		e.emit(r, Event{Event: EvRaised, WarningID: w.WarningID, DetailZh: w.MessageZh, DetailEn: w.MessageEn})
	} else {
		if _, known := r.Warnings[w.WarningID]; !known {
			// Another warning joins the response (its first transition here).
			r.join(w)
			e.emit(r, Event{Event: EvRaised, WarningID: w.WarningID, DetailZh: w.MessageZh, DetailEn: w.MessageEn})
		}
		r.Warnings[w.WarningID] = w.Level
		r.WarningLevel, r.MessageZh, r.MessageEn = w.Level, w.MessageZh, w.MessageEn
		if r.Level != "" && responseLevels[pl.Level] <= responseLevels[r.Level] {
			// Grouped: the same response, no new tasks.
			return
		}
	}
	e.activate(r, pl, w, now, touched)
}

func (e *Engine) unplanned(r *Response, w Warning, now time.Time, zh, en string) {
	if r == nil {
		r = &Response{Kind: w.Kind, SubjectType: w.SubjectType, SubjectID: w.SubjectID, SubjectNameZh: w.SubjectNameZh,
			StreetCode: w.StreetCode, WarningLevel: w.Level, OpenedAt: now}
	}
	e.emit(r, Event{Event: EvUnplanned, WarningID: w.WarningID, DetailZh: zh, DetailEn: en})
}

// activate starts plan level pl for r: one task per role of the level.
func (e *Engine) activate(r *Response, pl PlanLevel, w Warning, now time.Time, touched map[string]bool) {
	r.PlanID, r.PlanTitleZh, r.PlanTitleEn, r.Level = pl.PlanID, pl.TitleZh, pl.TitleEn, pl.Level
	e.emit(r, Event{Event: EvActivated, WarningID: w.WarningID,
		DetailZh: fmt.Sprintf("启动%s %s级响应", pl.TitleZh, pl.Level), DetailEn: fmt.Sprintf("%s: level %s response", pl.TitleEn, pl.Level)})
	for _, role := range e.plans.Roles(pl.PlanID, pl.Level, now) {
		h, ok := e.plans.HolderAt(role.RoleID, now)
		if !ok {
			e.emit(r, Event{Event: EvUnplanned, RoleID: role.RoleID, DetailZh: "岗位无责任人：" + role.RoleZh, DetailEn: "role has no holder: " + role.RoleEn})
			continue
		}
		t := &Task{ID: e.id("T"), ResponseID: r.ID, RoleID: role.RoleID, RoleZh: role.RoleZh, RoleEn: role.RoleEn, DutyZh: role.DutyZh,
			DutyEn: role.DutyEn, Level: pl.Level, StreetCode: r.StreetCode, Assignees: []string{h.PersonID}, Names: []string{h.PersonName},
			State: TaskNotified, CreatedAt: now, StepAt: now}
		e.st.Tasks[t.ID] = t
		e.notify(r, t, Person{ID: h.PersonID, Name: h.PersonName, Mobile: h.Mobile, Email: h.Email, Channels: h.Channels}, touched)
	}
}

// notify queues the task to the person on each of their channels (in-app
// is delivered by being in their task list).
func (e *Engine) notify(r *Response, t *Task, p Person, touched map[string]bool) {
	touched[p.ID] = true
	chans := p.Channels
	if len(chans) == 0 {
		chans = []string{"app"}
	}
	now := e.now()
	for _, ch := range chans {
		if e.channels != nil && !e.channels[ch] {
			continue // not configured here: not queued, not recorded
		}
		e.emit(r, Event{Event: EvNotified, TaskID: t.ID, RoleID: t.RoleID, PersonID: p.ID, PersonName: p.Name, Channel: ch})
		if ch == "app" {
			e.emit(r, Event{Event: EvDelivered, TaskID: t.ID, RoleID: t.RoleID, PersonID: p.ID, PersonName: p.Name, Channel: ch, Attempt: 1})
			continue
		}
		title := fmt.Sprintf("【%s级响应】%s %s", t.Level, r.SubjectNameZh, t.RoleZh)
		e.st.Deliveries = append(e.st.Deliveries, Delivery{ID: e.id("D"), TaskID: t.ID, ResponseID: r.ID, PersonID: p.ID, Name: p.Name,
			Mobile: p.Mobile, Email: p.Email, Channel: ch, Level: t.Level, WarnLevel: r.WarningLevel,
			TitleZh: title, TitleEn: fmt.Sprintf("[Level %s response] %s — %s", t.Level, firstNonEmpty(r.SubjectNameEn, r.SubjectID), t.RoleEn),
			BodyZh: r.MessageZh + "\n职责：" + t.DutyZh, BodyEn: r.MessageEn + "\nDuty: " + t.DutyEn, Queued: now})
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func zhLevel(l string) string {
	return map[string]string{"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}[l]
}

// Tick runs the escalation timers at the engine's clock: a task not
// acknowledged AckAfter after its assignee was notified goes to the
// deputy, then to the superior role's holder; then it stays.
func (e *Engine) Tick() error {
	return e.change(func(touched map[string]bool) error {
		now := e.now()
		ids := make([]string, 0, len(e.st.Tasks))
		for id := range e.st.Tasks {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			t := e.st.Tasks[id]
			r := e.st.Responses[t.ResponseID]
			if t.State != TaskNotified || r == nil || !r.Open() || r.ClearedAt != nil || now.Sub(t.StepAt) < e.cfg.AckAfter || t.Tier >= 2 {
				continue
			}
			var next Person
			var ok bool
			var whyZh, whyEn string
			switch t.Tier {
			case 0:
				if h, found := e.plans.HolderAt(t.RoleID, now); found && h.DeputyID != "" {
					next, ok = Person{ID: h.DeputyID, Name: h.DeputyName, Mobile: h.DeputyMobile, Email: h.DeputyMail, Channels: []string{"app", "sms"}}, true
					whyZh, whyEn = "未在时限内确认，转替补", "not acknowledged in time: to the deputy"
				}
				if !ok {
					t.Tier = 1 // no deputy: straight to the superior below
				} else {
					t.Tier = 1
					break
				}
				fallthrough
			case 1:
				role, found := e.plans.Role(t.RoleID, now)
				if found && role.SuperiorRoleID != "" {
					if h, ok2 := e.plans.HolderAt(role.SuperiorRoleID, now); ok2 {
						next, ok = Person{ID: h.PersonID, Name: h.PersonName, Mobile: h.Mobile, Email: h.Email, Channels: h.Channels}, true
						whyZh, whyEn = "替补未确认，上报上级岗位", "deputy did not acknowledge: to the superior role"
					}
				}
				t.Tier = 2
			}
			t.StepAt = now
			if !ok {
				continue
			}
			t.Assignees = append(t.Assignees, next.ID)
			t.Names = append(t.Names, next.Name)
			e.emit(r, Event{Event: EvEscalated, TaskID: t.ID, RoleID: t.RoleID, PersonID: next.ID, PersonName: next.Name, DetailZh: whyZh, DetailEn: whyEn})
			e.notify(r, t, next, touched)
		}
		if e.cfg.Incidents.MinCount > 0 {
			e.clearIncidents(now)
		}
		// A response whose warnings all cleared closes CloseAfterClear
		// later, with its open tasks; closed ones leave the state KeepClosed
		// after closing, once the table holds their events.
		inOutbox := map[string]bool{}
		for _, ev := range e.st.Outbox {
			inOutbox[ev.ResponseID] = true
		}
		for id, r := range e.st.Responses {
			if r.Open() && r.ClearedAt != nil && e.cfg.CloseAfterClear > 0 && now.Sub(*r.ClearedAt) >= e.cfg.CloseAfterClear {
				at := now
				for _, t := range e.st.Tasks {
					if t.ResponseID == id && t.State != TaskClosed {
						t.State, t.ClosedAt = TaskClosed, &at
						for _, a := range t.Assignees {
							touched[a] = true
						}
					}
				}
				r.ClosedAt = &at
				e.emit(r, Event{Event: EvClosed, DetailZh: "预警解除后自动关闭", DetailEn: "closed automatically after the warnings cleared"})
				continue
			}
			if !r.Open() && e.cfg.KeepClosed > 0 && now.Sub(*r.ClosedAt) >= e.cfg.KeepClosed && !inOutbox[id] {
				for tid, t := range e.st.Tasks {
					if t.ResponseID == id {
						delete(e.st.Tasks, tid)
					}
				}
				delete(e.st.Responses, id)
			}
		}
		// Expired silences go.
		kept := e.st.Silences[:0]
		for _, s := range e.st.Silences {
			if now.Before(s.EndsAt) {
				kept = append(kept, s)
			}
		}
		e.st.Silences = kept
		return nil
	})
}

// ErrNotYours: the task was never given to the person.
var ErrNotYours = fmt.Errorf("该任务不属于你 / this task is not yours")

// ErrNoTask: no such task.
var ErrNoTask = fmt.Errorf("没有该任务 / no such task")

func (e *Engine) task(id, person string) (*Task, *Response, error) {
	t := e.st.Tasks[id]
	if t == nil {
		return nil, nil, ErrNoTask
	}
	if person != "" && !t.For(person) {
		return nil, nil, ErrNotYours
	}
	return t, e.st.Responses[t.ResponseID], nil
}

func (e *Engine) name(t *Task, person string) string {
	for i, a := range t.Assignees {
		if a == person {
			return t.Names[i]
		}
	}
	return ""
}

// Ack records that person took the task.
func (e *Engine) Ack(taskID, person string) error {
	return e.change(func(touched map[string]bool) error {
		t, r, err := e.task(taskID, person)
		if err != nil {
			return err
		}
		if t.State != TaskNotified {
			return nil // acknowledged already: idempotent
		}
		now := e.now()
		t.State, t.AckBy, t.AckAt = TaskAcknowledged, person, &now
		for _, a := range t.Assignees {
			touched[a] = true
		}
		e.emit(r, Event{Event: EvAcknowledged, TaskID: t.ID, RoleID: t.RoleID, PersonID: person, PersonName: e.name(t, person),
			DetailZh: fmt.Sprintf("%s 已确认（%s）", e.name(t, person), now.Sub(t.CreatedAt).Round(time.Second)),
			DetailEn: fmt.Sprintf("acknowledged after %s", now.Sub(t.CreatedAt).Round(time.Second))})
		return nil
	})
}

// Progress records a progress report (acknowledging the task if it was not).
func (e *Engine) Progress(taskID, person, text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return fmt.Errorf("进展内容为空 / empty progress report")
	}
	if err := e.Ack(taskID, person); err != nil {
		return err
	}
	return e.change(func(touched map[string]bool) error {
		t, r, err := e.task(taskID, person)
		if err != nil {
			return err
		}
		now := e.now()
		t.Notes = append(t.Notes, Note{At: now, Person: person, Text: text})
		touched[person] = true
		e.emit(r, Event{Event: EvProgress, TaskID: t.ID, RoleID: t.RoleID, PersonID: person, PersonName: e.name(t, person), DetailZh: text, DetailEn: text})
		return nil
	})
}

// Close closes person's task; the response closes with its last task.
func (e *Engine) Close(taskID, person, text string) error {
	if err := e.Ack(taskID, person); err != nil {
		return err
	}
	return e.change(func(touched map[string]bool) error {
		t, r, err := e.task(taskID, person)
		if err != nil {
			return err
		}
		if t.State == TaskClosed {
			return nil
		}
		now := e.now()
		t.State, t.ClosedAt = TaskClosed, &now
		touched[person] = true
		e.emit(r, Event{Event: EvClosed, TaskID: t.ID, RoleID: t.RoleID, PersonID: person, PersonName: e.name(t, person), DetailZh: text, DetailEn: text})
		for _, o := range e.st.Tasks {
			if o.ResponseID == r.ID && o.State != TaskClosed {
				return nil
			}
		}
		r.ClosedAt = &now
		e.emit(r, Event{Event: EvClosed, PersonID: person, DetailZh: "响应结束（全部任务已关闭）", DetailEn: "response closed (every task closed)"})
		return nil
	})
}

// AddSilence adds a silence (an admin's).
func (e *Engine) AddSilence(s Silence) (Silence, error) {
	if strings.TrimSpace(s.Reason) == "" {
		return s, fmt.Errorf("静默须写明原因 / a silence needs a reason")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return s, fmt.Errorf("静默结束时间须晚于开始时间 / a silence must end after it starts")
	}
	err := e.change(func(map[string]bool) error {
		s.ID = e.id("S")
		e.st.Silences = append(e.st.Silences, s)
		return nil
	})
	return s, err
}

// Silences returns the silences in force or to come.
func (e *Engine) Silences() []Silence {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Silence(nil), e.st.Silences...)
}

// TaskView is a task with its response, for the responder app.
type TaskView struct {
	Task
	Response Response `json:"response"`
}

// Tasks returns the tasks given to person (all when person is empty),
// newest first; open only unless all.
func (e *Engine) Tasks(person string, all bool) []TaskView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []TaskView
	for _, t := range e.st.Tasks {
		r := e.st.Responses[t.ResponseID]
		if r == nil || (person != "" && !t.For(person)) || (!all && (t.State == TaskClosed || !r.Open())) {
			continue
		}
		tv := TaskView{Task: *t, Response: *r}
		tv.Assignees = append([]string(nil), t.Assignees...)
		tv.Names = append([]string(nil), t.Names...)
		tv.Notes = append([]Note(nil), t.Notes...)
		out = append(out, tv)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Timeline returns the events not yet committed, in order (the service's
// sink commits them; Committed drops them).
func (e *Engine) Outbox() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.st.Outbox...)
}

// Committed drops the outbox events up to seq (they are in the table).
func (e *Engine) Committed(seq int64) error {
	return e.change(func(map[string]bool) error {
		i := 0
		for i < len(e.st.Outbox) && e.st.Outbox[i].Seq <= seq {
			i++
		}
		e.st.Outbox = append([]Event(nil), e.st.Outbox[i:]...)
		return nil
	})
}

// RaiseSeq moves the timeline sequence above floor (the table's cursor:
// a state file lost or older than the table).
func (e *Engine) RaiseSeq(floor int64) error {
	return e.change(func(map[string]bool) error {
		if e.st.Seq < floor {
			e.st.Seq = floor
		}
		return nil
	})
}

// Pending returns the deliveries to send.
func (e *Engine) Pending() []Delivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Delivery(nil), e.st.Deliveries...)
}

// Delivered records the attempts of a delivery and removes it from the queue.
func (e *Engine) Delivered(id string, attempts []Attempt) error {
	return e.change(func(map[string]bool) error {
		idx := -1
		for i, d := range e.st.Deliveries {
			if d.ID == id {
				idx = i
			}
		}
		if idx < 0 {
			return nil
		}
		d := e.st.Deliveries[idx]
		e.st.Deliveries = append(e.st.Deliveries[:idx:idx], e.st.Deliveries[idx+1:]...)
		r := e.st.Responses[d.ResponseID]
		t := e.st.Tasks[d.TaskID]
		if r == nil || t == nil {
			return nil
		}
		for i, a := range attempts {
			ev := Event{At: a.At, Event: EvDelivered, TaskID: d.TaskID, RoleID: t.RoleID, PersonID: d.PersonID, PersonName: d.Name, Channel: d.Channel, Attempt: i + 1}
			if a.Err != nil {
				ev.Event, ev.DetailZh, ev.DetailEn = EvFailed, a.Err.Error(), a.Err.Error()
			}
			e.emit(r, ev)
		}
		return nil
	})
}

// Response returns a response by id.
func (e *Engine) Response(id string) (Response, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.st.Responses[id]
	if !ok {
		return Response{}, false
	}
	return *r, true
}

// Person returns a person as the plans know them now.
func (e *Engine) Person(id string) (Person, bool) {
	e.mu.Lock()
	p := e.plans
	e.mu.Unlock()
	if id == "" || p.Empty() {
		return Person{}, false
	}
	return p.PersonAt(id, e.now())
}

// Started says whether the warnings cursors were set (Start).
func (e *Engine) Started() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.Started
}

// Start sets the warnings cursors on a first start (the table's ends: the
// history before the service existed is not activated again).
func (e *Engine) Start(ends map[int64]int64) error {
	return e.change(func(map[string]bool) error {
		for k, v := range ends {
			if v > e.st.Seen[k] {
				e.st.Seen[k] = v
			}
		}
		e.st.Started = true
		return nil
	})
}
