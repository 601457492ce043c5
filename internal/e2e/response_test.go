package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"citybrain/internal/auth"
	"citybrain/internal/sim"
	"citybrain/pipelines/response/channels/channeltest"
)

// responseReceivers are the local receivers of the response service's
// channels in the surge test: an SMTP server and the WeCom, DingTalk and
// SMS gateway webhooks.
type responseReceivers struct {
	smtp                 *channeltest.SMTP
	wecom, ding, smsGate *channeltest.Recorder
}

func startResponseReceivers(t *testing.T) *responseReceivers {
	robot := channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`}
	return &responseReceivers{smtp: channeltest.StartSMTP(t, nil, "", ""), wecom: channeltest.StartRecorder(t, robot),
		ding: channeltest.StartRecorder(t, robot), smsGate: channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"code":0}`})}
}

// yaml is the response section pointing the channels at the receivers:
// ack_after short enough to see escalations before the surge clears (at
// speed 1440 a simulated hour is 2.5 s of wall time, and a cleared response
// stops escalating); max_age a simulated day.
func (r *responseReceivers) yaml() string {
	return fmt.Sprintf(`
response:
  ack_after: 2s
  tick: 500ms
  max_age: 24h
  retry: {base: 50ms}
  channels:
    email: {addr: %q, from: "西城应急 <noreply@xicheng.example.gov.cn>"}
    wecom: {webhook: %q}
    dingtalk: {webhook: %q}
    sms: {url: %q, template: TPL-E2E, sign: 西城应急}
`, r.smtp.Addr(), r.wecom.URL+"/cgi-bin/webhook/send?key=e2e", r.ding.URL+"/robot/send?access_token=e2e", r.smsGate.URL+"/sms/send")
}

type e2eTask struct {
	ID        string   `json:"id"`
	RoleID    string   `json:"role_id"`
	RoleEn    string   `json:"role_en"`
	Level     string   `json:"level"`
	State     string   `json:"state"`
	Assignees []string `json:"assignees"`
	Response  struct {
		ID           string `json:"id"`
		Kind         string `json:"kind"`
		Level        string `json:"level"`
		PlanID       string `json:"plan_id"`
		WarningLevel string `json:"warning_level"`
		StreetCode   string `json:"street_code"`
		Subjects     []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"subjects"`
	} `json:"response"`
}

func call(method, url, user string, body any, v any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(user, auth.DemoPassword)
	req.Header.Set("Content-Type", "application/json")
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v != nil {
		json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode, nil
}

// checkSurgeResponse follows a warned surge into the response service: the
// venue's response at the plan level its warning resolves to, its people
// notified in the app and on SMS, e-mail, WeCom and DingTalk (the local
// receivers), one of them acknowledging on a phone in headless Chromium,
// the unacknowledged ones escalated to their deputies, everyone closing,
// and the response's timeline in marts.responses in that order.
func checkSurgeResponse(t *testing.T, base, chromium string, rcv *responseReceivers, surge sim.Incident) {
	var tasks []e2eTask
	var mine []e2eTask
	waitFor(t, "the surge's response with its tasks", 90*time.Second, func() (bool, string) {
		var out struct {
			Tasks []e2eTask `json:"tasks"`
		}
		code, err := call("GET", base+"/api/respond/tasks?all=1", "admin", nil, &out)
		if err != nil || code != 200 {
			return false, fmt.Sprintf("GET /api/respond/tasks: %d %v", code, err)
		}
		tasks = out.Tasks
		mine = nil
		for _, tk := range tasks {
			for _, s := range tk.Response.Subjects {
				if tk.Response.Kind == "crowd" && s.ID == surge.VenueID {
					mine = append(mine, tk)
				}
			}
		}
		return len(mine) >= 3, fmt.Sprintf("%d tasks in all, %d of the venue %s", len(tasks), len(mine), surge.VenueID)
	})
	// The newest task's response: the venue may have had an earlier one
	// (an earlier surge in the street, cleared) whose tasks are listed too.
	resp := mine[0].Response
	var same []e2eTask
	for _, tk := range mine {
		if tk.Response.ID == resp.ID {
			same = append(same, tk)
		}
	}
	mine = same
	want := map[string]string{"red": "I", "orange": "II", "yellow": "III", "blue": "IV"}[resp.WarningLevel]
	t.Logf("response %s: crowd at %s (street %s), %s warning → plan %s level %s, %d tasks", resp.ID, surge.VenueID, resp.StreetCode,
		resp.WarningLevel, resp.PlanID, resp.Level, len(mine))
	if resp.Level == "" || (want != "" && responseRank(resp.Level) < responseRank(want)) {
		t.Errorf("response level %s for a %s warning, want at least %s", resp.Level, resp.WarningLevel, want)
	}
	// The first level activated: take its tasks (three people, three roles).
	var first []e2eTask
	for _, tk := range mine {
		if tk.Level == mine[0].Level {
			first = append(first, tk)
		}
	}
	if len(first) != 3 {
		t.Errorf("%d tasks at level %s, want 3 (commander, field lead, information officer)", len(first), mine[0].Level)
	}
	// Deliveries reached the receivers.
	waitFor(t, "deliveries on SMS, e-mail, WeCom and DingTalk", 30*time.Second, func() (bool, string) {
		n := [4]int{len(rcv.smsGate.Requests()), len(rcv.smtp.Received()), len(rcv.wecom.Requests()), len(rcv.ding.Requests())}
		return n[0] > 0 && n[1] > 0 && n[2] > 0 && n[3] > 0, fmt.Sprintf("sms %d, email %d, wecom %d, dingtalk %d", n[0], n[1], n[2], n[3])
	})
	// Accounts for the three people (the admin links them), the first on a phone.
	users := map[string]string{}
	for i, tk := range first {
		name := fmt.Sprintf("e2e_resp%d", i)
		person := tk.Assignees[0]
		code, err := call("POST", base+"/api/admin/users", "admin", map[string]any{"name": name, "password": auth.DemoPassword,
			"role": "department", "department": "emergency", "person_id": person}, nil)
		if err != nil || code != 200 {
			t.Fatalf("add user for %s: %d %v", person, code, err)
		}
		users[tk.ID] = name
	}
	ack := first[0]
	phone(t, base, chromium, users[ack.ID], ack.ID)
	var state struct {
		Tasks []e2eTask `json:"tasks"`
	}
	call("GET", base+"/api/respond/tasks?all=1", users[ack.ID], nil, &state)
	for _, tk := range state.Tasks {
		if tk.ID == ack.ID && tk.State != "acknowledged" && tk.State != "closed" {
			t.Errorf("task %s after the tap: %s, want acknowledged", tk.ID, tk.State)
		}
	}
	// Tasks not acknowledged within ack_after went to their deputies.
	waitFor(t, "the unacknowledged tasks escalated to the deputies", 60*time.Second, func() (bool, string) {
		var out struct {
			Tasks []e2eTask `json:"tasks"`
		}
		call("GET", base+"/api/respond/tasks?all=1", "admin", nil, &out)
		esc := 0
		for _, tk := range out.Tasks {
			if tk.ID != ack.ID && tk.Response.ID == resp.ID && len(tk.Assignees) >= 2 {
				esc++
			}
		}
		return esc >= 2, fmt.Sprintf("%d of 2 escalated", esc)
	})
	// Everyone closes: the response closes.
	for _, tk := range mine {
		u := users[tk.ID]
		if u == "" {
			u = fmt.Sprintf("e2e_x%s", strings.ToLower(tk.ID))
			if code, err := call("POST", base+"/api/admin/users", "admin", map[string]any{"name": u, "password": auth.DemoPassword,
				"role": "department", "department": "emergency", "person_id": tk.Assignees[0]}, nil); err != nil || code != 200 {
				t.Fatalf("add user for %s: %d %v", tk.Assignees[0], code, err)
			}
		}
		var out map[string]any
		if code, err := call("POST", base+"/api/respond/tasks/"+tk.ID+"/close", u, map[string]string{"text": "处置完毕 e2e"}, &out); err != nil || code != 200 {
			t.Fatalf("close %s as %s: %d %v %v", tk.ID, u, code, err, out)
		}
	}
	// The timeline, read back from marts.responses.
	var events []string
	waitFor(t, "the response's timeline in marts.responses", 60*time.Second, func() (bool, string) {
		var out struct {
			Rows [][]any `json:"rows"`
		}
		code, err := call("POST", base+"/api/sql", "admin", map[string]string{"sql": fmt.Sprintf(
			`select event, coalesce(channel, ''), coalesce(task_id, '') from marts.responses where response_id = '%s' order by seq`, resp.ID)}, &out)
		if err != nil || code != 200 {
			return false, fmt.Sprintf("%d %v", code, err)
		}
		events = events[:0]
		for _, r := range out.Rows {
			events = append(events, fmt.Sprint(r[0], "/", r[1], "/", r[2]))
		}
		return len(events) > 0 && strings.HasPrefix(events[len(events)-1], "closed//"), fmt.Sprintf("%d events, last %v", len(events), lastOf(events))
	})
	firstAt := func(prefix string) int {
		return slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
	}
	// raised → activated → notified → delivered, then acknowledged and
	// escalated (either first), closed last.
	at := map[string]int{}
	for _, e := range []string{"raised", "activated", "notified", "delivered", "acknowledged", "escalated", "closed"} {
		if at[e] = firstAt(e + "/"); at[e] < 0 {
			t.Errorf("timeline: no %s event:\n%s", e, strings.Join(events, "\n"))
		}
	}
	if !(at["raised"] < at["activated"] && at["activated"] < at["notified"] && at["notified"] < at["delivered"] &&
		at["activated"] < at["acknowledged"] && at["activated"] < at["escalated"]) {
		t.Errorf("timeline out of order %v:\n%s", at, strings.Join(events, "\n"))
	}
	for _, ch := range []string{"app", "sms", "email", "wecom", "dingtalk"} {
		if firstAt("delivered/"+ch+"/") < 0 {
			t.Errorf("timeline: no delivery on %s", ch)
		}
	}
	t.Logf("timeline of %s: %d events, %s … %s", resp.ID, len(events), events[0], lastOf(events))
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func responseRank(level string) int { return map[string]int{"I": 4, "II": 3, "III": 2, "IV": 1}[level] }

// phone logs user in to the responder app on an emulated phone and taps
// 确认接收 on the task.
func phone(t *testing.T, base, chromium, user, taskID string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank"), chromedp.Emulate(device.IPhone12Pro)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	card := fmt.Sprintf(`#task-list article[data-task=%q]`, taskID)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/respond/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-user`)),
		chromedp.SendKeys(chromedp.CSS(`#login-user`), user),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), auth.DemoPassword),
		chromedp.Tap(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(card)),
		chromedp.Tap(chromedp.CSS(card+` .act-ack`)),
		chromedp.WaitVisible(chromedp.CSS(card+`[data-state="acknowledged"]`))); err != nil {
		t.Fatalf("phone: %s acknowledging %s: %v", user, taskID, err)
	}
	t.Logf("%s acknowledged %s on a 390 px phone in headless Chromium", user, taskID)
}
