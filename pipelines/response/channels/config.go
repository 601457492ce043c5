package channels

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one attempt of a channel whose timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures the channels; a channel whose address (email.addr,
// wecom.webhook, dingtalk.webhook, sms.url) is empty is off.
type Config struct {
	Email    EmailConfig    `yaml:"email"`
	WeCom    WebhookConfig  `yaml:"wecom"`
	DingTalk DingTalkConfig `yaml:"dingtalk"`
	SMS      SMSConfig      `yaml:"sms"`
}

// EmailConfig configures the SMTP channel.
type EmailConfig struct {
	// Addr is the SMTP server, host:port (587 for submission).
	Addr string `yaml:"addr"`
	// From is the sender, "城市大脑 <noreply@example.gov.cn>" or a bare
	// address; its domain also ends the Message-ID.
	From string `yaml:"from"`
	// Username and Password log in with AUTH PLAIN when Username is set;
	// net/smtp sends them only over TLS or to localhost.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// StartTLS upgrades the connection when the server offers STARTTLS.
	StartTLS bool `yaml:"starttls"`
	// InsecureSkipVerify accepts any server certificate; for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Timeout bounds one attempt, from dialling to QUIT; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// WebhookConfig configures the WeCom group robot.
type WebhookConfig struct {
	// Webhook is the robot's URL,
	// https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=….
	Webhook string `yaml:"webhook"`
	// Timeout bounds one request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DingTalkConfig configures the DingTalk custom robot.
type DingTalkConfig struct {
	// Webhook is the robot's URL,
	// https://oapi.dingtalk.com/robot/send?access_token=….
	Webhook string `yaml:"webhook"`
	// Secret is the robot's signing secret (加签, "SEC…"); empty when the
	// robot is secured by keywords or IP addresses instead.
	Secret string `yaml:"secret"`
	// Timeout bounds one request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// SMSConfig configures the SMS gateway webhook.
type SMSConfig struct {
	// URL is the gateway's send endpoint.
	URL string `yaml:"url"`
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string `yaml:"token"`
	// Template is the id of the approved SMS template, which receives the
	// parameters level, title and url.
	Template string `yaml:"template"`
	// Sign is the approved signature name (短信签名), e.g. 西城应急.
	Sign string `yaml:"sign"`
	// Timeout bounds one request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig has every channel off, STARTTLS on and 10 s timeouts.
func DefaultConfig() Config {
	return Config{
		Email:    EmailConfig{StartTLS: true, Timeout: DefaultTimeout},
		WeCom:    WebhookConfig{Timeout: DefaultTimeout},
		DingTalk: DingTalkConfig{Timeout: DefaultTimeout},
		SMS:      SMSConfig{Timeout: DefaultTimeout},
	}
}

// Validate checks the configured channels.
func (c Config) Validate() error {
	const p = "response.channels."
	var errs []error
	if e := c.Email; e.Addr != "" {
		if _, port, err := net.SplitHostPort(e.Addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf(p+"email.addr: %q is not host:port / 邮件服务器地址须为 主机:端口", e.Addr))
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			errs = append(errs, fmt.Errorf(p+"email.from: %q is not an e-mail address (%v) / 须设置发件人地址", e.From, err))
		}
		if e.Username == "" && e.Password != "" {
			errs = append(errs, errors.New(p+"email.password is set without email.username / 设置了密码但没有用户名"))
		}
	}
	for _, w := range []struct{ key, url string }{{"wecom.webhook", c.WeCom.Webhook}, {"dingtalk.webhook", c.DingTalk.Webhook}, {"sms.url", c.SMS.URL}} {
		if w.url == "" {
			continue
		}
		if u, err := url.Parse(w.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf(p+"%s: not an http(s) URL / 须为 http(s) 地址", w.key))
		}
	}
	if c.SMS.URL != "" && strings.TrimSpace(c.SMS.Template) == "" {
		errs = append(errs, errors.New(p+"sms.template is required with sms.url (the gateway's approved template id) / 须设置短信模板编号"))
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"email.timeout", c.Email.Timeout}, {"wecom.timeout", c.WeCom.Timeout}, {"dingtalk.timeout", c.DingTalk.Timeout}, {"sms.timeout", c.SMS.Timeout}} {
		if t.d < 0 {
			errs = append(errs, fmt.Errorf(p+"%s must not be negative (0 = %s) / 超时不能为负", t.key, DefaultTimeout))
		}
	}
	return errors.Join(errs...)
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}
