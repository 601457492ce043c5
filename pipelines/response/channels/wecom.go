package channels

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// WeCom limits from its robot document (群机器人配置说明): a text message's
// content is at most 2048 bytes, a markdown message's 4096.
const (
	weComTextMax     = 2048
	weComMarkdownMax = 4096
)

// WeCom errcodes handled apart: 45009 is its frequency limit (a robot
// sends at most 20 messages a minute), -1 "system busy".
const (
	weComRateLimited = 45009
	weComBusy        = -1
)

// WeCom sends to a WeCom (企业微信) group robot: the message as markdown,
// then a short text message mentioning the person by mobile number, since
// WeCom mentions by mobile only in text messages (mentioned_mobile_list);
// markdown knows only <@userid>.
type WeCom struct {
	webhook string
	ep      endpoint

	// half holds the sends whose markdown was accepted but not their
	// mention, so that their retry sends only the mention (each robot
	// message counts against the 20 a minute). Entries leave when the
	// mention is accepted; the map is emptied if it ever grows large.
	mu   sync.Mutex
	half map[string]bool
}

var _ Channel = (*WeCom)(nil)

// NewWeCom returns the WeCom robot channel.
func NewWeCom(cfg WebhookConfig) *WeCom {
	return &WeCom{
		webhook: strings.TrimSpace(cfg.Webhook),
		ep: endpoint{channel: NameWeCom, zh: "企业微信机器人", en: "WeCom robot",
			key: "response.channels.wecom.webhook", client: newClient(cfg.Timeout)},
		half: map[string]bool{},
	}
}

// Name is "wecom".
func (w *WeCom) Name() string { return NameWeCom }

type weComText struct {
	Content             string   `json:"content"`
	MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
}

type weComMarkdown struct {
	Content string `json:"content"`
}

type weComMessage struct {
	MsgType  string         `json:"msgtype"`
	Text     *weComText     `json:"text,omitempty"`
	Markdown *weComMarkdown `json:"markdown,omitempty"`
}

// Send posts the markdown message and then the mention.
func (w *WeCom) Send(ctx context.Context, to Recipient, m Message) error {
	mobile := strings.TrimSpace(to.Mobile)
	if mobile == "" {
		return noMobile(NameWeCom, "企业微信机器人无法 @ 提醒此人", "so the WeCom robot cannot mention them", to)
	}
	key := m.TaskID + "\x00" + to.PersonID + "\x00" + mobile
	w.mu.Lock()
	done := w.half[key]
	w.mu.Unlock()
	if !done {
		md := weComMessage{MsgType: "markdown", Markdown: &weComMarkdown{Content: clipBytes(weComMarkdownText(m), weComMarkdownMax)}}
		if err := w.post(ctx, md); err != nil {
			return err
		}
		w.mu.Lock()
		if len(w.half) >= 4096 {
			clear(w.half)
		}
		w.half[key] = true
		w.mu.Unlock()
	}
	mention := weComMessage{MsgType: "text", Text: &weComText{
		Content:             clipBytes(weComMentionText(to, m), weComTextMax),
		MentionedMobileList: []string{mobile},
	}}
	if err := w.post(ctx, mention); err != nil {
		return err
	}
	w.mu.Lock()
	delete(w.half, key)
	w.mu.Unlock()
	return nil
}

// post sends one robot message and checks its errcode.
func (w *WeCom) post(ctx context.Context, msg weComMessage) error {
	ans, e := w.ep.post(ctx, w.webhook, nil, msg)
	if e != nil {
		return e
	}
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if e := w.ep.decodeAnswer(ans, &r); e != nil {
		return e
	}
	if r.ErrCode == nil {
		return w.ep.notAnswer(ans, nil)
	}
	code := *r.ErrCode
	what := fmt.Sprintf("errcode %d: %s", code, r.ErrMsg)
	switch code {
	case 0:
		return nil
	case weComRateLimited:
		return fail(NameWeCom, true,
			"企业微信机器人限流 ("+what+") — 每个机器人每分钟最多 20 条，稍后自动重试",
			"WeCom robot is rate limiting ("+what+"), at most 20 messages a minute per robot: will retry",
			ErrRateLimited)
	case weComBusy:
		return fail(NameWeCom, true,
			"企业微信系统繁忙 ("+what+") — 稍后自动重试",
			"WeCom is busy ("+what+"): will retry",
			ErrUnavailable)
	}
	return fail(NameWeCom, false,
		"企业微信机器人拒绝消息 ("+what+") — 检查 response.channels.wecom.webhook",
		"WeCom robot refused the message ("+what+"): check response.channels.wecom.webhook",
		ErrRejected)
}

// weComMarkdownText is the markdown message: Chinese, then English.
// WeCom's markdown breaks lines at \n and colours text with
// <font color="warning|info|comment">.
func weComMarkdownText(m Message) string {
	var b strings.Builder
	if t := tagZh(m); t != "" {
		b.WriteString(`### <font color="warning">【` + t + `】</font>` + m.TitleZh + "\n")
	} else {
		b.WriteString("### " + m.TitleZh + "\n")
	}
	if m.BodyZh != "" {
		b.WriteString(strings.TrimRight(m.BodyZh, "\n") + "\n")
	}
	if m.URL != "" {
		b.WriteString("[打开任务](" + m.URL + ")\n")
	}
	b.WriteString("\n**" + headEn(m) + "**\n")
	if m.BodyEn != "" {
		b.WriteString(strings.TrimRight(m.BodyEn, "\n") + "\n")
	}
	if m.URL != "" {
		b.WriteString("[Open the task](" + m.URL + ")")
	}
	return strings.TrimRight(b.String(), "\n")
}

// weComMentionText is the text message carrying the mention.
func weComMentionText(to Recipient, m Message) string {
	name := to.Name
	if name == "" {
		name = to.PersonID
	}
	s := "请 " + name + " 查收" + headZh(m) + "\n" + name + ", please acknowledge: " + headEn(m)
	if m.URL != "" {
		s += "\n" + m.URL
	}
	return s
}
