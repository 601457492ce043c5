package models

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed project
var embedded embed.FS

// Embedded is the SQL project shipped in the binary (models/project).
func Embedded() fs.FS {
	sub, err := fs.Sub(embedded, "project")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// Errors of loading and running a project; match with errors.Is.
var (
	// ErrProject: the project's files are malformed (bad YAML, unknown
	// ref, unsupported template syntax, a cycle).
	ErrProject = errors.New("model project")
	// ErrCycle: models depend on each other in a circle.
	ErrCycle = errors.New("dependency cycle")
	// ErrTestFailed: a data test returned failing rows.
	ErrTestFailed = errors.New("data test failed")
	// ErrModelFailed: a model's SQL or its materialisation failed.
	ErrModelFailed = errors.New("model failed")
)

// Project is a dbt-compatible SQL project: models, their properties and
// tests, sources and vars.
type Project struct {
	Name string
	// Vars are dbt_project.yml vars overlaid with the vars files.
	Vars map[string]any
	// VarsFiles are the files Vars were read from beside dbt_project.yml.
	VarsFiles []string
	Models    map[string]*Model
	Sources   map[string]*Source // "raw.enterprises" → source table
	// Singular are the tests/*.sql tests (name → template).
	Singular map[string]*Model
	order    []string
}

// Model is one SQL model.
type Model struct {
	Name string
	Path string
	SQL  string
	tpl  []node
	// Config is what config(...) and the properties file set.
	Config ModelConfig
	Doc    Doc
	// Columns are the documented columns with their tests, in file order.
	Columns []Column
	// Refs and SourceRefs are the model's direct inputs.
	Refs       []string
	SourceRefs []string
}

// ModelConfig is a model's materialisation.
type ModelConfig struct {
	// Materialized is view, table or incremental.
	Materialized string
	// UniqueKey / PartitionBy: an incremental model's DATE column; a run
	// replaces the days it computed (dbt-duckdb: delete+insert on it).
	UniqueKey   string
	PartitionBy string
}

// Doc is a zh / en description.
type Doc struct {
	Zh string
	En string
}

func (d Doc) String() string {
	switch {
	case d.Zh != "" && d.En != "":
		return d.Zh + " / " + d.En
	case d.Zh != "":
		return d.Zh
	}
	return d.En
}

// Column is a documented column and its generic tests.
type Column struct {
	Name  string
	Doc   Doc
	Tests []DataTest
}

// DataTest is a generic test on a column: not_null, unique,
// accepted_values (Values), relationships (To model, Field).
type DataTest struct {
	Kind   string
	Values []string
	To     string
	Field  string
	// Severity is error (default) or warn.
	Severity string
}

// Source is one declared source table with its freshness policy.
type Source struct {
	Source, Table string
	LoadedAt      string
	// WarnAfter / ErrorAfter in hours (0: not checked).
	WarnAfter, ErrorAfter float64
	Doc                   Doc
	Columns               []SourceColumn
}

// SourceColumn is a declared column of a source (used to stand in an empty
// table when the source has not been loaded yet).
type SourceColumn struct {
	Name, Type string
}

// Name is "source.table".
func (s *Source) Name() string { return s.Source + "." + s.Table }

// Load reads a project from fsys (the embedded one or an analyst's
// directory): dbt_project.yml, models/**/*.sql and *.yml, tests/*.sql and
// the vars files named (e.g. risk_config.v1.yaml).
func Load(fsys fs.FS, varsFiles ...string) (*Project, error) {
	p := &Project{Vars: map[string]any{}, Models: map[string]*Model{}, Sources: map[string]*Source{}, Singular: map[string]*Model{}}
	var proj struct {
		Name string         `yaml:"name"`
		Vars map[string]any `yaml:"vars"`
	}
	b, err := fs.ReadFile(fsys, "dbt_project.yml")
	if err != nil {
		return nil, fmt.Errorf("%w: dbt_project.yml: %v", ErrProject, err)
	}
	if err := yaml.Unmarshal(b, &proj); err != nil {
		return nil, fmt.Errorf("%w: dbt_project.yml: %v", ErrProject, err)
	}
	p.Name = proj.Name
	for k, v := range proj.Vars {
		p.Vars[k] = v
	}
	for _, vf := range varsFiles {
		b, err := fs.ReadFile(fsys, vf)
		if err != nil {
			return nil, fmt.Errorf("%w: vars file %s: %v", ErrProject, vf, err)
		}
		var vars map[string]any
		if err := yaml.Unmarshal(b, &vars); err != nil {
			return nil, fmt.Errorf("%w: vars file %s: %v", ErrProject, vf, err)
		}
		for k, v := range vars {
			p.Vars[k] = v
		}
		p.VarsFiles = append(p.VarsFiles, vf)
	}
	var ymls []string
	err = fs.WalkDir(fsys, "models", func(pth string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch path.Ext(pth) {
		case ".sql":
			name := strings.TrimSuffix(path.Base(pth), ".sql")
			if old, dup := p.Models[name]; dup {
				return fmt.Errorf("%w: model %s defined twice (%s, %s)", ErrProject, name, old.Path, pth)
			}
			m, err := parseModel(fsys, name, pth)
			if err != nil {
				return err
			}
			p.Models[name] = m
		case ".yml", ".yaml":
			ymls = append(ymls, pth)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(ymls)
	for _, y := range ymls {
		if err := p.readProperties(fsys, y); err != nil {
			return nil, err
		}
	}
	if tests, err := fs.Glob(fsys, "tests/*.sql"); err == nil {
		for _, tp := range tests {
			name := strings.TrimSuffix(path.Base(tp), ".sql")
			m, err := parseModel(fsys, name, tp)
			if err != nil {
				return nil, err
			}
			p.Singular[name] = m
		}
	}
	for _, m := range p.Models {
		if m.Config.Materialized == "" {
			m.Config.Materialized = "view"
		}
		switch m.Config.Materialized {
		case "view", "table", "incremental":
		default:
			return nil, fmt.Errorf("%w: model %s: materialized=%q (want view, table or incremental) / 不支持的物化方式", ErrProject, m.Name, m.Config.Materialized)
		}
		if m.Config.Materialized == "incremental" && m.partitionKey() == "" {
			return nil, fmt.Errorf("%w: model %s: incremental needs unique_key (a DATE column) / 增量模型需要 unique_key", ErrProject, m.Name)
		}
	}
	for _, all := range []map[string]*Model{p.Models, p.Singular} {
		for _, m := range all {
			for _, r := range m.Refs {
				if _, ok := p.Models[r]; !ok {
					return nil, fmt.Errorf("%w: %s refers to unknown model %q (ref) / 引用了不存在的模型", ErrProject, m.Path, r)
				}
			}
			for _, s := range m.SourceRefs {
				if _, ok := p.Sources[s]; !ok {
					return nil, fmt.Errorf("%w: %s refers to undeclared source %q (declare it under sources: in a .yml) / 未声明的数据源", ErrProject, m.Path, s)
				}
			}
		}
	}
	order, err := topoSort(p.Models)
	if err != nil {
		return nil, err
	}
	p.order = order
	return p, nil
}

// LoadDir loads a project from a directory on disk (models.project_dir).
func LoadDir(dir string, varsFiles ...string) (*Project, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%w: project dir %s: %v", ErrProject, dir, err)
	}
	return Load(os.DirFS(dir), varsFiles...)
}

func (m *Model) partitionKey() string {
	if m.Config.PartitionBy != "" {
		return m.Config.PartitionBy
	}
	return m.Config.UniqueKey
}

func parseModel(fsys fs.FS, name, pth string) (*Model, error) {
	b, err := fs.ReadFile(fsys, pth)
	if err != nil {
		return nil, err
	}
	tpl, err := parseTemplate(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrProject, pth, err)
	}
	m := &Model{Name: name, Path: pth, SQL: string(b), tpl: tpl}
	cfg := map[string]any{}
	seenRef, seenSrc := map[string]bool{}, map[string]bool{}
	var walk func([]node) error
	walk = func(ns []node) error {
		for _, n := range ns {
			if n.cond != "" {
				if err := walk(n.then); err != nil {
					return err
				}
				if err := walk(n.other); err != nil {
					return err
				}
				continue
			}
			if n.expr == "" || n.expr == "this" {
				continue
			}
			fn, args, kwargs, err := parseCall(n.expr)
			if err != nil {
				return fmt.Errorf("%w: %s line %d: %v", ErrProject, pth, n.line, err)
			}
			switch fn {
			case "config":
				for k, v := range kwargs {
					cfg[k] = v
				}
			case "ref":
				if len(args) > 0 {
					if r, ok := args[len(args)-1].(string); ok && !seenRef[r] {
						seenRef[r] = true
						m.Refs = append(m.Refs, r)
					}
				}
			case "source":
				if len(args) == 2 {
					s := fmt.Sprint(args[0]) + "." + fmt.Sprint(args[1])
					if !seenSrc[s] {
						seenSrc[s] = true
						m.SourceRefs = append(m.SourceRefs, s)
					}
				}
			case "var":
			default:
				return fmt.Errorf("%w: %s line %d: %s() is not supported (config, ref, source, var, this) / 不支持的模板函数", ErrProject, pth, n.line, fn)
			}
		}
		return nil
	}
	if err := walk(tpl); err != nil {
		return nil, err
	}
	m.Config.apply(cfg)
	return m, nil
}

func (c *ModelConfig) apply(cfg map[string]any) {
	if v, ok := cfg["materialized"].(string); ok {
		c.Materialized = v
	}
	if v, ok := cfg["unique_key"].(string); ok {
		c.UniqueKey = v
	}
	if v, ok := cfg["partition_by"].(string); ok {
		c.PartitionBy = v
	}
}

// properties file shapes (dbt's schema.yml).
type propFile struct {
	Models  []propModel  `yaml:"models"`
	Sources []propSource `yaml:"sources"`
}

type propModel struct {
	Name        string         `yaml:"name"`
	Description string         `yaml:"description"`
	Meta        propMeta       `yaml:"meta"`
	Config      map[string]any `yaml:"config"`
	Columns     []propColumn   `yaml:"columns"`
}

type propMeta struct {
	Zh string `yaml:"zh"`
	En string `yaml:"en"`
}

type propColumn struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	DataType    string      `yaml:"data_type"`
	Meta        propMeta    `yaml:"meta"`
	Tests       []yaml.Node `yaml:"tests"`
	DataTests   []yaml.Node `yaml:"data_tests"`
}

type propFreshness struct {
	WarnAfter  *propPeriod `yaml:"warn_after"`
	ErrorAfter *propPeriod `yaml:"error_after"`
}

type propPeriod struct {
	Count  float64 `yaml:"count"`
	Period string  `yaml:"period"`
}

func (p *propPeriod) hours() float64 {
	if p == nil {
		return 0
	}
	switch p.Period {
	case "minute":
		return p.Count / 60
	case "day":
		return p.Count * 24
	}
	return p.Count
}

type propSource struct {
	Name          string         `yaml:"name"`
	Schema        string         `yaml:"schema"`
	Description   string         `yaml:"description"`
	Freshness     *propFreshness `yaml:"freshness"`
	LoadedAtField string         `yaml:"loaded_at_field"`
	Tables        []struct {
		Name          string         `yaml:"name"`
		Description   string         `yaml:"description"`
		Meta          propMeta       `yaml:"meta"`
		LoadedAtField string         `yaml:"loaded_at_field"`
		Freshness     *propFreshness `yaml:"freshness"`
		Columns       []propColumn   `yaml:"columns"`
	} `yaml:"tables"`
}

func docOf(desc string, m propMeta) Doc {
	d := Doc(m)
	if d.Zh == "" && d.En == "" {
		d.En = desc
	}
	return d
}

func (p *Project) readProperties(fsys fs.FS, pth string) error {
	b, err := fs.ReadFile(fsys, pth)
	if err != nil {
		return err
	}
	var pf propFile
	if err := yaml.Unmarshal(b, &pf); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProject, pth, err)
	}
	for _, s := range pf.Sources {
		for _, t := range s.Tables {
			src := &Source{Source: s.Name, Table: t.Name, LoadedAt: firstNonEmpty(t.LoadedAtField, s.LoadedAtField), Doc: docOf(t.Description, t.Meta)}
			fr := s.Freshness
			if t.Freshness != nil {
				fr = t.Freshness
			}
			if fr != nil {
				src.WarnAfter, src.ErrorAfter = fr.WarnAfter.hours(), fr.ErrorAfter.hours()
			}
			for _, c := range t.Columns {
				src.Columns = append(src.Columns, SourceColumn{Name: c.Name, Type: c.DataType})
			}
			p.Sources[src.Name()] = src
		}
	}
	for _, pm := range pf.Models {
		m, ok := p.Models[pm.Name]
		if !ok {
			return fmt.Errorf("%w: %s describes model %q, which has no .sql file / 模型不存在", ErrProject, pth, pm.Name)
		}
		m.Doc = docOf(pm.Description, pm.Meta)
		if pm.Config != nil {
			// config(...) in the SQL file wins, as in dbt.
			saved := m.Config
			m.Config.apply(pm.Config)
			if saved.Materialized != "" {
				m.Config.Materialized = saved.Materialized
			}
		}
		for _, pc := range pm.Columns {
			col := Column{Name: pc.Name, Doc: docOf(pc.Description, pc.Meta)}
			for _, tn := range append(pc.DataTests, pc.Tests...) {
				dt, err := parseDataTest(tn)
				if err != nil {
					return fmt.Errorf("%w: %s: model %s column %s: %v", ErrProject, pth, pm.Name, pc.Name, err)
				}
				col.Tests = append(col.Tests, dt)
			}
			m.Columns = append(m.Columns, col)
		}
	}
	return nil
}

func parseDataTest(n yaml.Node) (DataTest, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "not_null", "unique":
			return DataTest{Kind: n.Value, Severity: "error"}, nil
		}
		return DataTest{}, fmt.Errorf("test %q is not supported (not_null, unique, accepted_values, relationships)", n.Value)
	}
	var m map[string]struct {
		Values    []string `yaml:"values"`
		To        string   `yaml:"to"`
		Field     string   `yaml:"field"`
		Arguments *struct {
			Values []string `yaml:"values"`
			To     string   `yaml:"to"`
			Field  string   `yaml:"field"`
		} `yaml:"arguments"`
		Config struct {
			Severity string `yaml:"severity"`
		} `yaml:"config"`
	}
	if err := n.Decode(&m); err != nil || len(m) != 1 {
		return DataTest{}, fmt.Errorf("bad test definition at line %d", n.Line)
	}
	for kind, a := range m {
		dt := DataTest{Kind: kind, Values: a.Values, To: a.To, Field: a.Field, Severity: strings.ToLower(a.Config.Severity)}
		if a.Arguments != nil {
			dt.Values, dt.To, dt.Field = a.Arguments.Values, a.Arguments.To, a.Arguments.Field
		}
		if dt.Severity == "" {
			dt.Severity = "error"
		}
		switch kind {
		case "not_null", "unique":
		case "accepted_values":
			if len(dt.Values) == 0 {
				return dt, fmt.Errorf("accepted_values needs values")
			}
		case "relationships":
			to := strings.TrimSpace(dt.To)
			if !strings.HasPrefix(to, "ref(") || dt.Field == "" {
				return dt, fmt.Errorf("relationships needs to: ref('model') and field")
			}
			_, args, _, err := parseCall(to)
			if err != nil || len(args) != 1 {
				return dt, fmt.Errorf("relationships: bad to %q", dt.To)
			}
			dt.To, _ = args[0].(string)
		default:
			return dt, fmt.Errorf("test %q is not supported (not_null, unique, accepted_values, relationships; or a tests/*.sql file)", kind)
		}
		return dt, nil
	}
	return DataTest{}, nil
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// Order is every model in dependency order (inputs first, ties by name).
func (p *Project) Order() []string { return append([]string(nil), p.order...) }

// ColumnLabels are the Chinese descriptions of the models' documented
// columns, by output table ("marts.enterprise_risk" → column → 中文), for
// the bilingual headers of extracts.
func (p *Project) ColumnLabels() map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, m := range p.Models {
		for _, c := range m.Columns {
			if c.Doc.Zh == "" {
				continue
			}
			t := MartsNamespace + "." + name
			if out[t] == nil {
				out[t] = map[string]string{}
			}
			out[t][c.Name] = c.Doc.Zh
		}
	}
	return out
}
