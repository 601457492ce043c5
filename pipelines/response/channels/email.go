package channels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// Email sends over SMTP (net/smtp): one text/plain message, Chinese first,
// per task and person.
type Email struct{ cfg EmailConfig }

var _ Channel = (*Email)(nil)

// NewEmail returns the SMTP channel.
func NewEmail(cfg EmailConfig) *Email {
	cfg.Addr = strings.TrimSpace(cfg.Addr)
	cfg.Timeout = orDefault(cfg.Timeout)
	return &Email{cfg: cfg}
}

// Name is "email".
func (e *Email) Name() string { return NameEmail }

// Send delivers the message to to.Email. The attempt — dialling, STARTTLS,
// AUTH, MAIL, RCPT, DATA — is bounded by the configured timeout and ctx;
// once the server has accepted the DATA, a failing QUIT is ignored.
func (e *Email) Send(ctx context.Context, to Recipient, m Message) error {
	addr := strings.TrimSpace(to.Email)
	if addr == "" {
		who := person(to)
		return fail(NameEmail, false,
			who+" 没有登记电子邮箱 — 在人员信息中补全邮箱，或改用其他渠道",
			who+" has no e-mail address: add it to the person's record or use another channel",
			ErrNoEmail)
	}
	rcpt, err := mail.ParseAddress(addr)
	if err != nil {
		who := person(to)
		return fail(NameEmail, false,
			who+" 的电子邮箱 "+addr+" 无效 ("+err.Error()+") — 在人员信息中更正",
			who+"'s e-mail address "+addr+" is invalid ("+err.Error()+"): correct it in the person's record",
			ErrNoEmail, err)
	}
	from, err := mail.ParseAddress(e.cfg.From)
	if err != nil {
		return fail(NameEmail, false,
			"发件人地址无效 ("+err.Error()+") — 检查 response.channels.email.from",
			"the sender address is invalid ("+err.Error()+"): check response.channels.email.from",
			ErrConfig, err)
	}
	msg := e.compose(from, &mail.Address{Name: to.Name, Address: rcpt.Address}, to, m)
	return e.transmit(ctx, from.Address, rcpt.Address, msg)
}

// transmit runs one SMTP session.
func (e *Email) transmit(ctx context.Context, from, rcpt string, msg []byte) error {
	host, _, err := net.SplitHostPort(e.cfg.Addr)
	if err != nil {
		return fail(NameEmail, false,
			"邮件服务器地址无效 — response.channels.email.addr 须为 主机:端口",
			"the mail server address is invalid: response.channels.email.addr must be host:port",
			ErrConfig, err)
	}
	deadline := time.Now().Add(e.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", e.cfg.Addr)
	if err != nil {
		return e.stepErr(ctx, "connect", err)
	}
	// The deadline bounds the whole session; ending ctx moves it to now,
	// which interrupts whatever the client is blocked on.
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return e.stepErr(ctx, "connect", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return e.stepErr(ctx, "connect", err)
	}
	if e.cfg.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			conf := &tls.Config{ServerName: host, InsecureSkipVerify: e.cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
			if err := c.StartTLS(conf); err != nil {
				return e.stepErr(ctx, "starttls", err)
			}
		}
	}
	if e.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fail(NameEmail, false,
				"邮件服务器未提供登录 (AUTH) — 检查 response.channels.email.addr 与 starttls（很多服务器只在 STARTTLS 之后提供登录），或清空 username",
				"the mail server offers no AUTH: check response.channels.email.addr and starttls (many servers offer it only after STARTTLS), or clear username",
				ErrConfig)
		}
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, host)); err != nil {
			return e.stepErr(ctx, "auth", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return e.stepErr(ctx, "mail", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return e.stepErr(ctx, "rcpt", err)
	}
	w, err := c.Data()
	if err != nil {
		return e.stepErr(ctx, "data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return e.stepErr(ctx, "data", err)
	}
	if err := w.Close(); err != nil { // the server's verdict on the message
		return e.stepErr(ctx, "data", err)
	}
	_ = c.Quit() // accepted already: a failing QUIT must not cause a resend
	return nil
}

// smtpSteps name a session's steps in errors, and what to check when the
// server refuses one for good.
var smtpSteps = map[string]struct{ zh, en, fixZh, fixEn string }{
	"connect":  {"连接", "connect", "检查 response.channels.email.addr", "check response.channels.email.addr"},
	"starttls": {"STARTTLS 加密", "STARTTLS", "检查服务器证书（仅测试时可设 insecure_skip_verify），或关闭 response.channels.email.starttls", "check the server's certificate (insecure_skip_verify is for tests only) or turn off response.channels.email.starttls"},
	"auth":     {"登录", "AUTH", "检查 response.channels.email.username 与 password", "check response.channels.email.username and password"},
	"mail":     {"发件人", "MAIL FROM", "检查 response.channels.email.from 是否允许由此账号发送", "check that this account may send as response.channels.email.from"},
	"rcpt":     {"收件人", "RCPT TO", "核对此人的电子邮箱", "check the person's e-mail address"},
	"data":     {"邮件内容", "DATA", "检查邮件服务器的大小与内容限制", "check the mail server's size and content limits"},
}

// stepErr classifies an SMTP failure: 4xx replies, network errors and
// time-outs are temporary; 5xx replies, certificate and login problems
// permanent.
func (e *Email) stepErr(ctx context.Context, step string, err error) error {
	s := smtpSteps[step]
	if ctx.Err() != nil {
		return fail(NameEmail, true,
			"邮件发送已取消 (「"+s.zh+"」: "+ctx.Err().Error()+")",
			"sending e-mail was cancelled (at "+s.en+": "+ctx.Err().Error()+")",
			ErrUnavailable, ctx.Err())
	}
	temporary := func(sentinel error) error {
		return fail(NameEmail, true,
			"邮件发送在「"+s.zh+"」一步暂时失败 ("+err.Error()+") — 稍后自动重试；持续失败请检查 response.channels.email.addr",
			"e-mail failed temporarily at "+s.en+" ("+err.Error()+"): will retry; if it persists check response.channels.email.addr",
			sentinel, err)
	}
	permanent := func(sentinel error) error {
		return fail(NameEmail, false,
			"邮件服务器拒绝「"+s.zh+"」 ("+err.Error()+") — "+s.fixZh,
			"the mail server refused "+s.en+" ("+err.Error()+"): "+s.fixEn,
			sentinel, err)
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		if tp.Code/100 == 4 { // 421 closing, 450/451/452 try later
			return temporary(ErrUnavailable)
		}
		return permanent(ErrRejected)
	}
	var ne net.Error
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cv):
		return permanent(ErrConfig)
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return temporary(ErrUnavailable)
	case step == "auth" || step == "starttls":
		// net/smtp's own refusals (PLAIN over an unencrypted connection,
		// a wrong host name) and TLS alerts: configuration.
		return permanent(ErrConfig)
	}
	return temporary(ErrUnavailable)
}

// compose renders the MIME message: headers folded to 78 characters,
// then the base64 body in lines of 76.
func (e *Email) compose(from, to *mail.Address, r Recipient, m Message) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(foldHeader(k, v)) }
	date := m.At
	if date.IsZero() {
		date = time.Now()
	}
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("From", address(from))
	hdr("To", address(to))
	hdr("Subject", encodeWords(subject(m)))
	hdr("Message-ID", messageID(m, r, to.Address, from.Address))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=UTF-8")
	hdr("Content-Transfer-Encoding", "base64")
	hdr("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	b.WriteString("\r\n")
	body := base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(plainText(m), "\n", "\r\n")))
	for len(body) > 76 {
		b.WriteString(body[:76] + "\r\n")
		body = body[76:]
	}
	b.WriteString(body + "\r\n")
	return b.Bytes()
}

// subject is "【III级响应 · 橙色预警】中文标题 / English title".
func subject(m Message) string {
	s := headZh(m)
	if m.TitleEn != "" {
		s += " / " + m.TitleEn
	}
	return s
}

// address is a mailbox for a header: a name that is not plain ASCII as
// RFC 2047 words, otherwise as net/mail writes it.
func address(a *mail.Address) string {
	if a.Name == "" || plainASCII(a.Name) {
		return a.String()
	}
	return encodeWords(a.Name) + " <" + a.Address + ">"
}

// encodeWords is s as RFC 2047 B-encoded UTF-8 words ("=?UTF-8?b?…?=",
// as mime.BEncoding writes them) of at most 42 bytes of text each, whole
// characters only, so that with the field's name a word fits a 78-character
// line; plain ASCII stays as it is. Decoders drop the spaces between the
// words.
func encodeWords(s string) string {
	if plainASCII(s) {
		return s
	}
	const most = 42 // base64 of 42 bytes is 56 characters, a word 68
	var words []string
	start := 0
	for i, r := range s {
		if i+utf8.RuneLen(r)-start > most {
			words = append(words, mime.BEncoding.Encode("UTF-8", s[start:i]))
			start = i
		}
	}
	words = append(words, mime.BEncoding.Encode("UTF-8", s[start:]))
	for i, w := range words {
		if !strings.HasPrefix(w, "=?") { // an ASCII stretch: mime left it as it is
			words[i] = "=?UTF-8?b?" + base64.StdEncoding.EncodeToString([]byte(w)) + "?="
		}
	}
	return strings.Join(words, " ")
}

// plainASCII reports whether s can stand in a header unencoded.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\t' {
			return false
		}
	}
	return true
}

// foldHeader writes "Key: value\r\n", folding at spaces so that lines
// stay within 78 characters where the words allow.
func foldHeader(k, v string) string {
	var b strings.Builder
	line := k + ":"
	for i, w := range strings.Split(v, " ") {
		if i > 0 && len(line)+1+len(w) > 78 {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + w
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

// messageID is the same for every attempt at one task for one person:
// <task.<task id>.<hash of task, person and address>@<sender's domain>>.
func messageID(m Message, r Recipient, rcpt, from string) string {
	seed := m.TaskID
	if seed == "" { // not from the response service: the content stands in
		seed = strings.Join([]string{m.ResponseID, m.At.UTC().Format(time.RFC3339Nano), m.TitleZh, m.TitleEn, m.URL}, "\x00")
	}
	h := sha256.Sum256([]byte(seed + "\x00" + r.PersonID + "\x00" + rcpt))
	local := "task." + hex.EncodeToString(h[:8])
	if id := atom(m.TaskID); id != "" {
		local = "task." + id + "." + hex.EncodeToString(h[:6])
	}
	domain := "citybrain.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		if d := from[i+1:]; plainDomain(d) {
			domain = d
		}
	}
	return "<" + local + "@" + domain + ">"
}

// atom keeps the letters, digits, '-' and '_' of s (at most 64), dropping
// the rest: safe in a Message-ID's left part.
func atom(s string) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() >= 64 {
			break
		}
		if c < 128 && (c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// plainDomain reports whether d is an ASCII host name (labels of letters,
// digits and '-'), usable as a Message-ID's right part as it is.
func plainDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}
