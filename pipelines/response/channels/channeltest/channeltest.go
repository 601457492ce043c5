// Package channeltest provides local receivers for the notification
// channels' tests: an SMTP server and webhook recorders.
package channeltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- SMTP ----

// SMTP is a minimal SMTP receiver: EHLO, STARTTLS (when given a TLS
// config), AUTH PLAIN (when given a user), MAIL, RCPT, DATA, RSET, NOOP,
// QUIT.
type SMTP struct {
	ln         net.Listener
	tls        *tls.Config
	user, pass string
	wg         sync.WaitGroup

	mu       sync.Mutex
	mails    []Mail
	rcptFail []int // replies to the next RCPTs instead of 250
	sessions int
}

// Mail is one message the SMTP receiver accepted, with its envelope and
// how its session went.
type Mail struct {
	From        string
	Rcpt        []string
	Data        []byte
	TLS, Authed bool
}

// StartSMTP starts an SMTP receiver on 127.0.0.1 at a free port; t's
// cleanup closes it and waits for its sessions to end. With conf it offers
// STARTTLS; with a user it offers AUTH PLAIN (after STARTTLS when conf is
// set) and wants it before MAIL.
func StartSMTP(t testing.TB, conf *tls.Config, user, pass string) *SMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTP{ln: ln, tls: conf, user: user, pass: pass}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.session(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// Addr is the receiver's host:port.
func (s *SMTP) Addr() string { return s.ln.Addr().String() }

// Received is the messages accepted so far, in order.
func (s *SMTP) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mails)
}

// Sessions counts the connections the receiver has taken.
func (s *SMTP) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// FailNextRcpt makes the receiver answer the next RCPTs with these codes
// (451 for a temporary failure, 550 for a permanent one), one each, instead
// of 250.
func (s *SMTP) FailNextRcpt(codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptFail = append(s.rcptFail, codes...)
}

func (s *SMTP) session(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	tp := textproto.NewConn(c)
	say := func(format string, args ...any) { tp.PrintfLine(format, args...) }
	path := func(arg string) string { // "FROM:<a@b> BODY=8BITMIME" → a@b
		_, rest, _ := strings.Cut(arg, "<")
		p, _, _ := strings.Cut(rest, ">")
		return p
	}
	say("220 127.0.0.1 ESMTP test")
	var cur Mail
	inTLS, authed := false, false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"127.0.0.1 hello", "8BITMIME"}
			if s.tls != nil && !inTLS {
				ext = append(ext, "STARTTLS")
			}
			if s.user != "" && (s.tls == nil || inTLS) {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				say("250%s%s", sep, e)
			}
		case "STARTTLS":
			if s.tls == nil || inTLS {
				say("502 5.5.1 not now")
				continue
			}
			say("220 2.0.0 ready")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, tp, inTLS = tc, textproto.NewConn(tc), true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			raw, _ := base64.StdEncoding.DecodeString(resp)
			if s.user != "" && mech == "PLAIN" && string(raw) == "\x00"+s.user+"\x00"+s.pass {
				authed = true
				say("235 2.7.0 authenticated")
			} else {
				say("535 5.7.8 authentication credentials invalid")
			}
		case "MAIL":
			if s.user != "" && !authed {
				say("530 5.7.0 authentication required")
				continue
			}
			cur = Mail{From: path(arg), TLS: inTLS, Authed: authed}
			say("250 2.1.0 ok")
		case "RCPT":
			s.mu.Lock()
			code := 0
			if len(s.rcptFail) > 0 {
				code, s.rcptFail = s.rcptFail[0], s.rcptFail[1:]
			}
			s.mu.Unlock()
			if code != 0 {
				say("%d %d.1.1 not now or not here", code, code/100)
				continue
			}
			cur.Rcpt = append(cur.Rcpt, path(arg))
			say("250 2.1.5 ok")
		case "DATA":
			say("354 end data with <CR><LF>.<CR><LF>")
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			cur.Data = data
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			say("250 2.0.0 queued")
		case "RSET", "NOOP":
			say("250 2.0.0 ok")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 unknown command")
		}
	}
}

// Cert is a self-signed certificate for 127.0.0.1, valid for an hour
// either side of now.
func Cert(t testing.TB) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "citybrain test smtp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ---- HTTP ----

// Recorder is a local webhook receiver: it records every request and
// answers with the planned replies, then with the ok reply. It takes POST
// only, and reads each request's body before anything else.
type Recorder struct {
	*httptest.Server
	// Check, when set, may refuse a request as the real service would
	// (bad signature, bad token) with a non-zero status. Set it before the
	// first request, or with SetCheck.
	Check func(r *http.Request, body []byte) (int, string)

	mu    sync.Mutex
	reqs  []Request
	plan  []Reply
	ok    int // requests answered with the ok reply
	okRep Reply
}

// Request is one request a Recorder received.
type Request struct {
	Header http.Header
	Query  url.Values
	Path   string
	Body   []byte
}

// Reply is an answer a Recorder gives: a status and a body, sent as
// application/json.
type Reply struct {
	Status int
	Body   string
}

// StartRecorder starts a Recorder answering ok once its plan is spent;
// t's cleanup closes it.
func StartRecorder(t testing.TB, ok Reply) *Recorder {
	rec := &Recorder{okRep: ok}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, Request{Header: r.Header.Clone(), Query: r.URL.Query(), Path: r.URL.Path, Body: body})
		check := rec.Check
		rec.mu.Unlock()
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if check != nil {
			if status, msg := check(r, body); status != 0 {
				w.WriteHeader(status)
				io.WriteString(w, msg)
				return
			}
		}
		rec.mu.Lock()
		rep := rec.okRep
		if len(rec.plan) > 0 {
			rep, rec.plan = rec.plan[0], rec.plan[1:]
		} else {
			rec.ok++
		}
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.Status)
		io.WriteString(w, rep.Body)
	}))
	t.Cleanup(rec.Close)
	return rec
}

// SetCheck sets Check under the recorder's lock, so it may be called while
// requests arrive.
func (rec *Recorder) SetCheck(fn func(r *http.Request, body []byte) (int, string)) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.Check = fn
}

// Requests is the requests received so far, in order, refused ones too.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}

// Then plans the replies to the next POSTs that Check lets through, one
// each, before the ok reply.
func (rec *Recorder) Then(replies ...Reply) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.plan = append(rec.plan, replies...)
}

// OKs counts the requests answered with the ok reply.
func (rec *Recorder) OKs() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.ok
}
