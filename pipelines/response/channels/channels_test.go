package channels_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"citybrain/pipelines/response/channels"
	"citybrain/pipelines/response/channels/channeltest"
)

var task = channels.Message{
	TaskID:       "T-20250717-0042",
	ResponseID:   "R-0007",
	Level:        "III",
	WarningLevel: "orange",
	TitleZh:      "德胜街道积水内涝",
	TitleEn:      "Waterlogging in Desheng street",
	BodyZh:       "职责：组织抢险队伍赶赴现场排水。\n联系街道应急办。",
	BodyEn:       "Duty: send the rescue team to pump the water.\nCall the street's emergency office.",
	URL:          "https://citybrain.example.gov.cn/respond/tasks/T-20250717-0042",
	At:           time.Date(2025, 7, 17, 14, 5, 0, 0, time.FixedZone("CST", 8*3600)),
}

var zhang = channels.Recipient{PersonID: "P001", Name: "张三", Mobile: "13800001111", Email: "zhangsan@xicheng.example.gov.cn"}

// ---- the shared suite: every channel against its local receiver ----

// fixture is one channel wired to a local receiver.
type fixture struct {
	ch channels.Channel
	// failNext makes the receiver fail the next n messages, "temporary"
	// (HTTP 500, SMTP 451) or "permanent" (HTTP 400, SMTP 550).
	failNext func(kind string, n int)
	// accepted counts the messages the receiver accepted.
	accepted func() int
	// requests counts what reached the receiver at all.
	requests func() int
	// noAddress is a recipient this channel cannot reach, and its sentinel.
	noAddress channels.Recipient
	noAddrErr error
	// dead is the channel pointed at a closed port.
	dead channels.Channel
}

var fixtures = []struct {
	name string
	new  func(t *testing.T) fixture
}{
	{"email", emailFixture},
	{"wecom", weComFixture},
	{"dingtalk", dingTalkFixture},
	{"sms", smsFixture},
}

func TestChannels(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			t.Run("delivers", func(t *testing.T) {
				fx := f.new(t)
				if fx.ch.Name() != f.name {
					t.Errorf("Name() = %q, want %q", fx.ch.Name(), f.name)
				}
				if err := fx.ch.Send(context.Background(), zhang, task); err != nil {
					t.Fatal(err)
				}
				if n := fx.accepted(); n != 1 {
					t.Fatalf("receiver accepted %d messages, want 1", n)
				}
			})
			t.Run("500 twice then 200: three attempts", func(t *testing.T) {
				fx := f.new(t)
				fx.failNext("temporary", 2)
				var slept []time.Duration
				p := channels.Retry{Max: 5, Base: 10 * time.Millisecond, Cap: time.Second,
					Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
				at := channels.Deliver(context.Background(), fx.ch, zhang, task, p)
				if len(at) != 3 {
					t.Fatalf("%d attempts, want 3: %v", len(at), at)
				}
				for i, a := range at {
					if a.N != i+1 || a.At.IsZero() || a.Took < 0 {
						t.Errorf("attempt %d: %+v", i, a)
					}
				}
				for _, a := range at[:2] {
					if !channels.Temporary(a.Err) || !errors.Is(a.Err, channels.ErrUnavailable) {
						t.Errorf("attempt %d: want a temporary ErrUnavailable, got %v", a.N, a.Err)
					}
					assertAdvice(t, a.Err)
				}
				if at[2].Err != nil {
					t.Errorf("last attempt: %v", at[2].Err)
				}
				if len(slept) != 2 || slept[0] > 10*time.Millisecond || slept[1] > 20*time.Millisecond {
					t.Errorf("waits %v, want two within [0,10ms] and [0,20ms]", slept)
				}
				if n := fx.accepted(); n != 1 {
					t.Errorf("receiver accepted %d messages, want 1", n)
				}
			})
			t.Run("refused: one attempt, permanent", func(t *testing.T) {
				fx := f.new(t)
				fx.failNext("permanent", 1)
				at := channels.Deliver(context.Background(), fx.ch, zhang, task, noWait(5))
				if len(at) != 1 || at[0].Err == nil {
					t.Fatalf("attempts %v, want one failed", at)
				}
				var ce *channels.Error
				if !errors.As(at[0].Err, &ce) || ce.Temporary || ce.Channel != f.name || !errors.Is(at[0].Err, channels.ErrRejected) {
					t.Errorf("want a permanent %s *Error wrapping ErrRejected, got %#v", f.name, at[0].Err)
				}
				assertAdvice(t, at[0].Err)
			})
			t.Run("gives up after Max", func(t *testing.T) {
				fx := f.new(t)
				fx.failNext("temporary", 5)
				at := channels.Deliver(context.Background(), fx.ch, zhang, task, noWait(2))
				if len(at) != 2 || at[0].Err == nil || at[1].Err == nil {
					t.Fatalf("attempts %v, want two failed", at)
				}
			})
			t.Run("context ends: no more attempts", func(t *testing.T) {
				fx := f.new(t)
				fx.failNext("temporary", 5)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				p := channels.Retry{Max: 5, Sleep: func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }}
				if at := channels.Deliver(ctx, fx.ch, zhang, task, p); len(at) != 1 {
					t.Fatalf("%d attempts, want 1 (cancelled while waiting)", len(at))
				}
				if at := channels.Deliver(ctx, fx.ch, zhang, task, p); len(at) != 0 {
					t.Fatalf("%d attempts with an ended context, want 0", len(at))
				}
				if err := fx.ch.Send(ctx, zhang, task); !channels.Temporary(err) {
					t.Fatalf("Send with an ended context: want a temporary error, got %v", err)
				}
			})
			t.Run("recipient without address: permanent, nothing sent", func(t *testing.T) {
				fx := f.new(t)
				err := fx.ch.Send(context.Background(), fx.noAddress, task)
				if err == nil || channels.Temporary(err) || !errors.Is(err, fx.noAddrErr) {
					t.Fatalf("want a permanent %v, got %v", fx.noAddrErr, err)
				}
				if !strings.Contains(err.Error(), "张三 (P001)") || !strings.Contains(err.Error(), "person's record") {
					t.Errorf("error should name the person and say what to do: %v", err)
				}
				if n := fx.requests(); n != 0 {
					t.Errorf("%d requests reached the receiver", n)
				}
			})
			t.Run("unreachable: temporary", func(t *testing.T) {
				fx := f.new(t)
				err := fx.dead.Send(context.Background(), zhang, task)
				if !channels.Temporary(err) || !errors.Is(err, channels.ErrUnavailable) {
					t.Fatalf("want a temporary ErrUnavailable, got %v", err)
				}
				assertAdvice(t, err)
			})
		})
	}
}

func noWait(maxAttempts int) channels.Retry {
	return channels.Retry{Max: maxAttempts, Sleep: func(context.Context, time.Duration) error { return nil }}
}

// assertAdvice checks an error reads Chinese, then English, and names the
// configuration key to check or says it retries.
func assertAdvice(t *testing.T, err error) {
	t.Helper()
	s := err.Error()
	zh, en, ok := strings.Cut(s, " / ")
	if !ok || !strings.ContainsFunc(zh, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		t.Errorf("want \"<中文> / <English>\", got %q", s)
		return
	}
	if !strings.Contains(en, "check ") && !strings.Contains(en, "will retry") {
		t.Errorf("English part says neither what to check nor that it retries: %q", en)
	}
}

// deadAddr is a local address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func emailFixture(t *testing.T) fixture {
	s := channeltest.StartSMTP(t, nil, "", "")
	cfg := channels.EmailConfig{Addr: s.Addr(), From: "西城城市大脑 <noreply@xicheng.example.gov.cn>", Timeout: 2 * time.Second}
	dead := cfg
	dead.Addr = deadAddr(t)
	noEmail := zhang
	noEmail.Email = ""
	return fixture{
		ch: channels.NewEmail(cfg),
		failNext: func(kind string, n int) {
			code := 451
			if kind == "permanent" {
				code = 550
			}
			for range n {
				s.FailNextRcpt(code)
			}
		},
		accepted:  func() int { return len(s.Received()) },
		requests:  func() int { return s.Sessions() },
		noAddress: noEmail, noAddrErr: channels.ErrNoEmail,
		dead: channels.NewEmail(dead),
	}
}

func httpFixture(t *testing.T, rec *channeltest.Recorder, ch, dead channels.Channel, perMessage int) fixture {
	noMobile := zhang
	noMobile.Mobile = " "
	return fixture{
		ch: ch,
		failNext: func(kind string, n int) {
			r := channeltest.Reply{Status: http.StatusInternalServerError, Body: "upstream down"}
			if kind == "permanent" {
				r = channeltest.Reply{Status: http.StatusBadRequest, Body: `{"error":"bad request"}`}
			}
			for range n {
				rec.Then(r)
			}
		},
		accepted:  func() int { return rec.OKs() / perMessage },
		requests:  func() int { return len(rec.Requests()) },
		noAddress: noMobile, noAddrErr: channels.ErrNoMobile,
		dead: dead,
	}
}

func weComFixture(t *testing.T) fixture {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`})
	return httpFixture(t, rec,
		channels.NewWeCom(channels.WebhookConfig{Webhook: rec.URL + "/cgi-bin/webhook/send?key=k1", Timeout: time.Second}),
		channels.NewWeCom(channels.WebhookConfig{Webhook: "http://" + deadAddr(t) + "/cgi-bin/webhook/send?key=k1"}),
		2) // markdown, then the mention
}

func dingTalkFixture(t *testing.T) fixture {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`})
	return httpFixture(t, rec,
		channels.NewDingTalk(channels.DingTalkConfig{Webhook: rec.URL + "/robot/send?access_token=t1", Secret: "SECtest", Timeout: time.Second}),
		channels.NewDingTalk(channels.DingTalkConfig{Webhook: "http://" + deadAddr(t) + "/robot/send?access_token=t1"}),
		1)
}

func smsFixture(t *testing.T) fixture {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"code":0,"message":"ok"}`})
	return httpFixture(t, rec,
		channels.NewSMS(channels.SMSConfig{URL: rec.URL + "/sms/send", Token: "tok", Template: "TPL_001", Sign: "西城应急", Timeout: time.Second}),
		channels.NewSMS(channels.SMSConfig{URL: "http://" + deadAddr(t) + "/sms/send", Template: "TPL_001"}),
		1)
}

// ---- e-mail ----

func TestEmailMessage(t *testing.T) {
	s := channeltest.StartSMTP(t, nil, "", "")
	ch := channels.NewEmail(channels.EmailConfig{Addr: s.Addr(), From: "西城城市大脑 <noreply@xicheng.example.gov.cn>", Timeout: 2 * time.Second})
	other := task
	other.TaskID = "T-20250717-0043"
	for _, m := range []channels.Message{task, task, other} {
		if err := ch.Send(context.Background(), zhang, m); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Received()
	if len(got) != 3 {
		t.Fatalf("%d messages received, want 3", len(got))
	}
	if got[0].From != "noreply@xicheng.example.gov.cn" || !slices.Equal(got[0].Rcpt, []string{zhang.Email}) {
		t.Errorf("envelope MAIL FROM %q RCPT TO %q", got[0].From, got[0].Rcpt)
	}
	for _, line := range strings.Split(string(got[0].Data), "\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}

	msg, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?UTF-8?b?") {
		t.Errorf("Subject not RFC 2047 B-encoded: %q", h.Get("Subject"))
	}
	if want := "【III级响应 · 橙色预警】" + task.TitleZh + " / " + task.TitleEn; subject != want {
		t.Errorf("Subject %q, want %q", subject, want)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	if h.Get("MIME-Version") != "1.0" || h.Get("Content-Transfer-Encoding") != "base64" {
		t.Errorf("MIME-Version %q, Content-Transfer-Encoding %q", h.Get("MIME-Version"), h.Get("Content-Transfer-Encoding"))
	}
	if d, err := h.Date(); err != nil || !d.Equal(task.At) {
		t.Errorf("Date %q (%v), want %v", h.Get("Date"), err, task.At)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "张三" || to[0].Address != zhang.Email {
		t.Errorf("To %q → %v %v", h.Get("To"), to, err)
	}
	if strings.Contains(h.Get("To"), "张三") {
		t.Errorf("To carries the name unencoded: %q", h.Get("To"))
	}
	from, err := h.AddressList("From")
	if err != nil || from[0].Name != "西城城市大脑" {
		t.Errorf("From %q → %v %v", h.Get("From"), from, err)
	}

	body, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, msg.Body))
	if err != nil || !utf8.Valid(body) {
		t.Fatalf("body is not base64 UTF-8: %v", err)
	}
	text := string(body)
	order := []string{task.TitleZh, "职责：组织抢险队伍", "打开任务：" + task.URL, task.TitleEn, "Duty: send the rescue team", "Open the task: " + task.URL}
	last := -1
	for _, want := range order {
		i := strings.Index(text, want)
		if i < 0 {
			t.Fatalf("body lacks %q:\n%s", want, text)
		}
		if i < last {
			t.Errorf("%q out of order (Chinese first, then English):\n%s", want, text)
		}
		last = i
	}
	if !strings.Contains(text, "\r\n") {
		t.Errorf("body lines not CRLF")
	}

	id := func(i int) string {
		m, err := mail.ReadMessage(bytes.NewReader(got[i].Data))
		if err != nil {
			t.Fatal(err)
		}
		return m.Header.Get("Message-ID")
	}
	if id(0) != id(1) {
		t.Errorf("Message-ID changed between two sends of one task: %s, %s", id(0), id(1))
	}
	if id(0) == id(2) {
		t.Errorf("two tasks share Message-ID %s", id(0))
	}
	if _, err := mail.ParseAddress(strings.Trim(id(0), "<>")); err != nil || !strings.HasSuffix(id(0), "@xicheng.example.gov.cn>") || !strings.Contains(id(0), task.TaskID) {
		t.Errorf("Message-ID %q: want <…%s…@sender's domain> (%v)", id(0), task.TaskID, err)
	}
}

func TestEmailStartTLSAndAuth(t *testing.T) {
	conf := &tls.Config{Certificates: []tls.Certificate{channeltest.Cert(t)}}
	s := channeltest.StartSMTP(t, conf, "duty@xicheng", "s3cret")
	cfg := channels.EmailConfig{Addr: s.Addr(), From: "noreply@xicheng.example.gov.cn", Username: "duty@xicheng", Password: "s3cret",
		StartTLS: true, InsecureSkipVerify: true, Timeout: 2 * time.Second}
	if err := channels.NewEmail(cfg).Send(context.Background(), zhang, task); err != nil {
		t.Fatal(err)
	}
	if got := s.Received(); len(got) != 1 || !got[0].TLS || !got[0].Authed {
		t.Fatalf("want one message over TLS after AUTH PLAIN, got %+v", got)
	}

	for _, c := range []struct {
		name   string
		change func(*channels.EmailConfig)
		is     error
		advice string
	}{
		{"wrong password", func(c *channels.EmailConfig) { c.Password = "wrong" }, channels.ErrRejected, "response.channels.email.username"},
		{"certificate not trusted", func(c *channels.EmailConfig) { c.InsecureSkipVerify = false }, channels.ErrConfig, "response.channels.email.starttls"},
		{"no STARTTLS, so no AUTH offered", func(c *channels.EmailConfig) { c.StartTLS = false }, channels.ErrConfig, "response.channels.email.addr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := cfg
			c.change(&bad)
			err := channels.NewEmail(bad).Send(context.Background(), zhang, task)
			if err == nil || channels.Temporary(err) || !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.advice) {
				t.Fatalf("want a permanent %v naming %s, got %v", c.is, c.advice, err)
			}
		})
	}
}

// ---- checks on what the HTTP receivers got ----

// object decodes a JSON object and checks it has exactly the keys given.
func object(t *testing.T, raw json.RawMessage, keys ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s (%v)", raw, err)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("keys %v, want %v in %s", got, keys, raw)
	}
	return m
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("not a JSON string: %s", raw)
	}
	return s
}

func assertJSONPost(t *testing.T, r channeltest.Request) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || !strings.Contains(strings.ToLower(ct), "utf-8") {
		t.Errorf("Content-Type %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); ua != "citybrain" {
		t.Errorf("User-Agent %q", ua)
	}
}

func assertInOrder(t *testing.T, text string, parts ...string) {
	t.Helper()
	last := -1
	for _, p := range parts {
		i := strings.Index(text, p)
		if i < 0 {
			t.Errorf("%q lacks %q", text, p)
			return
		}
		if i < last {
			t.Errorf("%q: %q out of order", text, p)
		}
		last = i
	}
}

// ---- WeCom ----

func TestWeComMessages(t *testing.T) {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`})
	ch := channels.NewWeCom(channels.WebhookConfig{Webhook: rec.URL + "/cgi-bin/webhook/send?key=693a91f6"})
	if err := ch.Send(context.Background(), zhang, task); err != nil {
		t.Fatal(err)
	}
	reqs := rec.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (markdown, then the mention)", len(reqs))
	}
	for _, r := range reqs {
		assertJSONPost(t, r)
		if r.Path != "/cgi-bin/webhook/send" || r.Query.Get("key") != "693a91f6" {
			t.Errorf("posted to %s?%s", r.Path, r.Query.Encode())
		}
	}

	md := object(t, reqs[0].Body, "msgtype", "markdown")
	if str(t, md["msgtype"]) != "markdown" {
		t.Errorf("msgtype %s", md["msgtype"])
	}
	content := str(t, object(t, md["markdown"], "content")["content"])
	assertInOrder(t, content, task.TitleZh, "职责：组织抢险队伍", "[打开任务]("+task.URL+")", task.TitleEn, "Duty: send the rescue team", "[Open the task]("+task.URL+")")
	if !strings.Contains(content, `<font color="warning">【III级响应 · 橙色预警】</font>`) {
		t.Errorf("markdown lacks the coloured level: %q", content)
	}

	txt := object(t, reqs[1].Body, "msgtype", "text")
	if str(t, txt["msgtype"]) != "text" {
		t.Errorf("msgtype %s", txt["msgtype"])
	}
	text := object(t, txt["text"], "content", "mentioned_mobile_list")
	var mobiles []string
	json.Unmarshal(text["mentioned_mobile_list"], &mobiles)
	if !slices.Equal(mobiles, []string{"13800001111"}) {
		t.Errorf("mentioned_mobile_list %s", text["mentioned_mobile_list"])
	}
	assertInOrder(t, str(t, text["content"]), "张三", task.TitleZh, "please acknowledge", task.TitleEn, task.URL)
}

func TestWeComErrcodes(t *testing.T) {
	for _, c := range []struct {
		answer    string
		temporary bool
		is        error
		says      string
	}{
		{`{"errcode":93000,"errmsg":"invalid webhook url"}`, false, channels.ErrRejected,
			"wecom: 企业微信机器人拒绝消息 (errcode 93000: invalid webhook url) — 检查 response.channels.wecom.webhook / " +
				"WeCom robot refused the message (errcode 93000: invalid webhook url): check response.channels.wecom.webhook"},
		{`{"errcode":45009,"errmsg":"api freq out of limit"}`, true, channels.ErrRateLimited, "at most 20 messages a minute"},
		{`{"errcode":-1,"errmsg":"system busy"}`, true, channels.ErrUnavailable, "will retry"},
		{`<html>login</html>`, false, channels.ErrRejected, "check that response.channels.wecom.webhook points to it"},
		{`{"ok":true}`, false, channels.ErrRejected, "check that response.channels.wecom.webhook points to it"},
	} {
		t.Run(c.answer, func(t *testing.T) {
			rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: c.answer})
			err := channels.NewWeCom(channels.WebhookConfig{Webhook: rec.URL + "/send?key=k"}).Send(context.Background(), zhang, task)
			if err == nil || channels.Temporary(err) != c.temporary || !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("want temporary=%v %v saying %q, got %v", c.temporary, c.is, c.says, err)
			}
		})
	}
}

// A mention rate limited after its markdown was accepted is retried alone.
func TestWeComRetriesOnlyTheMention(t *testing.T) {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`})
	rec.Then(channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`}, channeltest.Reply{Status: 200, Body: `{"errcode":45009,"errmsg":"api freq out of limit"}`})
	ch := channels.NewWeCom(channels.WebhookConfig{Webhook: rec.URL + "/send?key=k"})
	at := channels.Deliver(context.Background(), ch, zhang, task, noWait(3))
	if len(at) != 2 || !errors.Is(at[0].Err, channels.ErrRateLimited) || at[1].Err != nil {
		t.Fatalf("attempts %v, want a rate-limited one then success", at)
	}
	var kinds []string
	for _, r := range rec.Requests() {
		var m struct{ MsgType string }
		json.Unmarshal(r.Body, &m)
		kinds = append(kinds, m.MsgType)
	}
	if !slices.Equal(kinds, []string{"markdown", "text", "text"}) {
		t.Fatalf("requests %v, want markdown, text, text", kinds)
	}
	// The next task starts with its markdown again.
	next := task
	next.TaskID = "T-2"
	if err := ch.Send(context.Background(), zhang, next); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Requests()); n != 5 {
		t.Fatalf("%d requests after a second task, want 5", n)
	}
}

// ---- DingTalk ----

func TestDingTalkSignedMarkdown(t *testing.T) {
	const secret = "SEC0123456789abcdef"
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`})
	// Check the signature the way DingTalk's server does: recompute the
	// HMAC from the timestamp parameter and the robot's secret.
	rec.SetCheck(func(r *http.Request, _ []byte) (int, string) {
		q := r.URL.Query()
		ts, sign := q.Get("timestamp"), q.Get("sign")
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Hour {
			return 200, `{"errcode":310000,"errmsg":"sign not match, timestamp"}`
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "\n" + secret))
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(sign), []byte(want)) {
			return 200, `{"errcode":310000,"errmsg":"sign not match"}`
		}
		return 0, ""
	})
	ch := channels.NewDingTalk(channels.DingTalkConfig{Webhook: rec.URL + "/robot/send?access_token=abc123", Secret: secret})
	if err := ch.Send(context.Background(), zhang, task); err != nil {
		t.Fatal(err)
	}
	reqs := rec.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	assertJSONPost(t, r)
	if r.Query.Get("access_token") != "abc123" {
		t.Errorf("access_token lost: %s", r.Query.Encode())
	}
	body := object(t, r.Body, "msgtype", "markdown", "at")
	if str(t, body["msgtype"]) != "markdown" {
		t.Errorf("msgtype %s", body["msgtype"])
	}
	md := object(t, body["markdown"], "title", "text")
	if title := str(t, md["title"]); title != "【III级响应 · 橙色预警】"+task.TitleZh {
		t.Errorf("title %q", title)
	}
	text := str(t, md["text"])
	assertInOrder(t, text, task.TitleZh, "职责：组织抢险队伍", "[打开任务]("+task.URL+")", task.TitleEn, "Duty: send the rescue team", "[Open the task]("+task.URL+")", "@13800001111")
	at := object(t, body["at"], "atMobiles", "isAtAll")
	var mobiles []string
	json.Unmarshal(at["atMobiles"], &mobiles)
	if !slices.Equal(mobiles, []string{"13800001111"}) || string(at["isAtAll"]) != "false" {
		t.Errorf("at %s", body["at"])
	}

	// A wrong secret is refused by the same check, permanently.
	bad := channels.NewDingTalk(channels.DingTalkConfig{Webhook: rec.URL + "/robot/send?access_token=abc123", Secret: "SECwrong"})
	err := bad.Send(context.Background(), zhang, task)
	if err == nil || channels.Temporary(err) || !errors.Is(err, channels.ErrRejected) || !strings.Contains(err.Error(), "response.channels.dingtalk.webhook and secret") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestDingTalkUnsigned(t *testing.T) {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`})
	if err := channels.NewDingTalk(channels.DingTalkConfig{Webhook: rec.URL + "/robot/send?access_token=abc"}).Send(context.Background(), zhang, task); err != nil {
		t.Fatal(err)
	}
	if q := rec.Requests()[0].Query; q.Has("timestamp") || q.Has("sign") || q.Get("access_token") != "abc" {
		t.Errorf("query %s, want only access_token", q.Encode())
	}
}

func TestDingTalkErrcodes(t *testing.T) {
	for _, c := range []struct {
		answer    string
		temporary bool
		is        error
	}{
		{`{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, true, channels.ErrRateLimited},
		{`{"errcode":310000,"errmsg":"keywords not in content"}`, false, channels.ErrRejected},
		{`{"errcode":300001,"errmsg":"token is not exist"}`, false, channels.ErrRejected},
	} {
		t.Run(c.answer, func(t *testing.T) {
			rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: c.answer})
			err := channels.NewDingTalk(channels.DingTalkConfig{Webhook: rec.URL + "/robot/send?access_token=a"}).Send(context.Background(), zhang, task)
			if err == nil || channels.Temporary(err) != c.temporary || !errors.Is(err, c.is) {
				t.Fatalf("want temporary=%v %v, got %v", c.temporary, c.is, err)
			}
			assertAdvice(t, err)
		})
	}
}

// ---- SMS ----

func TestSMSRequest(t *testing.T) {
	rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"code":0}`})
	rec.SetCheck(func(r *http.Request, _ []byte) (int, string) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			return http.StatusUnauthorized, `{"code":401,"message":"bad token"}`
		}
		return 0, ""
	})
	cfg := channels.SMSConfig{URL: rec.URL + "/api/sms/send", Token: "tok-123", Template: "SMS_RESP_001", Sign: "西城应急"}
	long := task
	long.TitleZh = strings.Repeat("德胜街道积水", 10)
	if err := channels.NewSMS(cfg).Send(context.Background(), zhang, long); err != nil {
		t.Fatal(err)
	}
	r := rec.Requests()[0]
	assertJSONPost(t, r)
	body := object(t, r.Body, "mobile", "template", "params", "sign")
	if str(t, body["mobile"]) != "13800001111" || str(t, body["template"]) != "SMS_RESP_001" || str(t, body["sign"]) != "西城应急" {
		t.Errorf("body %s", r.Body)
	}
	params := object(t, body["params"], "level", "title", "url")
	if str(t, params["level"]) != "III" || str(t, params["url"]) != task.URL {
		t.Errorf("params %s", body["params"])
	}
	if title := str(t, params["title"]); utf8.RuneCountInString(title) > 30 || !strings.HasPrefix(title, "德胜街道积水") || !strings.HasSuffix(title, "…") {
		t.Errorf("title %q: want the Chinese title clipped to 30 characters", title)
	}

	bad := cfg
	bad.Token = "wrong"
	err := channels.NewSMS(bad).Send(context.Background(), zhang, task)
	if err == nil || channels.Temporary(err) || !strings.Contains(err.Error(), "response.channels.sms.token") {
		t.Fatalf("wrong token: want a permanent error naming response.channels.sms.token, got %v", err)
	}
}

func TestSMSAnswers(t *testing.T) {
	for _, c := range []struct {
		answer string
		ok     bool
	}{
		{``, true},
		{`{"code":0}`, true},
		{`{"code":"0","message":"success"}`, true},
		{`{"requestId":"x"}`, true},
		{`{"code":1001,"message":"template not approved"}`, false},
		{`{"code":"E_MOBILE","msg":"blacklisted"}`, false},
		{`<html>gateway login</html>`, false},
	} {
		t.Run(c.answer, func(t *testing.T) {
			rec := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: c.answer})
			err := channels.NewSMS(channels.SMSConfig{URL: rec.URL, Template: "T"}).Send(context.Background(), zhang, task)
			if c.ok != (err == nil) {
				t.Fatalf("answer %q: got %v", c.answer, err)
			}
			if err != nil {
				if channels.Temporary(err) || !errors.Is(err, channels.ErrRejected) {
					t.Errorf("want a permanent ErrRejected, got %v", err)
				}
				assertAdvice(t, err)
			}
			if h := rec.Requests()[0].Header.Get("Authorization"); h != "" {
				t.Errorf("Authorization %q sent without a token", h)
			}
		})
	}
}

// ---- HTTP in general ----

func TestHTTPStatuses(t *testing.T) {
	for _, c := range []struct {
		status    int
		temporary bool
		is        error
	}{
		{http.StatusTooManyRequests, true, channels.ErrRateLimited},
		{http.StatusBadGateway, true, channels.ErrUnavailable},
		{http.StatusNotFound, false, channels.ErrRejected},
		{http.StatusForbidden, false, channels.ErrRejected},
	} {
		t.Run(strconv.Itoa(c.status), func(t *testing.T) {
			rec := channeltest.StartRecorder(t, channeltest.Reply{Status: c.status, Body: "nope"})
			err := channels.NewDingTalk(channels.DingTalkConfig{Webhook: rec.URL + "/robot/send?access_token=a"}).Send(context.Background(), zhang, task)
			if err == nil || channels.Temporary(err) != c.temporary || !errors.Is(err, c.is) {
				t.Fatalf("HTTP %d: want temporary=%v %v, got %v", c.status, c.temporary, c.is, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", c.status)) {
				t.Errorf("error does not give the status: %v", err)
			}
		})
	}
}

// A redirect is reported, not followed: Go would repeat the POST as a GET.
func TestRedirectNotFollowed(t *testing.T) {
	followed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			followed = true
			return
		}
		http.Redirect(w, r, "/moved", http.StatusFound)
	}))
	defer srv.Close()
	err := channels.NewWeCom(channels.WebhookConfig{Webhook: srv.URL + "/send?key=k"}).Send(context.Background(), zhang, task)
	if err == nil || channels.Temporary(err) || !strings.Contains(err.Error(), "HTTP 302") || followed {
		t.Fatalf("want a permanent error for HTTP 302 and no request to the new location (followed=%v), got %v", followed, err)
	}
}

func TestHTTPTimeoutIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	start := time.Now()
	err := channels.NewSMS(channels.SMSConfig{URL: srv.URL, Template: "T", Timeout: 30 * time.Millisecond}).Send(context.Background(), zhang, task)
	if !channels.Temporary(err) || !errors.Is(err, channels.ErrUnavailable) {
		t.Fatalf("want a temporary ErrUnavailable, got %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v with a 30ms timeout", took)
	}
}

// Errors name a webhook without its query: the robots' keys are secrets.
func TestErrorsHideWebhookKeys(t *testing.T) {
	dead := deadAddr(t)
	for _, ch := range []channels.Channel{
		channels.NewWeCom(channels.WebhookConfig{Webhook: "http://" + dead + "/cgi-bin/webhook/send?key=SECRETKEY"}),
		channels.NewDingTalk(channels.DingTalkConfig{Webhook: "http://" + dead + "/robot/send?access_token=SECRETKEY", Secret: "SECRETSECRET"}),
	} {
		err := ch.Send(context.Background(), zhang, task)
		if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), dead) {
			t.Errorf("%s: %v", ch.Name(), err)
		}
	}
}

// ---- Deliver ----

type channelFunc func(context.Context, channels.Recipient, channels.Message) error

func (f channelFunc) Name() string { return "func" }
func (f channelFunc) Send(ctx context.Context, to channels.Recipient, m channels.Message) error {
	return f(ctx, to, m)
}

func TestDeliverBackoff(t *testing.T) {
	always := channelFunc(func(context.Context, channels.Recipient, channels.Message) error {
		return &channels.Error{Channel: "func", Temporary: true, Err: channels.ErrUnavailable}
	})
	for range 20 { // the waits are random: look at several runs
		var slept []time.Duration
		p := channels.Retry{Max: 6, Base: 10 * time.Millisecond, Cap: 40 * time.Millisecond,
			Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
		at := channels.Deliver(context.Background(), always, zhang, task, p)
		if len(at) != 6 || len(slept) != 5 {
			t.Fatalf("%d attempts and %d waits, want 6 and 5", len(at), len(slept))
		}
		for i, d := range slept {
			ceil := min(10*time.Millisecond<<i, 40*time.Millisecond)
			if d < 0 || d > ceil {
				t.Fatalf("wait %d = %v, want within [0, %v]", i+1, d, ceil)
			}
		}
	}
	// Max below 1 still makes one attempt; an error not from this package
	// is taken as temporary.
	n := 0
	plain := channelFunc(func(context.Context, channels.Recipient, channels.Message) error { n++; return errors.New("boom") })
	if at := channels.Deliver(context.Background(), plain, zhang, task, channels.Retry{Sleep: noWait(0).Sleep}); len(at) != 1 || n != 1 {
		t.Fatalf("Max 0: %d attempts", len(at))
	}
	if at := channels.Deliver(context.Background(), plain, zhang, task, noWait(3)); len(at) != 3 {
		t.Fatalf("plain error: %d attempts, want 3", len(at))
	}
}

func TestDeliverWaitsWithDefaultSleep(t *testing.T) {
	calls := 0
	flaky := channelFunc(func(context.Context, channels.Recipient, channels.Message) error {
		if calls++; calls < 3 {
			return &channels.Error{Channel: "func", Temporary: true, Err: channels.ErrUnavailable}
		}
		return nil
	})
	at := channels.Deliver(context.Background(), flaky, zhang, task, channels.Retry{Max: 3, Base: time.Millisecond, Cap: 2 * time.Millisecond})
	if len(at) != 3 || at[2].Err != nil {
		t.Fatalf("attempts %v", at)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	calls = -100
	at = channels.Deliver(ctx, flaky, zhang, task, channels.Retry{Max: 1000, Base: time.Hour, Cap: time.Hour})
	if len(at) != 1 || ctx.Err() == nil {
		t.Fatalf("want one attempt, then the context's end during the wait; got %d", len(at))
	}
}

// ---- configuration ----

func TestNewOnlyConfigured(t *testing.T) {
	if got := channels.New(channels.DefaultConfig()); len(got) != 0 {
		t.Fatalf("default config: %v, want no channel", got)
	}
	cfg := channels.DefaultConfig()
	cfg.Email.Addr, cfg.Email.From = "smtp.example.gov.cn:587", "noreply@example.gov.cn"
	cfg.WeCom.Webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
	cfg.DingTalk.Webhook = "https://oapi.dingtalk.com/robot/send?access_token=t"
	cfg.SMS.URL, cfg.SMS.Template = "https://sms.example.gov.cn/send", "T1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := channels.New(cfg)
	var names []string
	for name, ch := range got {
		if ch.Name() != name {
			t.Errorf("%s: Name() = %q", name, ch.Name())
		}
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"dingtalk", "email", "sms", "wecom"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("channels %v, want %v", names, want)
	}
	cfg.WeCom.Webhook, cfg.SMS.URL = "", ""
	if got := channels.New(cfg); len(got) != 2 || got["wecom"] != nil || got["sms"] != nil {
		t.Fatalf("with wecom and sms off: %v", got)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*channels.Config)
		key    string
	}{
		{"email addr without port", func(c *channels.Config) { c.Email.Addr, c.Email.From = "smtp.example", "a@b.cn" }, "response.channels.email.addr"},
		{"email without from", func(c *channels.Config) { c.Email.Addr = "smtp.example:25" }, "response.channels.email.from"},
		{"wecom webhook not a URL", func(c *channels.Config) { c.WeCom.Webhook = "qyapi.weixin.qq.com/send" }, "response.channels.wecom.webhook"},
		{"sms without template", func(c *channels.Config) { c.SMS.URL = "https://sms.example/send" }, "response.channels.sms.template"},
		{"negative timeout", func(c *channels.Config) { c.DingTalk.Timeout = -time.Second }, "response.channels.dingtalk.timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := channels.DefaultConfig()
			c.change(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("want an error naming %s, got %v", c.key, err)
			}
		})
	}
}
