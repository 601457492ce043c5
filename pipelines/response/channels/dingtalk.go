package channels

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DingTalk errcodes handled apart: 130101 "send too fast" (a robot sends
// at most 20 messages a minute, then is throttled for 10 minutes), -1
// "system busy".
const (
	dingTalkRateLimited = 130101
	dingTalkBusy        = -1
)

// DingTalk sends to a DingTalk (钉钉) custom robot: one markdown message
// mentioning the person by mobile number (at.atMobiles, with "@mobile" in
// the text, without which DingTalk shows no mention), signed when the
// robot has a secret.
type DingTalk struct {
	webhook string
	secret  string
	ep      endpoint
}

var _ Channel = (*DingTalk)(nil)

// NewDingTalk returns the DingTalk robot channel.
func NewDingTalk(cfg DingTalkConfig) *DingTalk {
	return &DingTalk{
		webhook: strings.TrimSpace(cfg.Webhook),
		secret:  cfg.Secret,
		ep: endpoint{channel: NameDingTalk, zh: "钉钉机器人", en: "DingTalk robot",
			key: "response.channels.dingtalk.webhook", client: newClient(cfg.Timeout)},
	}
}

// Name is "dingtalk".
func (d *DingTalk) Name() string { return NameDingTalk }

type dingTalkMessage struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
	At struct {
		AtMobiles []string `json:"atMobiles"`
		IsAtAll   bool     `json:"isAtAll"`
	} `json:"at"`
}

// Send posts the markdown message.
func (d *DingTalk) Send(ctx context.Context, to Recipient, m Message) error {
	mobile := strings.TrimSpace(to.Mobile)
	if mobile == "" {
		return noMobile(NameDingTalk, "钉钉机器人无法 @ 提醒此人", "so the DingTalk robot cannot mention them", to)
	}
	target, err := d.target()
	if err != nil {
		return err
	}
	var msg dingTalkMessage
	msg.MsgType = "markdown"
	msg.Markdown.Title = headZh(m)
	msg.Markdown.Text = dingTalkText(m, mobile)
	msg.At.AtMobiles = []string{mobile}

	ans, e := d.ep.post(ctx, target, nil, msg)
	if e != nil {
		return e
	}
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if e := d.ep.decodeAnswer(ans, &r); e != nil {
		return e
	}
	if r.ErrCode == nil {
		return d.ep.notAnswer(ans, nil)
	}
	code := *r.ErrCode
	what := fmt.Sprintf("errcode %d: %s", code, r.ErrMsg)
	switch code {
	case 0:
		return nil
	case dingTalkRateLimited:
		return fail(NameDingTalk, true,
			"钉钉机器人限流 ("+what+") — 每个机器人每分钟最多 20 条，超过后限流 10 分钟，稍后自动重试",
			"DingTalk robot is rate limiting ("+what+"), at most 20 messages a minute, then 10 minutes throttled: will retry",
			ErrRateLimited)
	case dingTalkBusy:
		return fail(NameDingTalk, true,
			"钉钉系统繁忙 ("+what+") — 稍后自动重试",
			"DingTalk is busy ("+what+"): will retry",
			ErrUnavailable)
	}
	return fail(NameDingTalk, false,
		"钉钉机器人拒绝消息 ("+what+") — 检查 response.channels.dingtalk.webhook 与 secret（加签），以及机器人的关键词和 IP 白名单",
		"DingTalk robot refused the message ("+what+"): check response.channels.dingtalk.webhook and secret, and the robot's keywords and IP allow-list",
		ErrRejected)
}

// target is the webhook URL, with timestamp and sign when the robot has a
// secret: sign is the Base64 HMAC-SHA256 of "timestamp\nsecret" keyed by
// the secret, URL-encoded (DingTalk's 加签; the timestamp, in
// milliseconds, must be within an hour of DingTalk's clock).
func (d *DingTalk) target() (string, error) {
	if d.secret == "" {
		return d.webhook, nil
	}
	u, err := url.Parse(d.webhook)
	if err != nil {
		return "", fail(NameDingTalk, false, "钉钉机器人地址无效 — 检查 response.channels.dingtalk.webhook",
			"DingTalk robot URL is invalid: check response.channels.dingtalk.webhook", ErrConfig)
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := u.Query()
	q.Set("timestamp", ts)
	q.Set("sign", dingTalkSign(ts, d.secret))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dingTalkSign is the Base64 HMAC-SHA256 of "timestamp\nsecret" keyed by
// the secret (URL-encoding is the query's).
func dingTalkSign(ts, secret string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts + "\n" + secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// dingTalkText is the markdown text: Chinese, then English, then the
// mention. DingTalk's markdown needs a blank line to break a line.
func dingTalkText(m Message, mobile string) string {
	para := func(s string) string {
		return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\n")
	}
	var b strings.Builder
	b.WriteString("### " + headZh(m) + "\n\n")
	if m.BodyZh != "" {
		b.WriteString(para(m.BodyZh) + "\n\n")
	}
	if m.URL != "" {
		b.WriteString("[打开任务](" + m.URL + ")\n\n")
	}
	b.WriteString("**" + headEn(m) + "**\n\n")
	if m.BodyEn != "" {
		b.WriteString(para(m.BodyEn) + "\n\n")
	}
	if m.URL != "" {
		b.WriteString("[Open the task](" + m.URL + ")\n\n")
	}
	b.WriteString("@" + mobile)
	return b.String()
}
