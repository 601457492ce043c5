package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// userAgent identifies the platform to the receiving services.
const userAgent = "citybrain"

// maxAnswer is the most of an answer's body read.
const maxAnswer = 1 << 20

// endpoint is the HTTP side shared by the webhook channels.
type endpoint struct {
	channel string
	zh, en  string // the service's name: 企业微信机器人, WeCom robot
	key     string // the configuration key of its URL
	authKey string // the configuration key of its credential, for 401/403
	client  *http.Client
}

// post sends body as JSON to target and returns the body of a 2xx answer.
// Network errors, time-outs, 429 and 5xx are temporary, other statuses
// permanent.
func (e endpoint) post(ctx context.Context, target string, header http.Header, body any) ([]byte, *Error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fail(e.channel, false, "消息无法编码为 JSON — 这是程序错误，请报告", "the message cannot be encoded as JSON: a bug, please report it", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(data))
	if err != nil {
		return nil, fail(e.channel, false, e.zh+"地址无效 — 检查 "+e.key, e.en+" URL is invalid: check "+e.key, ErrConfig)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, e.unreachable(ctx, target, err)
	}
	defer resp.Body.Close()
	ans, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if s := snippet(ans); s != "" && resp.StatusCode/100 != 2 {
		status += ": " + s
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, fail(e.channel, true,
			e.zh+"限流 ("+status+") — 稍后自动重试；经常出现请减少发送频率",
			e.en+" is rate limiting ("+status+"): will retry; if frequent, send less often",
			ErrRateLimited)
	case resp.StatusCode >= 500:
		return nil, fail(e.channel, true,
			e.zh+"暂时不可用 ("+status+") — 稍后自动重试",
			e.en+" is unavailable ("+status+"): will retry",
			ErrUnavailable)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		k := e.key
		if e.authKey != "" {
			k = e.authKey
		}
		return nil, fail(e.channel, false,
			e.zh+"拒绝认证 ("+status+") — 检查 "+k,
			e.en+" refused the credentials ("+status+"): check "+k,
			ErrRejected)
	case resp.StatusCode/100 != 2:
		return nil, fail(e.channel, false,
			e.zh+"拒绝请求 ("+status+") — 检查 "+e.key,
			e.en+" refused the request ("+status+"): check "+e.key,
			ErrRejected)
	}
	if rerr != nil {
		return nil, fail(e.channel, true,
			e.zh+"的应答读取失败 ("+rerr.Error()+") — 稍后自动重试（可能重复发送）",
			e.en+" answer was cut off ("+rerr.Error()+"): will retry (the person may get it twice)",
			ErrUnavailable, rerr)
	}
	return ans, nil
}

// unreachable is the temporary error of a request that got no answer.
// The URL is named without its query, which holds the robots' keys.
func (e endpoint) unreachable(ctx context.Context, target string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	where := "POST " + redact(target)
	if ctx.Err() != nil {
		return fail(e.channel, true,
			"发送已取消 ("+where+": "+ctx.Err().Error()+")",
			"sending was cancelled ("+where+": "+ctx.Err().Error()+")",
			ErrUnavailable, ctx.Err())
	}
	return fail(e.channel, true,
		"无法连接"+e.zh+" ("+where+": "+err.Error()+") — 稍后自动重试；持续失败请检查网络和 "+e.key,
		"cannot reach the "+e.en+" ("+where+": "+err.Error()+"): will retry; if it persists check the network and "+e.key,
		ErrUnavailable, err)
}

// decodeAnswer parses a 2xx answer's JSON into v; a body that is not JSON
// means the URL is not the service's.
func (e endpoint) decodeAnswer(ans []byte, v any) *Error {
	if err := json.Unmarshal(ans, v); err != nil {
		return e.notAnswer(ans, err)
	}
	return nil
}

// notAnswer is the permanent error of a 2xx answer that is not the
// service's: the URL points elsewhere (a proxy's login page …).
func (e endpoint) notAnswer(ans []byte, err error) *Error {
	return fail(e.channel, false,
		e.zh+"的应答不是预期的 JSON ("+snippet(ans)+") — 检查 "+e.key+" 是否指向该服务",
		e.en+" answered with something other than its JSON ("+snippet(ans)+"): check that "+e.key+" points to it",
		ErrRejected, err)
}

// newClient is an HTTP client for one channel. It does not follow
// redirects: Go would repeat a POST answered with 301 or 302 as a GET,
// and the message would be lost; a redirect is reported instead.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       orDefault(timeout),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// redact is a URL without its query and fragment.
func redact(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// snippet is the start of an answer's body, on one line, for errors.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	return clipBytes(s, 200)
}
