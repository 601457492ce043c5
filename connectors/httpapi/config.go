package httpapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the HTTP transport's part of a source definition.
type Config struct {
	// URL is the endpoint, http or https; a query string in it is kept and
	// sent with every request. Its scheme, host and path (no query) name the
	// cursor stream.
	URL string `yaml:"url"`
	// Method is GET (default) or POST; POST sends the query parameters as an
	// application/x-www-form-urlencoded body instead of in the URL.
	Method string `yaml:"method"`
	// Query holds constant query parameters added to every first-page
	// request (service_code, $order …).
	Query map[string]string `yaml:"query"`
	// Headers are sent with every request (Accept defaults to
	// application/json).
	Headers map[string]string `yaml:"headers"`
	// Auth sends a secret token read from the environment.
	Auth Auth `yaml:"auth"`
	// Records is the dotted JSON path to the array of records in a response
	// ("" for a top-level array, "data.items" for {"data":{"items":[…]}}).
	// A missing or null array is an empty page.
	Records string `yaml:"records"`
	// Pagination says how to ask for the following page.
	Pagination Pagination `yaml:"pagination"`
	// Since makes the API incremental: only records newer than a value the
	// transport keeps in the cursor are requested.
	Since Since `yaml:"since"`
	// RateLimit is the most requests per second sent (retries included);
	// 0 means unlimited.
	RateLimit float64 `yaml:"rate_limit"`
	// Retry governs retries of 5xx, 408, 429 and network errors.
	Retry Retry `yaml:"retry"`
	// Timeout bounds one request including reading its body; default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRecordBytes is the largest record (its JSON text) mapped; larger
	// records become rejects carrying their first MaxRecordBytes bytes.
	// Default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxResponseBytes is the largest response body read; a larger one is a
	// permanent error (lower pagination.page_size). Default 64 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// Auth is a secret token sent in a header. The token itself never appears
// in configuration: it is read from the environment variable TokenEnv when
// the source is built.
type Auth struct {
	// TokenEnv names the environment variable holding the token; empty
	// means no authentication.
	TokenEnv string `yaml:"token_env"`
	// Header is the header carrying the token: Authorization (default) sends
	// "Bearer <token>", any other header (X-App-Token …) the bare token.
	Header string `yaml:"header"`
}

// Pagination kinds.
const (
	// PageNone: one request returns everything there is.
	PageNone = "none"
	// PageNumber: page_param=1,2,3… with size_param=page_size.
	PageNumber = "page"
	// PageOffset: offset_param=0,n,2n… with size_param=page_size.
	PageOffset = "offset"
	// PageCursor: cursor_param=<the next_cursor of the previous response>.
	PageCursor = "cursor"
	// PageLink: follow the next link (RFC 8288 Link header rel="next", or
	// the URL at the JSON path next_cursor).
	PageLink = "link"
)

// Pagination says how pages are requested. Every kind ends a pass over the
// API at the first empty page; cursor and link also end when the response
// names no next page.
type Pagination struct {
	// Kind is none (default), page, offset, cursor or link.
	Kind string `yaml:"kind"`
	// PageParam is the page-number parameter of kind page; default "page".
	PageParam string `yaml:"page_param"`
	// SizeParam is the page-size parameter; default "page_size" for kind
	// page, "limit" for offset and cursor, none for link and none.
	SizeParam string `yaml:"size_param"`
	// PageSize is the records per page asked for; default 100.
	PageSize int `yaml:"page_size"`
	// OffsetParam is the offset parameter of kind offset; default "offset".
	OffsetParam string `yaml:"offset_param"`
	// CursorParam is the cursor parameter of kind cursor; default "cursor".
	CursorParam string `yaml:"cursor_param"`
	// NextCursor is the dotted JSON path to the next page's cursor in a
	// response (kind cursor, required), or to the next page's URL (kind
	// link, optional: default the Link header).
	NextCursor string `yaml:"next_cursor"`
	// StartPage is the number of the first page of kind page; default 1.
	StartPage *int `yaml:"start_page"`
}

// Since configures incremental polling. The API is asked for records whose
// Field is at or after a value (inclusive, as Open311's start_date is); the
// value advances to the largest Field the transport has emitted.
type Since struct {
	// Param is the query parameter carrying the value (start_date,
	// updated_after, $where …); empty disables incremental polling.
	Param string `yaml:"param"`
	// Field is the dotted path of the record field holding its update time
	// or sequence number (updated_datetime, meta.seq).
	Field string `yaml:"field"`
	// Layout is the Go time layout of Field and Initial (e.g.
	// "2006-01-02T15:04:05Z07:00"); empty compares the values as numbers
	// when both are numbers, else as strings.
	Layout string `yaml:"layout"`
	// Initial is the value of the first request; empty omits Param (the
	// API's default range) until a record has been seen.
	Initial string `yaml:"initial"`
	// EndParam is the query parameter bounding the range from above
	// (Open311 end_date); it is sent as since+Window. Needs Window.
	EndParam string `yaml:"end_param"`
	// Window is the widest range asked for at once (Open311 servers allow
	// 90 days); needs Layout and EndParam. Windows advance until one
	// reaches the present.
	Window time.Duration `yaml:"window"`
}

// Retry is the retry policy for transient failures: exponential backoff
// from BaseDelay doubling to MaxDelay, with jitter (each delay is drawn
// from [d/2, d]); a Retry-After header (seconds or HTTP date) on a 429 or
// 503 replaces the computed delay, capped at MaxDelay.
type Retry struct {
	// MaxAttempts is the number of tries of one request; default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// BaseDelay is the first backoff delay; default 500ms.
	BaseDelay time.Duration `yaml:"base_delay"`
	// MaxDelay caps each delay; default 30s.
	MaxDelay time.Duration `yaml:"max_delay"`
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("http."+format, a...)) }
	if c.URL == "" {
		bad("url: required")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url %q: %v", c.URL, err)
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url %q: want an absolute http:// or https:// URL", c.URL)
	}
	switch strings.ToUpper(c.Method) {
	case "", "GET", "POST":
	default:
		bad("method %q: want GET or POST", c.Method)
	}
	if c.Auth.Header != "" && c.Auth.TokenEnv == "" {
		bad("auth.header %q: needs auth.token_env", c.Auth.Header)
	}
	p := c.Pagination
	switch p.Kind {
	case "", PageNone, PageNumber, PageOffset, PageLink:
	case PageCursor:
		if p.NextCursor == "" {
			bad("pagination.next_cursor: required for kind cursor (the JSON path of the next cursor)")
		}
	default:
		bad("pagination.kind %q: want none, page, offset, cursor or link", p.Kind)
	}
	if p.PageSize < 0 {
		bad("pagination.page_size %d: must not be negative", p.PageSize)
	}
	s := c.Since
	if (s.Param == "") != (s.Field == "") {
		bad("since: param and field go together (param asks the API, field advances the value)")
	}
	if s.Layout != "" && s.Initial != "" {
		if _, err := time.Parse(s.Layout, s.Initial); err != nil {
			bad("since.initial %q does not match since.layout %q: %v", s.Initial, s.Layout, err)
		}
	}
	if s.Window < 0 {
		bad("since.window %v: must not be negative", s.Window)
	}
	if (s.Window > 0) != (s.EndParam != "") {
		bad("since: end_param and window go together")
	}
	if s.Window > 0 && s.Layout == "" {
		bad("since.window: needs since.layout to compute the end of the range")
	}
	if s.Window > 0 && s.Param == "" {
		bad("since.window: needs since.param")
	}
	if c.RateLimit < 0 {
		bad("rate_limit %v: must not be negative", c.RateLimit)
	}
	if c.Retry.MaxAttempts < 0 || c.Retry.BaseDelay < 0 || c.Retry.MaxDelay < 0 {
		bad("retry: values must not be negative")
	}
	if c.Timeout < 0 || c.MaxRecordBytes < 0 || c.MaxResponseBytes < 0 {
		bad("timeout, max_record_bytes and max_response_bytes must not be negative")
	}
	return errors.Join(errs...)
}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	c.Method = strings.ToUpper(c.Method)
	if c.Method == "" {
		c.Method = "GET"
	}
	p := &c.Pagination
	if p.Kind == "" {
		p.Kind = PageNone
	}
	if p.SizeParam == "" {
		switch p.Kind {
		case PageNumber:
			p.SizeParam = "page_size"
		case PageOffset, PageCursor:
			p.SizeParam = "limit"
		}
	}
	if p.PageSize == 0 {
		p.PageSize = 100
	}
	if p.PageParam == "" {
		p.PageParam = "page"
	}
	if p.OffsetParam == "" {
		p.OffsetParam = "offset"
	}
	if p.CursorParam == "" {
		p.CursorParam = "cursor"
	}
	if p.StartPage == nil {
		one := 1
		p.StartPage = &one
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = 5
	}
	if c.Retry.BaseDelay == 0 {
		c.Retry.BaseDelay = 500 * time.Millisecond
	}
	if c.Retry.MaxDelay == 0 {
		c.Retry.MaxDelay = 30 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 64 << 20
	}
	return c
}

// Open311 is the profile of an Open311 GeoReport v2 server
// (https://wiki.open311.org/GeoReport_v2): GET {baseURL}/requests.json, a
// top-level array of service requests (service_request_id, status,
// service_name, description, requested_datetime, updated_datetime, lat,
// long, address …), paged with page/page_size as most servers (Mark-a-Spot,
// SeeClickFix, NYC …) do, pages of 100.
//
// It polls incrementally on requested_datetime, the field the standard's
// start_date/end_date filter (ISO 8601, inclusive) applies to, in windows
// of 90 days, the widest range the standard lets a server accept. With no
// since.initial the first request omits both and takes the server's
// default range (typically the last 90 days); set Since.Initial to backfill
// from a date. Servers that filter on updates (updated_after …) can set
// Since.Param and Since.Field = "updated_datetime" to also pick up changed
// requests, each as a new record.
func Open311(baseURL string) Config {
	return Config{
		URL:     strings.TrimSuffix(baseURL, "/") + "/requests.json",
		Method:  "GET",
		Headers: map[string]string{"Accept": "application/json"},
		Pagination: Pagination{
			Kind:      PageNumber,
			PageParam: "page",
			SizeParam: "page_size",
			PageSize:  100,
		},
		Since: Since{
			Param:    "start_date",
			EndParam: "end_date",
			Field:    "requested_datetime",
			Layout:   time.RFC3339,
			Window:   90 * 24 * time.Hour,
		},
		RateLimit: 2,
	}
}
