// Package httpapi is the HTTP transport: it polls a JSON HTTP API (an
// Open311 GeoReport v2 server, a department's REST endpoint, an open-data
// portal) page by page and maps each JSON record onto a canonical schema
// through the same declarative mapping as files — so a new API is a YAML
// definition, not Go code. Records are JSON objects; nested objects are
// flattened into dotted column names ("location.latitude") for the mapping.
//
// # Cursors
//
// An API is one stream, named by the endpoint URL without its query. Pos is
// a sequence number the transport assigns: the count of records emitted in
// the stream so far (Pos of the last record in the from positions, plus
// one for each new record), so it strictly grows across reads. Token is the
// resume state after the record, url.Values-encoded, e.g.
//
//	page=3&since=2022-05-01T00:30:00-04:00&skip=17&max=…&tm=…
//
// It names the request that returned the record (page number, offset,
// cursor or link of its page, and the since value of the pass) and how many
// records of that page were already handled (skip), so a Read given it
// requests that page again and continues with the next record — no loss and
// no duplicate even when a read stopped in the middle of a page, and a page
// that was the last and not full yields exactly what was added to it since.
// A cursor without a token (a position recovered from Pos alone) replays
// the API from the start and skips Pos records.
//
// With Since configured, a pass asks for records whose Field is at or after
// the since value (inclusive). The token also carries the largest Field
// emitted in the pass (max) and the set of records emitted with exactly
// that value (tm), each as a 64-bit hash of its compact JSON text. When a
// pass is exhausted the next one starts at since = max and drops the
// records whose hash is in the set (ts: the ties carried into the pass), so
// records sharing the boundary time are neither lost (the parameter is
// inclusive) nor sent twice; a record changed since it was sent hashes
// differently and is sent again as a new version. The token grows with the
// number of records sharing one boundary value. Records older than the
// since value (a server ignoring the parameter) are dropped client-side.
//
// Like any paged API read, exactness assumes pages are stable for a given
// query: new records appear after the ones already paged (ascending order
// on Field for since-based APIs).
//
// # Errors
//
// 4xx answers other than 408 and 429 (bad URL, refused credentials, 404)
// are connectors.ErrPermanent. 5xx, 408, 429, timeouts and network errors
// are retried with exponential backoff and jitter (honouring Retry-After),
// then returned as ordinary errors for the caller to retry later.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
)

// Source polls one HTTP API through a mapping.
type Source struct {
	cfg    Config
	mapper *mapping.Mapper
	base   *url.URL
	stream string
	token  string // auth token read from the environment
	client *http.Client
	now    func() time.Time // the present, for since windows (tests set it)

	mu     sync.Mutex
	bounds *mapping.BindCache // header signature → binding
	next   time.Time          // rate limiter: earliest next request
}

var _ connectors.Source = (*Source)(nil)

// New returns an HTTP source. It reads the auth token from the environment.
func New(cfg Config, m *mapping.Mapper) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("httpapi: a mapping is required")
	}
	cfg = cfg.withDefaults()
	u, _ := url.Parse(cfg.URL)
	s := &Source{
		cfg:    cfg,
		mapper: m,
		base:   u,
		stream: u.Scheme + "://" + u.Host + u.Path,
		client: &http.Client{Timeout: cfg.Timeout},
		now:    time.Now,
		bounds: mapping.NewBindCache(m),
	}
	if env := cfg.Auth.TokenEnv; env != "" {
		s.token = os.Getenv(env)
		if s.token == "" {
			return nil, fmt.Errorf("http.auth.token_env: environment variable %s is empty or unset", env)
		}
	}
	return s, nil
}

// Stream is the name of the source's cursor stream: the URL without query.
func (s *Source) Stream() string { return s.stream }

// state is where a read is: the resume state encoded in tokens.
type state struct {
	since  string   // since value of the pass; "" = none sent
	ts     []string // hashes of records at value since emitted before the pass
	page   int      // kind page: page number
	offset int      // kind offset: offset of the page
	cursor string   // kind cursor: cursor of the page ("" = first); kind link: URL of the page
	skip   int      // records of the page already handled
	max    string   // largest Field emitted in the pass (since mode)
	tm     []string // hashes of records at value max emitted (since mode)
}

func (st *state) encode(kind string) string {
	v := url.Values{}
	if st.since != "" {
		v.Set("since", st.since)
	}
	if len(st.ts) > 0 {
		v.Set("ts", strings.Join(st.ts, ","))
	}
	switch kind {
	case PageNumber:
		v.Set("page", strconv.Itoa(st.page))
	case PageOffset:
		v.Set("offset", strconv.Itoa(st.offset))
	case PageCursor:
		if st.cursor != "" {
			v.Set("cursor", st.cursor)
		}
	case PageLink:
		if st.cursor != "" {
			v.Set("link", st.cursor)
		}
	}
	v.Set("skip", strconv.Itoa(st.skip))
	if st.max != "" {
		v.Set("max", st.max)
	}
	if len(st.tm) > 0 {
		v.Set("tm", strings.Join(st.tm, ","))
	}
	return v.Encode()
}

func decodeState(token string, kind string, startPage int) (state, error) {
	v, err := url.ParseQuery(token)
	if err != nil {
		return state{}, err
	}
	num := func(key string, def int) (int, error) {
		s := v.Get(key)
		if s == "" {
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 && key != "page" {
			return 0, fmt.Errorf("%s=%q is not a count", key, s)
		}
		return n, nil
	}
	list := func(key string) []string {
		if s := v.Get(key); s != "" {
			return strings.Split(s, ",")
		}
		return nil
	}
	st := state{since: v.Get("since"), ts: list("ts"), max: v.Get("max"), tm: list("tm")}
	if st.page, err = num("page", startPage); err != nil {
		return st, err
	}
	if st.offset, err = num("offset", 0); err != nil {
		return st, err
	}
	if st.skip, err = num("skip", 0); err != nil {
		return st, err
	}
	st.cursor = v.Get("cursor")
	if kind == PageLink {
		st.cursor = v.Get("link")
	}
	return st, nil
}

// initial is the state of a read from scratch.
func (s *Source) initial() state {
	st := state{since: s.cfg.Since.Initial, page: *s.cfg.Pagination.StartPage}
	st.max = st.since
	return st
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context, from connectors.Positions, emit connectors.Emit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kind := s.cfg.Pagination.Kind
	st := s.initial()
	var pos int64
	discard := 0 // records to drop when resuming from a Pos without a token
	if c, ok := from[s.stream]; ok && c.Pos > 0 {
		pos = c.Pos
		if c.Token == "" {
			discard = int(c.Pos)
		} else {
			var err error
			if st, err = decodeState(c.Token, kind, *s.cfg.Pagination.StartPage); err != nil {
				return fmt.Errorf("%w: %s: cursor token %q is not one of this transport: %v", connectors.ErrPermanent, s.stream, c.Token, err)
			}
		}
	}
	sinceMode := s.cfg.Since.Param != ""
	var header, row []string
	var lastPage uint64 // hash of the previous page, to catch ignored paging
	for {               // passes
		lastPage = 0
		for { // pages of a pass
			if err := ctx.Err(); err != nil {
				return err
			}
			recs, next, err := s.fetch(ctx, &st)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				break
			}
			if kind == PageNumber || kind == PageOffset {
				h := hashPage(recs)
				if h == lastPage {
					return fmt.Errorf("%w: %s: the API answered the same page twice: does it support http.pagination (%s)?", connectors.ErrPermanent, s.stream, kind)
				}
				lastPage = h
			}
			batch := make([]connectors.Record, 0, len(recs))
			for i, raw := range recs {
				if i < st.skip {
					continue
				}
				st.skip = i + 1
				rec := connectors.Record{}
				tooBig := len(raw) > s.cfg.MaxRecordBytes
				var ferr error
				if !tooBig {
					header, row, ferr = flatten(raw, header[:0], row[:0])
				}
				if sinceMode && !tooBig && ferr == nil {
					if !s.advanceSince(&st, raw, header, row) {
						continue // before the since value, or a tie already sent
					}
				}
				if discard > 0 {
					discard--
					continue
				}
				switch {
				case tooBig:
					rec.Err = fmt.Errorf("record of %d bytes exceeds http.max_record_bytes %d (raw truncated) / 记录过大", len(raw), s.cfg.MaxRecordBytes)
					rec.Raw = append([]byte(nil), raw[:s.cfg.MaxRecordBytes]...)
				case ferr != nil:
					rec.Err = ferr
				default:
					var b *mapping.Bound
					if b, rec.Err = s.bounds.Bind(header); rec.Err == nil {
						rec.Values, rec.Err = b.Map(row)
					}
				}
				if rec.Err != nil && rec.Raw == nil {
					rec.Values = nil
					rec.Raw = append([]byte(nil), raw...)
				}
				pos++
				rec.Cursor = connectors.Cursor{Stream: s.stream, Pos: pos, Token: st.encode(kind)}
				batch = append(batch, rec)
			}
			st.skip = len(recs)
			if len(batch) > 0 {
				if err := emit(ctx, batch); err != nil {
					return err
				}
			}
			// The following page.
			more := true
			switch kind {
			case PageNumber:
				st.page++
			case PageOffset:
				st.offset += len(recs)
			case PageCursor, PageLink:
				if next == "" || next == st.cursor {
					more = false
				} else {
					st.cursor = next
				}
			default:
				more = false
			}
			if !more {
				break
			}
			st.skip = 0
		}
		if !sinceMode || !s.nextPass(&st) {
			return nil
		}
	}
}

// advanceSince filters a record by the pass's since value and ties, and
// records its Field in the state. It reports whether to emit the record.
func (s *Source) advanceSince(st *state, raw []byte, header, row []string) bool {
	val := ""
	for i, h := range header {
		if h == s.cfg.Since.Field {
			val = row[i]
			break
		}
	}
	if val == "" {
		return true // no usable Field: emit, the since value is unchanged
	}
	h := hashRecord(raw)
	if st.since != "" {
		c, ok := s.compare(val, st.since)
		if ok && c < 0 {
			return false // older than asked: the server ignored the filter
		}
		if ok && c == 0 && contains(st.ts, h) {
			return false // sent in the previous pass
		}
	}
	if st.max == "" {
		st.max, st.tm = val, []string{h}
		return true
	}
	c, ok := s.compare(val, st.max)
	switch {
	case !ok:
	case c > 0:
		st.max, st.tm = val, []string{h}
	case c == 0:
		if contains(st.tm, h) {
			return false // the same record twice at the boundary
		}
		st.tm = append(st.tm, h)
	}
	return true
}

// nextPass moves st to the next pass of a since-based API and reports
// whether there is one: when the since value advances (to the largest Field
// emitted, or to the end of an exhausted window in the past).
func (s *Source) nextPass(st *state) bool {
	next, ties := st.since, st.ts
	if st.max != "" {
		if c, ok := s.compare(st.max, next); next == "" || ok && c > 0 {
			next, ties = st.max, st.tm
		} else if ok && c == 0 {
			ties = st.tm // tm holds ts and this pass's ties at since
		}
	}
	if end, ok := s.windowEnd(st.since); ok && end.Before(s.now()) {
		e := end.Format(s.cfg.Since.Layout)
		if c, ok := s.compare(e, next); ok && c > 0 {
			next, ties = e, nil
		}
	}
	if c, ok := s.compare(next, st.since); st.since != "" && (!ok || c <= 0) || next == "" {
		return false
	}
	*st = state{since: next, ts: ties, page: *s.cfg.Pagination.StartPage, max: next, tm: ties}
	return true
}

// windowEnd is the end of the range asked for with since.
func (s *Source) windowEnd(since string) (time.Time, bool) {
	if s.cfg.Since.Window <= 0 || since == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(s.cfg.Since.Layout, since)
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(s.cfg.Since.Window), true
}

// compare orders two Field values: as times with a layout, else as numbers
// when both are, else as strings. ok is false when they cannot be ordered.
func (s *Source) compare(a, b string) (int, bool) {
	if l := s.cfg.Since.Layout; l != "" {
		ta, err1 := time.Parse(l, a)
		tb, err2 := time.Parse(l, b)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return ta.Compare(tb), true
	}
	fa, err1 := strconv.ParseFloat(a, 64)
	fb, err2 := strconv.ParseFloat(b, 64)
	if err1 == nil && err2 == nil {
		switch {
		case fa < fb:
			return -1, true
		case fa > fb:
			return 1, true
		}
		return 0, true
	}
	return strings.Compare(a, b), true
}

func hashRecord(raw []byte) string {
	h := fnv.New64a()
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		raw = b.Bytes()
	}
	h.Write(raw)
	return strconv.FormatUint(h.Sum64(), 36)
}

func hashPage(recs []json.RawMessage) uint64 {
	h := fnv.New64a()
	for _, r := range recs {
		h.Write(r)
		h.Write([]byte{0})
	}
	return h.Sum64()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// request builds the URL and body of the request for st's page.
func (s *Source) request(st *state) (string, string) {
	p := s.cfg.Pagination
	if p.Kind == PageLink && st.cursor != "" {
		return st.cursor, ""
	}
	u := *s.base
	q := u.Query()
	for k, v := range s.cfg.Query {
		q.Set(k, v)
	}
	if sc := s.cfg.Since; sc.Param != "" && st.since != "" {
		q.Set(sc.Param, st.since)
		if end, ok := s.windowEnd(st.since); ok {
			q.Set(sc.EndParam, end.Format(sc.Layout))
		}
	}
	if p.SizeParam != "" {
		q.Set(p.SizeParam, strconv.Itoa(p.PageSize))
	}
	switch p.Kind {
	case PageNumber:
		q.Set(p.PageParam, strconv.Itoa(st.page))
	case PageOffset:
		q.Set(p.OffsetParam, strconv.Itoa(st.offset))
	case PageCursor:
		if st.cursor != "" {
			q.Set(p.CursorParam, st.cursor)
		}
	}
	if s.cfg.Method == "POST" {
		u.RawQuery = ""
		return u.String(), q.Encode()
	}
	u.RawQuery = q.Encode()
	return u.String(), ""
}

// fetch gets st's page: its records and the next cursor or link.
func (s *Source) fetch(ctx context.Context, st *state) ([]json.RawMessage, string, error) {
	target, form := s.request(st)
	body, hdr, err := s.do(ctx, target, form)
	if err != nil {
		return nil, "", err
	}
	arr, err := lookup(body, s.cfg.Records)
	if err != nil {
		return nil, "", s.bodyError(target, body, err)
	}
	var recs []json.RawMessage
	if arr != nil {
		if err := json.Unmarshal(arr, &recs); err != nil {
			return nil, "", s.bodyError(target, body, fmt.Errorf("records %q is not an array", s.cfg.Records))
		}
	}
	next := ""
	switch p := s.cfg.Pagination; {
	case p.Kind == PageCursor || p.Kind == PageLink && p.NextCursor != "":
		v, err := lookup(body, p.NextCursor)
		if err != nil {
			return nil, "", s.bodyError(target, body, err)
		}
		if v != nil {
			if next, err = scalarText(v); err != nil {
				return nil, "", s.bodyError(target, body, err)
			}
		}
	case p.Kind == PageLink:
		next = nextLink(hdr)
	}
	if next != "" && s.cfg.Pagination.Kind == PageLink {
		if ref, err := url.Parse(next); err == nil {
			if base, err := url.Parse(target); err == nil {
				next = base.ResolveReference(ref).String()
			}
		}
	}
	return recs, next, nil
}

// bodyError: a 2xx body that is not what the configuration says. Invalid
// JSON may be a truncated answer (retry later); valid JSON of the wrong
// shape is a configuration error.
func (s *Source) bodyError(target string, body []byte, err error) error {
	if !json.Valid(body) {
		return fmt.Errorf("%s: response is not valid JSON (%d bytes)", redact(target), len(body))
	}
	return fmt.Errorf("%w: %s: %v (check http.records / http.pagination.next_cursor)", connectors.ErrPermanent, redact(target), err)
}

// nextLink finds rel="next" in Link headers (RFC 8288).
func nextLink(h http.Header) string {
	for _, line := range h.Values("Link") {
		for _, part := range strings.Split(line, ",") {
			segs := strings.Split(part, ";")
			ref := strings.TrimSpace(segs[0])
			if !strings.HasPrefix(ref, "<") || !strings.HasSuffix(ref, ">") {
				continue
			}
			for _, p := range segs[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "rel") {
					for _, r := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
						if strings.EqualFold(r, "next") {
							return ref[1 : len(ref)-1]
						}
					}
				}
			}
		}
	}
	return ""
}

// redact drops the query of a URL for messages (it may hold keys).
func redact(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

// errRetry is a failure worth retrying; after is the server's Retry-After.
type errRetry struct {
	err   error
	after time.Duration
	has   bool
}

func (e *errRetry) Error() string { return e.err.Error() }
func (e *errRetry) Unwrap() error { return e.err }

// do sends one request with rate limiting and retries.
func (s *Source) do(ctx context.Context, target, form string) ([]byte, http.Header, error) {
	rc := s.cfg.Retry
	var last error
	for attempt := 1; ; attempt++ {
		if err := s.wait(ctx); err != nil {
			return nil, nil, err
		}
		body, hdr, err := s.once(ctx, target, form)
		if err == nil {
			return body, hdr, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var re *errRetry
		if !errors.As(err, &re) {
			return nil, nil, err
		}
		last = re.err
		if attempt >= rc.MaxAttempts {
			break
		}
		delay := rc.BaseDelay << (attempt - 1)
		if delay > rc.MaxDelay || delay <= 0 {
			delay = rc.MaxDelay
		}
		delay = delay/2 + rand.N(delay/2+1)
		if re.has {
			delay = min(re.after, rc.MaxDelay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
	return nil, nil, fmt.Errorf("%s: giving up after %d attempts: %w", redact(target), rc.MaxAttempts, last)
}

// wait applies the rate limit.
func (s *Source) wait(ctx context.Context) error {
	if s.cfg.RateLimit <= 0 {
		return ctx.Err()
	}
	interval := time.Duration(float64(time.Second) / s.cfg.RateLimit)
	s.mu.Lock()
	now := time.Now()
	at := s.next
	if at.Before(now) {
		at = now
	}
	s.next = at.Add(interval)
	s.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// once sends one request and classifies its failure.
func (s *Source) once(ctx context.Context, target, form string) ([]byte, http.Header, error) {
	var rd io.Reader
	if form != "" {
		rd = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, s.cfg.Method, target, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, redact(target), err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "citybrain-httpapi")
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if s.token != "" {
		h := s.cfg.Auth.Header
		if h == "" || strings.EqualFold(h, "Authorization") {
			req.Header.Set("Authorization", "Bearer "+s.token)
		} else {
			req.Header.Set(h, s.token)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) && !ue.Timeout() && isPermanentURLError(ue) {
			return nil, nil, fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, redact(target), ue.Err)
		}
		return nil, nil, &errRetry{err: fmt.Errorf("%s: %v", redact(target), errNoURL(err))}
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxResponseBytes+1))
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, &errRetry{err: fmt.Errorf("%s: reading the response: %v", redact(target), errNoURL(err))}
		}
		if int64(len(body)) > s.cfg.MaxResponseBytes {
			return nil, nil, fmt.Errorf("%w: %s: response larger than http.max_response_bytes %d (lower http.pagination.page_size)", connectors.ErrPermanent, redact(target), s.cfg.MaxResponseBytes)
		}
		return body, resp.Header, nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	msg := fmt.Errorf("%s: HTTP %s: %s", redact(target), resp.Status, strings.TrimSpace(strings.ToValidUTF8(string(snippet), "?")))
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		after, has := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, nil, &errRetry{err: msg, after: after, has: has}
	case code >= 400:
		hint := ""
		switch code {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = " (credentials refused: check http.auth)"
		case http.StatusNotFound:
			hint = " (check http.url)"
		}
		return nil, nil, fmt.Errorf("%w: %v%s", connectors.ErrPermanent, msg, hint)
	}
	return nil, nil, msg // 1xx/3xx the client did not handle: try again later
}

// errNoURL unwraps a *url.Error, whose message repeats the full URL.
func errNoURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// isPermanentURLError: failures of the request itself rather than of the
// network (unsupported scheme, malformed redirect).
func isPermanentURLError(ue *url.Error) bool {
	msg := ue.Err.Error()
	return strings.Contains(msg, "unsupported protocol scheme") || strings.Contains(msg, "stopped after 10 redirects")
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
