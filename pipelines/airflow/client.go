// Package airflow lets Apache Airflow schedule citybrain's extracts and
// model runs instead of the built-in scheduler: it writes DAG files whose
// tasks call the citybrain binary (Dags), and it is a small typed client
// of the few endpoints of Airflow's stable REST API that the platform uses
// (unpause a DAG, trigger a run, watch it to the end).
//
// Both API generations are spoken: Airflow 3's /api/v2 with a JWT from
// /auth/token, and Airflow 2's /api/v1 with basic auth. The official
// github.com/apache/airflow-client-go is not available from the module
// proxy; the calls are few and written here.
package airflow

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
	"sync"
	"time"
)

// API is the REST API generation.
type API string

// The two generations.
const (
	APIv2 API = "v2" // Airflow 3: /api/v2, bearer token from /auth/token
	APIv1 API = "v1" // Airflow 2: /api/v1, basic auth
)

// Client talks to one Airflow API server. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	user     string
	password string
	http     *http.Client

	mu    sync.Mutex
	api   API
	token string
}

// Errors.
var (
	// ErrNotFound: the DAG or run does not exist (a DAG file not yet parsed).
	ErrNotFound = errors.New("airflow: not found")
	// ErrAuth: Airflow refused the credentials.
	ErrAuth = errors.New("airflow: 认证失败 authentication failed (check --user and AIRFLOW_PASSWORD)")
)

// NewClient returns a client of the API server at baseURL
// (http://127.0.0.1:8080). api is APIv2, APIv1 or "" to detect it.
func NewClient(baseURL, user, password string, api API) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("airflow url %q: want http(s)://host:port", baseURL)
	}
	switch api {
	case "", APIv1, APIv2:
	default:
		return nil, fmt.Errorf("airflow api %q: want v1 (Airflow 2) or v2 (Airflow 3)", api)
	}
	return &Client{base: u, user: user, password: password, api: api, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// Version is GET /version.
type Version struct {
	Version    string `json:"version"`
	GitVersion string `json:"git_version"`
}

// DAG is the part of a DAG the platform reads.
type DAG struct {
	DagID          string   `json:"dag_id"`
	IsPaused       bool     `json:"is_paused"`
	HasImportError bool     `json:"has_import_errors"`
	Fileloc        string   `json:"fileloc"`
	Tags           []DAGTag `json:"tags"`
	// TimetableSummary is the schedule ("0 6 * * *").
	TimetableSummary string `json:"timetable_summary"`
	// ScheduleInterval is Airflow 2's schedule field: for a cron schedule
	// {"__type": "CronExpression", "value": "0 6 * * *"}.
	ScheduleInterval *ScheduleInterval `json:"schedule_interval,omitempty"`
}

// ScheduleInterval is Airflow 2's typed schedule.
type ScheduleInterval struct {
	Type  string `json:"__type"`
	Value string `json:"value"`
}

// Schedule is the DAG's cron schedule, from whichever field the server's
// generation fills ("" when it has none).
func (d DAG) Schedule() string {
	if d.TimetableSummary != "" {
		return d.TimetableSummary
	}
	if d.ScheduleInterval != nil {
		return d.ScheduleInterval.Value
	}
	return ""
}

// DAGTag is a DAG's tag.
type DAGTag struct {
	Name string `json:"name"`
}

// DAGRun is one run of a DAG.
type DAGRun struct {
	DagID         string     `json:"dag_id"`
	RunID         string     `json:"dag_run_id"`
	LogicalDate   *time.Time `json:"logical_date"`
	State         string     `json:"state"` // queued, running, success, failed
	StartDate     *time.Time `json:"start_date"`
	EndDate       *time.Time `json:"end_date"`
	RunType       string     `json:"run_type"`
	DataIntervalE *time.Time `json:"data_interval_end"`
}

// Done reports whether the run reached a final state.
func (r DAGRun) Done() bool { return r.State == "success" || r.State == "failed" }

// TaskInstance is one task of a run.
type TaskInstance struct {
	TaskID    string     `json:"task_id"`
	State     *string    `json:"state"`
	TryNumber int        `json:"try_number"`
	StartDate *time.Time `json:"start_date"`
	EndDate   *time.Time `json:"end_date"`
}

// StateString is the task's state ("none" when not yet scheduled).
func (t TaskInstance) StateString() string {
	if t.State == nil {
		return "none"
	}
	return *t.State
}

// TriggerRequest starts a DAG run.
type TriggerRequest struct {
	// RunID names the run (empty: Airflow picks one).
	RunID string
	// LogicalDate is the scheduled time the run covers (nil: none; Airflow
	// 3 allows that, Airflow 2 uses now).
	LogicalDate *time.Time
	// Conf is passed to the run.
	Conf map[string]any
}

// API is the detected (or configured) API generation.
func (c *Client) API(ctx context.Context) (API, error) {
	c.mu.Lock()
	api := c.api
	c.mu.Unlock()
	if api != "" {
		return api, nil
	}
	// Airflow 3 serves /api/v2/version; Airflow 2 answers 404 there.
	for _, try := range []API{APIv2, APIv1} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/api/"+string(try)+"/version", nil)
		if try == APIv1 {
			req.SetBasicAuth(c.user, c.password)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return "", fmt.Errorf("airflow %s: %w (is the API server running?)", c.base, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			c.mu.Lock()
			c.api = try
			c.mu.Unlock()
			return try, nil
		}
	}
	return "", fmt.Errorf("airflow %s: neither /api/v2 nor /api/v1 answers; is it an Airflow API server?", c.base)
}

// login gets a JWT from /auth/token (Airflow 3).
func (c *Client) login(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": c.user, "password": c.password})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+"/auth/token", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("airflow login: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", ErrAuth
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("airflow login: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("airflow login: no access_token in the answer")
	}
	c.mu.Lock()
	c.token = tok.AccessToken
	c.mu.Unlock()
	return tok.AccessToken, nil
}

// do sends one API call; path is below /api/vN. A 401 on v2 logs in again
// once (tokens expire).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	api, err := c.API(ctx)
	if err != nil {
		return err
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base.String()+"/api/"+string(api)+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if api == APIv1 {
			req.SetBasicAuth(c.user, c.password)
		} else {
			c.mu.Lock()
			tok := c.token
			c.mu.Unlock()
			if tok == "" {
				if tok, err = c.login(ctx); err != nil {
					return err
				}
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("airflow %s %s: %w", method, path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusUnauthorized && api == APIv2 && attempt == 0:
			c.mu.Lock()
			c.token = ""
			c.mu.Unlock()
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %s %s: HTTP %d", ErrAuth, method, path, resp.StatusCode)
		case resp.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %s", ErrNotFound, path)
		case resp.StatusCode/100 != 2:
			return fmt.Errorf("airflow %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("airflow %s %s: %w", method, path, err)
			}
		}
		return nil
	}
}

// Version asks the server's version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	return v, c.do(ctx, http.MethodGet, "/version", nil, &v)
}

// DAG reads one DAG (ErrNotFound until its file was parsed).
func (c *Client) DAG(ctx context.Context, dagID string) (DAG, error) {
	var d DAG
	return d, c.do(ctx, http.MethodGet, "/dags/"+url.PathEscape(dagID), nil, &d)
}

// WaitDAG polls until the DAG exists (the dag processor has parsed its
// file), every poll, until ctx ends.
func (c *Client) WaitDAG(ctx context.Context, dagID string, poll time.Duration) (DAG, error) {
	for {
		d, err := c.DAG(ctx, dagID)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return d, err
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("airflow: DAG %s did not appear (is its file in the dags folder? see the dag processor's log): %w", dagID, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// SetPaused pauses or unpauses a DAG.
func (c *Client) SetPaused(ctx context.Context, dagID string, paused bool) (DAG, error) {
	var d DAG
	err := c.do(ctx, http.MethodPatch, "/dags/"+url.PathEscape(dagID)+"?update_mask=is_paused", map[string]bool{"is_paused": paused}, &d)
	return d, err
}

// Trigger starts a run of a DAG.
func (c *Client) Trigger(ctx context.Context, dagID string, tr TriggerRequest) (DAGRun, error) {
	body := map[string]any{"conf": tr.Conf}
	if tr.Conf == nil {
		body["conf"] = map[string]any{}
	}
	if tr.RunID != "" {
		body["dag_run_id"] = tr.RunID
	}
	api, err := c.API(ctx)
	if err != nil {
		return DAGRun{}, err
	}
	if tr.LogicalDate != nil {
		body["logical_date"] = tr.LogicalDate.UTC().Format(time.RFC3339)
	} else if api == APIv2 {
		body["logical_date"] = nil // required (nullable) in Airflow 3
	}
	var r DAGRun
	err = c.do(ctx, http.MethodPost, "/dags/"+url.PathEscape(dagID)+"/dagRuns", body, &r)
	return r, err
}

// Run reads one run.
func (c *Client) Run(ctx context.Context, dagID, runID string) (DAGRun, error) {
	var r DAGRun
	return r, c.do(ctx, http.MethodGet, "/dags/"+url.PathEscape(dagID)+"/dagRuns/"+url.PathEscape(runID), nil, &r)
}

// TaskInstances lists a run's tasks.
func (c *Client) TaskInstances(ctx context.Context, dagID, runID string) ([]TaskInstance, error) {
	var out struct {
		TaskInstances []TaskInstance `json:"task_instances"`
	}
	err := c.do(ctx, http.MethodGet, "/dags/"+url.PathEscape(dagID)+"/dagRuns/"+url.PathEscape(runID)+"/taskInstances", nil, &out)
	return out.TaskInstances, err
}

// watchMaxFailures is how many failed polls in a row end a Watch.
const watchMaxFailures = 5

// Watch polls a run until it succeeds or fails (or ctx ends), calling
// progress whenever the run's or a task's state changes.
func (c *Client) Watch(ctx context.Context, dagID, runID string, poll time.Duration, progress func(DAGRun, []TaskInstance)) (DAGRun, error) {
	last := ""
	failures := 0
	for {
		r, err := c.Run(ctx, dagID, runID)
		var tis []TaskInstance
		if err == nil {
			tis, err = c.TaskInstances(ctx, dagID, runID)
		}
		if err != nil {
			// A busy API server may time out or answer 5xx for a moment: keep
			// watching through a few failed polls in a row, not through a
			// refused login or a run that does not exist.
			failures++
			if errors.Is(err, ErrAuth) || errors.Is(err, ErrNotFound) || failures >= watchMaxFailures || ctx.Err() != nil {
				return r, err
			}
			select {
			case <-ctx.Done():
				return r, err
			case <-time.After(poll):
			}
			continue
		}
		failures = 0
		sig := r.State
		for _, t := range tis {
			sig += "|" + t.TaskID + "=" + t.StateString()
		}
		if sig != last && progress != nil {
			progress(r, tis)
		}
		last = sig
		if r.Done() {
			if r.State == "failed" {
				return r, fmt.Errorf("airflow: run %s of %s failed; see its task logs in the Airflow UI", runID, dagID)
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("airflow: watching run %s of %s: %w (still %s)", runID, dagID, ctx.Err(), r.State)
		case <-time.After(poll):
		}
	}
}
