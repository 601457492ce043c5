package extracts

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// deliver sends the file of m to every destination of d.
func (r *Runner) deliver(ctx context.Context, d Definition, m *Manifest) []DeliveryResult {
	var out []DeliveryResult
	for _, dl := range d.Delivery {
		var res DeliveryResult
		switch dl.Type {
		case "dir":
			res = DeliveryResult{Type: "dir", Target: dl.Path, Attempts: 1}
			res.Error = errString(r.deliverDir(dl, m))
		case "http":
			res = r.deliverHTTP(ctx, dl, m)
		case "mail":
			res = DeliveryResult{Type: "mail", Target: strings.Join(dl.To, ","), Attempts: 1}
			res.Error = errString(r.deliverMail(dl, d, m))
		}
		res.Status = "ok"
		if res.Error != "" {
			res.Status = "failed"
			r.log.Error("extract delivery failed", "extract", d.Name, "type", res.Type, "target", res.Target, "err", res.Error)
		}
		out = append(out, res)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func manifestJSON(m *Manifest) []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// deliverDir copies the file and its manifest into the folder (atomically:
// a reader never sees half a file).
func (r *Runner) deliverDir(dl Delivery, m *Manifest) error {
	if err := os.MkdirAll(dl.Path, 0o755); err != nil {
		return err
	}
	src, err := os.Open(r.FilePath(m))
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dl.Path, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Readable by the department's staff, like the manifest (CreateTemp
	// makes 0600).
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dl.Path, m.File)); err != nil {
		return err
	}
	mtmp := filepath.Join(dl.Path, ".tmp-"+m.File+".manifest.json")
	if err := os.WriteFile(mtmp, manifestJSON(m), 0o644); err != nil {
		return err
	}
	return os.Rename(mtmp, filepath.Join(dl.Path, m.File+".manifest.json"))
}

// deliverHTTP POSTs multipart/form-data (manifest, file), retrying 5xx,
// 429 and network errors with doubling backoff. A 4xx other than 429 is
// final: the receiver refused the file.
func (r *Runner) deliverHTTP(ctx context.Context, dl Delivery, m *Manifest) DeliveryResult {
	res := DeliveryResult{Type: "http", Target: dl.URL}
	backoff := dl.Backoff
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		retry, err := r.postOnce(ctx, dl, m)
		if err == nil {
			res.Error = ""
			return res
		}
		res.Error = err.Error()
		if !retry || attempt > dl.Retries || ctx.Err() != nil {
			return res
		}
		r.log.Warn("extract http delivery failed; retrying", "extract", m.Extract, "url", dl.URL, "attempt", attempt, "retry_in", backoff, "err", err)
		if r.Sleep(ctx, backoff) != nil {
			return res
		}
		backoff *= 2
	}
}

func (r *Runner) postOnce(ctx context.Context, dl Delivery, m *Manifest) (retry bool, err error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mh := textproto.MIMEHeader{}
	mh.Set("Content-Disposition", `form-data; name="manifest"; filename="manifest.json"`)
	mh.Set("Content-Type", "application/json")
	pw, err := mw.CreatePart(mh)
	if err != nil {
		return false, err
	}
	pw.Write(manifestJSON(m))
	fh := textproto.MIMEHeader{}
	fh.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": m.File}))
	fh.Set("Content-Type", contentType(m.Format))
	fw, err := mw.CreatePart(fh)
	if err != nil {
		return false, err
	}
	f, err := os.Open(r.FilePath(m))
	if err != nil {
		return false, err
	}
	_, err = io.Copy(fw, f)
	f.Close()
	if err != nil {
		return false, err
	}
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, &body)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Citybrain-Extract", m.Extract)
	req.Header.Set("X-Citybrain-Delivery", m.ID)
	req.Header.Set("X-Citybrain-SHA256", m.SHA256)
	for k, v := range dl.Headers {
		req.Header.Set(k, os.ExpandEnv(v))
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}

func contentType(format string) string {
	switch format {
	case "csv":
		return "text/csv"
	case "xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case "parquet":
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}

// ErrNoSMTP: a mail delivery without extracts.smtp.host.
var ErrNoSMTP = errors.New("未配置邮件服务器 extracts.smtp.host is not set; configure it to deliver by mail")

// deliverMail sends the file as an attachment.
func (r *Runner) deliverMail(dl Delivery, d Definition, m *Manifest) error {
	s := r.cfg.SMTP
	if s.Host == "" {
		return ErrNoSMTP
	}
	from := s.From
	if from == "" {
		from = "citybrain@localhost"
	}
	subject := dl.Subject
	if subject == "" {
		title := d.Title
		if title == "" {
			title = d.Name
		}
		subject = fmt.Sprintf("数据提取 %s %s / extract %s", title, m.Period.Format("2006-01-02 15:04"), d.Name)
	}
	var msg bytes.Buffer
	mw := multipart.NewWriter(&msg)
	hdr := func(k, v string) { fmt.Fprintf(&msg, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(dl.To, ", "))
	hdr("Subject", mime.BEncoding.Encode("UTF-8", subject))
	hdr("Date", m.Started.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+m.ID+"."+strconv.FormatInt(m.Started.UnixNano(), 36)+"@citybrain>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	msg.WriteString("\r\n")
	th := textproto.MIMEHeader{}
	th.Set("Content-Type", "text/plain; charset=UTF-8")
	th.Set("Content-Transfer-Encoding", "base64")
	tw, _ := mw.CreatePart(th)
	body := fmt.Sprintf("附件为 %s 的数据提取（%s），共 %d 行，SHA-256 %s。\r\nAttached: extract %s for %s, %d rows, SHA-256 %s.\r\n",
		d.Name, m.Period.Format("2006-01-02 15:04"), m.Rows, m.SHA256, d.Name, m.Period.Format(time.RFC3339), m.Rows, m.SHA256)
	writeBase64(tw, []byte(body))
	ah := textproto.MIMEHeader{}
	ah.Set("Content-Type", contentType(m.Format))
	ah.Set("Content-Transfer-Encoding", "base64")
	ah.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.File}))
	aw, _ := mw.CreatePart(ah)
	file, err := os.ReadFile(r.FilePath(m))
	if err != nil {
		return err
	}
	writeBase64(aw, file)
	mh := textproto.MIMEHeader{}
	mh.Set("Content-Type", "application/json")
	mh.Set("Content-Transfer-Encoding", "base64")
	mh.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.File + ".manifest.json"}))
	mfw, _ := mw.CreatePart(mh)
	writeBase64(mfw, manifestJSON(m))
	mw.Close()
	return r.sendMail(from, dl.To, msg.Bytes())
}

func writeBase64(w io.Writer, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		io.WriteString(w, enc[:76]+"\r\n")
		enc = enc[76:]
	}
	io.WriteString(w, enc+"\r\n")
}

func (r *Runner) sendMail(from string, to []string, msg []byte) error {
	s := r.cfg.SMTP
	port := s.Port
	if port == 0 {
		port = 25
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(port))
	c, err := smtp.Dial(addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello("citybrain"); err != nil {
		return err
	}
	if s.StartTLS {
		if err := c.StartTLS(&tls.Config{ServerName: s.Host}); err != nil {
			return fmt.Errorf("smtp STARTTLS: %w", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, r.SMTPPassword, s.Host)); err != nil {
			return fmt.Errorf("smtp auth (password from CITYBRAIN_SMTP_PASSWORD): %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, t := range to {
		if err := c.Rcpt(t); err != nil {
			return fmt.Errorf("smtp RCPT %s: %w", t, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
