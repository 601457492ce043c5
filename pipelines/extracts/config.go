package extracts

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"citybrain/pipelines/scheduler"
)

// Config is the extracts section of citybrain.yaml.
type Config struct {
	// Dir is an optional directory of extract definition files (*.yaml),
	// one definition or a list per file; relative to the working directory.
	Dir string `yaml:"dir"`
	// OutputDir is where files, manifests and history are kept; relative
	// to data_dir.
	OutputDir string `yaml:"output_dir"`
	// Scheduler is the built-in scheduler's behaviour.
	Scheduler scheduler.Config `yaml:"scheduler"`
	// SMTP is the mail server for mail deliveries.
	SMTP SMTPConfig `yaml:"smtp"`
	// Definitions are the extracts.
	Definitions []Definition `yaml:"definitions"`
}

// SMTPConfig is the mail server. The password comes from the environment
// variable CITYBRAIN_SMTP_PASSWORD, never from the file.
type SMTPConfig struct {
	// Host and Port of the server (e.g. smtp.bjxch.gov.cn:587).
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// From is the sender address.
	From string `yaml:"from"`
	// Username for AUTH PLAIN (empty: no authentication).
	Username string `yaml:"username"`
	// StartTLS: require STARTTLS before authenticating.
	StartTLS bool `yaml:"starttls"`
}

// Definition is one extract.
type Definition struct {
	// Name is the extract's id ([a-z0-9_-]).
	Name string `yaml:"name" json:"name"`
	// Title is shown to people (zh-CN first).
	Title string `yaml:"title" json:"title,omitempty"`
	// Department receives it; its row scope (auth.departments) is applied.
	Department string `yaml:"department" json:"department"`
	// Source is what is read: a table or a query.
	Source Source `yaml:"source" json:"source"`
	// Columns to deliver, in order (table sources; empty = all).
	Columns []string `yaml:"columns" json:"columns,omitempty"`
	// OrderBy makes the output stable (table sources; default: all
	// delivered columns in order). SQL sources must have an ORDER BY.
	OrderBy []string `yaml:"order_by" json:"order_by,omitempty"`
	// PII rules per column.
	PII []PIIRule `yaml:"pii" json:"pii,omitempty"`
	// Suppress lists count columns whose values below the k-threshold
	// (auth.suppress_below) are blanked; the people counts of
	// raw.mobile_signal and raw.crowd_counts are always included.
	Suppress []string `yaml:"suppress" json:"suppress,omitempty"`
	// Format is csv, xlsx or parquet.
	Format string `yaml:"format" json:"format"`
	// Encoding of csv: utf-8-bom (default) or gb18030.
	Encoding string `yaml:"encoding" json:"encoding,omitempty"`
	// Header of csv and xlsx: bilingual (default: "观测时间 observed_at",
	// the Chinese label of a lake table's field before its name) or names
	// (the column names only, for programs). Parquet has the names.
	Header string `yaml:"header" json:"header,omitempty"`
	// FileName is a template: {name}, {department}, {period:LAYOUT} (Go
	// time layout, the period in the schedule's zone), {ext}.
	FileName string `yaml:"file_name" json:"file_name,omitempty"`
	// Schedule is when it runs (empty: only on demand).
	Schedule ScheduleConfig `yaml:"schedule" json:"schedule"`
	// Delivery is where the file goes (besides the output directory).
	Delivery []Delivery `yaml:"delivery" json:"delivery,omitempty"`
	// Retention is how long delivered files are kept in the output
	// directory (0 = for ever).
	Retention time.Duration `yaml:"retention" json:"retention,omitempty"`
}

// Source is a table (the department's row filter is added) or a SELECT
// over tables in the department's scope. A query may use :period_start
// and :period_end (the previous and this scheduled time).
type Source struct {
	Table string `yaml:"table" json:"table,omitempty"`
	Where string `yaml:"where" json:"where,omitempty"`
	SQL   string `yaml:"sql" json:"sql,omitempty"`
}

// PIIRule protects one column.
type PIIRule struct {
	Column string `yaml:"column" json:"column"`
	// Action: mask (keep the first and last characters, * between),
	// hash (hex SHA-256 of salt+value) or drop (column removed).
	Action string `yaml:"action" json:"action"`
	// Salt for hash (default: the extract's name).
	Salt string `yaml:"salt" json:"salt,omitempty"`
}

// ScheduleConfig is a cron expression and its zone.
type ScheduleConfig struct {
	Cron     string `yaml:"cron" json:"cron,omitempty"`
	Timezone string `yaml:"timezone" json:"timezone,omitempty"`
}

// Delivery is one destination.
type Delivery struct {
	// Type: dir, http or mail.
	Type string `yaml:"type" json:"type"`
	// Path of a dir delivery (the file and its manifest are copied there).
	Path string `yaml:"path" json:"path,omitempty"`
	// URL of an http delivery: the file is POSTed (multipart: file,
	// manifest); Headers are added; Retries with backoff on failure.
	URL     string            `yaml:"url" json:"url,omitempty"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	Retries int               `yaml:"retries" json:"retries,omitempty"`
	// Backoff before the first retry (doubles each time).
	Backoff time.Duration `yaml:"backoff" json:"backoff,omitempty"`
	// To, Subject of a mail delivery (the file attached).
	To      []string `yaml:"to" json:"to,omitempty"`
	Subject string   `yaml:"subject" json:"subject,omitempty"`
}

// DefaultConfig: files under data/extracts, the scheduler on, no SMTP, no
// definitions.
func DefaultConfig() Config {
	return Config{OutputDir: "extracts", Scheduler: scheduler.DefaultConfig(), SMTP: SMTPConfig{Port: 25}}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ErrDefinition: an extract definition that cannot be used.
var ErrDefinition = errors.New("extract definition")

// Validate checks the section (not the departments, which auth owns; see
// Runner).
func (c Config) Validate() error {
	var errs []error
	if c.OutputDir == "" {
		errs = append(errs, errors.New("extracts.output_dir is required"))
	}
	if err := c.Scheduler.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SMTP.Port < 0 || c.SMTP.Port > 65535 {
		errs = append(errs, fmt.Errorf("extracts.smtp.port %d out of range", c.SMTP.Port))
	}
	seen := map[string]bool{}
	for _, d := range c.Definitions {
		if seen[d.Name] {
			errs = append(errs, fmt.Errorf("%w: 提取任务重名 %q defined twice", ErrDefinition, d.Name))
		}
		seen[d.Name] = true
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks one definition.
func (d Definition) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrDefinition, d.Name, fmt.Sprintf(f, a...))
	}
	if !nameRE.MatchString(d.Name) {
		return bad("名称只能用小写字母、数字、_ 和 - (name: lower-case letters, digits, _ and - only)")
	}
	if d.Department == "" {
		return bad("缺少 department (which department receives it)")
	}
	if (d.Source.Table == "") == (d.Source.SQL == "") {
		return bad("source 需要 table 或 sql 之一 (exactly one of source.table and source.sql)")
	}
	if d.Source.SQL != "" && (len(d.Columns) > 0 || len(d.OrderBy) > 0 || d.Source.Where != "") {
		return bad("columns/order_by/where 只用于 table 来源 (columns, order_by and where apply to a table source; write them in the SQL)")
	}
	if d.Source.Table != "" && len(strings.Split(d.Source.Table, ".")) != 2 {
		return bad("source.table %q 应为 namespace.table (e.g. raw.weather)", d.Source.Table)
	}
	if _, ok := formats[d.Format]; !ok {
		return bad("格式 format %q: want csv, xlsx or parquet", d.Format)
	}
	switch d.Encoding {
	case "", "utf-8-bom", "gb18030":
	default:
		return bad("编码 encoding %q: want utf-8-bom or gb18030 (csv only)", d.Encoding)
	}
	if d.Encoding != "" && d.Format != "csv" {
		return bad("encoding 只用于 csv (encoding applies to csv only)")
	}
	switch d.Header {
	case "", "bilingual", "names":
	default:
		return bad("表头 header %q: want bilingual (中文 + name) or names", d.Header)
	}
	if d.Header != "" && d.Format == "parquet" {
		return bad("header 只用于 csv 和 xlsx (header applies to csv and xlsx; Parquet columns keep their names)")
	}
	for _, p := range d.PII {
		switch p.Action {
		case "mask", "hash", "drop":
		default:
			return bad("pii %q: action %q: want mask, hash or drop", p.Column, p.Action)
		}
		if p.Column == "" {
			return bad("pii: column is required")
		}
	}
	if d.Schedule.Cron != "" {
		if _, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone); err != nil {
			return bad("%v", err)
		}
	} else if d.Schedule.Timezone != "" {
		if _, err := time.LoadLocation(d.Schedule.Timezone); err != nil {
			return bad("timezone %q unknown", d.Schedule.Timezone)
		}
	}
	if d.FileName != "" {
		if strings.ContainsAny(d.FileName, `/\`) || strings.Contains(d.FileName, "..") {
			return bad("file_name %q must be a plain file name", d.FileName)
		}
	}
	for _, dl := range d.Delivery {
		switch dl.Type {
		case "dir":
			if dl.Path == "" {
				return bad("delivery dir: path is required")
			}
		case "http":
			u, err := url.Parse(dl.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return bad("delivery http: url %q must be http(s)://host/…", dl.URL)
			}
			if dl.Retries < 0 {
				return bad("delivery http: retries must be ≥ 0")
			}
		case "mail":
			if len(dl.To) == 0 {
				return bad("delivery mail: to is required")
			}
		default:
			return bad("delivery type %q: want dir, http or mail", dl.Type)
		}
	}
	if d.Retention < 0 {
		return bad("retention must be ≥ 0")
	}
	return nil
}

// Location is the zone the extract's periods are read in.
func (d Definition) Location() *time.Location {
	tz := d.Schedule.Timezone
	if tz == "" {
		tz = scheduler.DefaultTimezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc, _ = time.LoadLocation(scheduler.DefaultTimezone)
	}
	return loc
}

// Ext is the output file's extension.
func (d Definition) Ext() string { return formats[d.Format].ext }

// OutputName renders FileName for a period.
func (d Definition) OutputName(period time.Time) string {
	tmpl := d.FileName
	if tmpl == "" {
		tmpl = "{name}_{period:20060102T1504}.{ext}"
	}
	p := period.In(d.Location())
	out := periodRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		layout := strings.TrimSuffix(strings.TrimPrefix(m, "{period:"), "}")
		return p.Format(layout)
	})
	out = strings.NewReplacer("{name}", d.Name, "{department}", d.Department, "{ext}", d.Ext(), "{period}", p.Format("20060102T1504")).Replace(out)
	return strings.NewReplacer("/", "_", `\`, "_", ":", "").Replace(out)
}

var periodRE = regexp.MustCompile(`\{period:[^}]+\}`)

// All returns the configured definitions plus those in Dir, sorted by name.
func (c Config) All() ([]Definition, error) {
	defs := append([]Definition(nil), c.Definitions...)
	if c.Dir != "" {
		files, err := filepath.Glob(filepath.Join(c.Dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		more, _ := filepath.Glob(filepath.Join(c.Dir, "*.yml"))
		for _, f := range append(files, more...) {
			ds, err := LoadFile(f)
			if err != nil {
				return nil, err
			}
			defs = append(defs, ds...)
		}
	}
	seen := map[string]bool{}
	for _, d := range defs {
		if seen[d.Name] {
			return nil, fmt.Errorf("%w: 提取任务重名 %q defined twice", ErrDefinition, d.Name)
		}
		seen[d.Name] = true
		if err := d.Validate(); err != nil {
			return nil, err
		}
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	return defs, nil
}

// LoadFile reads one definition file: a single definition or a list.
func LoadFile(path string) ([]Definition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("extract definitions: %w", err)
	}
	var list []Definition
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil {
		var one Definition
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err2 := dec.Decode(&one); err2 != nil {
			return nil, fmt.Errorf("%w: %s: %v (see docs/extracts.md)", ErrDefinition, path, err2)
		}
		list = []Definition{one}
	}
	return list, nil
}
