package channels

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Message is one notification about a response task.
type Message struct {
	TaskID, ResponseID string
	// Level is the plan's response level, I to IV.
	Level string
	// WarningLevel is the warning's colour: blue, yellow, orange or red.
	WarningLevel     string
	TitleZh, TitleEn string
	// BodyZh and BodyEn are the duty text and anything else the person
	// needs; plain text, newlines kept.
	BodyZh, BodyEn string
	// URL is the absolute link to the task in the responder app.
	URL string
	// At is when the task was created; the e-mail's Date.
	At time.Time
}

// Recipient is a person.
type Recipient struct{ PersonID, Name, Mobile, Email string }

// Channel sends a message to a recipient.
type Channel interface {
	// Name is the channel's name: "email", "sms", "wecom" or "dingtalk".
	Name() string
	// Send makes one delivery attempt and does not retry (Deliver does).
	// It returns nil once the receiving service has accepted the message,
	// or an *Error saying whether another attempt may succeed. It returns
	// when ctx ends, with a temporary error. Send is safe for concurrent
	// use.
	Send(ctx context.Context, to Recipient, m Message) error
}

// Channel names, the keys of New's map.
const (
	NameEmail    = "email"
	NameWeCom    = "wecom"
	NameDingTalk = "dingtalk"
	NameSMS      = "sms"
)

// Sentinels wrapped by the errors of every channel, for errors.Is.
var (
	// ErrNoEmail: the recipient has no (valid) e-mail address.
	ErrNoEmail = errors.New("recipient has no e-mail address")
	// ErrNoMobile: the recipient has no mobile number, needed by sms and by
	// the robots' @-mention.
	ErrNoMobile = errors.New("recipient has no mobile number")
	// ErrRateLimited: the receiving service asked us to slow down (HTTP
	// 429, WeCom errcode 45009, DingTalk errcode 130101); temporary.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the receiving service could not be reached or failed
	// (network error, time-out, HTTP 5xx, SMTP 4xx); temporary.
	ErrUnavailable = errors.New("service unavailable")
	// ErrRejected: the receiving service refused the message (HTTP 4xx,
	// errcode or code ≠ 0, SMTP 5xx); permanent unless the code is one of
	// the temporary ones above.
	ErrRejected = errors.New("message refused")
	// ErrConfig: the channel's configuration cannot work (no from
	// address, a webhook that is not a URL); permanent.
	ErrConfig = errors.New("channel misconfigured")
)

// Error is the error of a failed Send.
type Error struct {
	// Channel is the channel's name.
	Channel string
	// Temporary says another attempt may succeed.
	Temporary bool
	Err       error
}

func (e *Error) Error() string { return e.Channel + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether err, returned by a Send, is worth another
// attempt: an *Error says so itself; any other non-nil error (a channel
// not from this package) is taken as temporary.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary
	}
	return true
}

// failure is an Error's Err: what happened and what to do, in Chinese and
// then in English, wrapping a sentinel and the cause.
type failure struct {
	zh, en string
	errs   []error
}

func (f *failure) Error() string   { return f.zh + " / " + f.en }
func (f *failure) Unwrap() []error { return f.errs }

// fail builds a channel's *Error; causes are the sentinel and the
// underlying error (nil ones are dropped).
func fail(channel string, temporary bool, zh, en string, causes ...error) *Error {
	f := &failure{zh: zh, en: en}
	for _, c := range causes {
		if c != nil {
			f.errs = append(f.errs, c)
		}
	}
	return &Error{Channel: channel, Temporary: temporary, Err: f}
}

// noMobile is the error of a robot or SMS send to a person without a
// mobile number.
func noMobile(channel, zhWhy, enWhy string, to Recipient) *Error {
	who := person(to)
	return fail(channel, false,
		who+" 没有登记手机号，"+zhWhy+" — 在人员信息中补全手机号，或改用其他渠道",
		who+" has no mobile number, "+enWhy+": add it to the person's record or use another channel",
		ErrNoMobile)
}

// person names a recipient in errors: "张三 (P001)".
func person(to Recipient) string {
	switch {
	case to.Name != "" && to.PersonID != "":
		return to.Name + " (" + to.PersonID + ")"
	case to.Name != "":
		return to.Name
	case to.PersonID != "":
		return to.PersonID
	}
	return "recipient"
}

// New returns the configured channels by name: those with a non-empty
// email.addr, wecom.webhook, dingtalk.webhook or sms.url. Call
// Config.Validate first; a zero timeout is the default one.
func New(cfg Config) map[string]Channel {
	chans := map[string]Channel{}
	if strings.TrimSpace(cfg.Email.Addr) != "" {
		chans[NameEmail] = NewEmail(cfg.Email)
	}
	if strings.TrimSpace(cfg.WeCom.Webhook) != "" {
		chans[NameWeCom] = NewWeCom(cfg.WeCom)
	}
	if strings.TrimSpace(cfg.DingTalk.Webhook) != "" {
		chans[NameDingTalk] = NewDingTalk(cfg.DingTalk)
	}
	if strings.TrimSpace(cfg.SMS.URL) != "" {
		chans[NameSMS] = NewSMS(cfg.SMS)
	}
	return chans
}
