package channels

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// smsTitleMax is the most characters of the title put into an SMS: with
// the template's text, the signature and the link it keeps the message
// within one or two 70-character segments.
const smsTitleMax = 30

// SMS sends through an SMS gateway's HTTP webhook, as government SMS
// platforms expose them: the gateway fills the approved template with the
// parameters level (I…IV), title (the Chinese title, clipped) and url.
type SMS struct {
	cfg SMSConfig
	ep  endpoint
}

var _ Channel = (*SMS)(nil)

// NewSMS returns the SMS gateway channel.
func NewSMS(cfg SMSConfig) *SMS {
	cfg.URL = strings.TrimSpace(cfg.URL)
	return &SMS{cfg: cfg, ep: endpoint{channel: NameSMS, zh: "短信网关", en: "SMS gateway",
		key: "response.channels.sms.url", authKey: "response.channels.sms.token",
		client: newClient(cfg.Timeout)}}
}

// Name is "sms".
func (s *SMS) Name() string { return NameSMS }

type smsRequest struct {
	Mobile   string    `json:"mobile"`
	Template string    `json:"template"`
	Params   smsParams `json:"params"`
	Sign     string    `json:"sign"`
}

type smsParams struct {
	Level string `json:"level"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Send posts the SMS request. A 2xx answer is success when its body is
// empty or has no "code" or "code" 0 (a number or a string; "OK" too, as
// some gateways answer); any other code is a permanent error.
func (s *SMS) Send(ctx context.Context, to Recipient, m Message) error {
	mobile := strings.TrimSpace(to.Mobile)
	if mobile == "" {
		return noMobile(NameSMS, "无法发送短信", "so no SMS can be sent", to)
	}
	title := m.TitleZh
	if title == "" {
		title = m.TitleEn
	}
	req := smsRequest{
		Mobile:   mobile,
		Template: s.cfg.Template,
		Params:   smsParams{Level: m.Level, Title: clipRunes(title, smsTitleMax), URL: m.URL},
		Sign:     s.cfg.Sign,
	}
	var h http.Header
	if s.cfg.Token != "" {
		h = http.Header{"Authorization": {"Bearer " + s.cfg.Token}}
	}
	ans, e := s.ep.post(ctx, s.cfg.URL, h, req)
	if e != nil {
		return e
	}
	if strings.TrimSpace(string(ans)) == "" {
		return nil
	}
	var r struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Msg     string          `json:"msg"`
	}
	if e := s.ep.decodeAnswer(ans, &r); e != nil {
		return e
	}
	code, ok := smsCode(r.Code)
	if !ok || code == "0" || strings.EqualFold(code, "OK") {
		return nil // no code: the 2xx alone says accepted
	}
	what := "code " + code
	if msg := r.Message + r.Msg; msg != "" {
		what += ": " + msg
	}
	return fail(NameSMS, false,
		"短信网关拒绝发送 ("+what+") — 检查 response.channels.sms.template 与 sign 是否已审核通过，以及手机号 "+mobile,
		"SMS gateway refused the message ("+what+"): check that response.channels.sms.template and sign are approved, and the number "+mobile,
		ErrRejected)
}

// smsCode reads the answer's code: a number, or a string (of one, or a
// gateway's own "OK"); false when there is none.
func smsCode(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s), true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if f, err := n.Float64(); err == nil && f == 0 {
			return "0", true
		}
		return n.String(), true
	}
	return string(raw), true
}
