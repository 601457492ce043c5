// Package sources holds the source definitions shipped with the platform
// (one YAML file per source, embedded) and the one hand-written registry of
// transports that turns a definition into a running connectors.Source.
//
// A definition in citybrain.yaml's "sources" list whose name matches a
// built-in one is laid over it: only the keys it sets change (typically
// file.paths), except mapping, which when given replaces the built-in
// mapping as a whole. Any other name defines a new source from scratch.
package sources

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"citybrain/connectors"
	"citybrain/connectors/file"
	"citybrain/connectors/httpapi"
	kafkasrc "citybrain/connectors/kafka"
	"citybrain/connectors/mapping"
	"citybrain/connectors/mqtt"
	"citybrain/connectors/sqldb"
	"citybrain/schemas"
)

//go:embed *.yaml
var builtin embed.FS

// Definition is one source.
type Definition struct {
	// Name of the source; topics are raw.<name> and dlq.<name>.
	Name string `yaml:"name"`
	// Schema is the canonical schema records are mapped onto.
	Schema string `yaml:"schema"`
	// Transport is the connector kind: file, http, sql, kafka or mqtt.
	Transport string `yaml:"transport"`
	// Enabled sources run under citybrain serve; default true.
	Enabled *bool `yaml:"enabled"`
	// PollInterval is how often citybrain serve looks for new data.
	PollInterval time.Duration `yaml:"poll_interval"`
	// File configures the file transport.
	File file.Config `yaml:"file"`
	// HTTP configures the HTTP API transport (JSON; Open311 profile).
	HTTP httpapi.Config `yaml:"http"`
	// SQL configures the database transport.
	SQL sqldb.Config `yaml:"sql"`
	// Kafka configures the upstream-Kafka transport (a department's own cluster).
	Kafka kafkasrc.Config `yaml:"kafka"`
	// MQTT configures the MQTT telemetry transport.
	MQTT mqtt.Config `yaml:"mqtt"`
	// Mapping maps feed rows onto the schema.
	Mapping mapping.Spec `yaml:"mapping"`
	// Dedup is what a row does to the lake's rows of the same natural key
	// (the schema's key): keep_latest (the default when the schema has a
	// key) replaces them; append adds every row.
	Dedup string `yaml:"dedup"`
}

// IsEnabled reports whether serve should run the source.
func (d Definition) IsEnabled() bool { return d.Enabled == nil || *d.Enabled }

// DefaultPoll is poll_interval when the definition leaves it out.
const DefaultPoll = time.Minute

// Poll is how often serve looks for new data: poll_interval, or DefaultPoll.
func (d Definition) Poll() time.Duration {
	if d.PollInterval <= 0 {
		return DefaultPoll
	}
	return d.PollInterval
}

// Builtin returns the shipped definitions by name.
func Builtin() (map[string]Definition, error) {
	entries, err := fs.ReadDir(builtin, ".")
	if err != nil {
		return nil, err
	}
	out := map[string]Definition{}
	for _, e := range entries {
		b, err := fs.ReadFile(builtin, e.Name())
		if err != nil {
			return nil, err
		}
		var d Definition
		if err := strictUnmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("source definition %s: %w", e.Name(), err)
		}
		out[d.Name] = d
	}
	return out, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// Override lays a YAML node (from citybrain.yaml) over the built-in
// definition of the same name, or reads a new definition.
func Override(node *yaml.Node) (Definition, error) {
	var head struct {
		Name string `yaml:"name"`
	}
	if err := node.Decode(&head); err != nil || head.Name == "" {
		return Definition{}, fmt.Errorf("sources: every entry needs a name (%v)", err)
	}
	all, err := Builtin()
	if err != nil {
		return Definition{}, err
	}
	d := all[head.Name]
	b, err := yaml.Marshal(node)
	if err != nil {
		return Definition{}, err
	}
	if err := strictUnmarshal(b, &d); err != nil {
		return Definition{}, fmt.Errorf("source %s: %w", head.Name, err)
	}
	// A mapping written in the override describes another feed's columns:
	// it replaces the built-in mapping as a whole (merging field by field
	// would keep columns of the shipped sample the new feed does not have).
	if m := mappingNode(node); m != nil {
		d.Mapping = mapping.Spec{}
		mb, err := yaml.Marshal(m)
		if err != nil {
			return Definition{}, err
		}
		if err := strictUnmarshal(mb, &d.Mapping); err != nil {
			return Definition{}, fmt.Errorf("source %s: mapping: %w", head.Name, err)
		}
	}
	return d, nil
}

// mappingNode is the value of the "mapping" key of a definition node.
func mappingNode(node *yaml.Node) *yaml.Node {
	n := node
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "mapping" {
			return n.Content[i+1]
		}
	}
	return nil
}

// Names lists the built-in source names.
func Names() []string {
	all, _ := Builtin()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks a definition against the schemas.
func (d Definition) Validate(reg *schemas.Registry) error {
	if d.Name == "" || d.Schema == "" {
		return errors.New("source needs name and schema")
	}
	if _, err := reg.Get(d.Schema); err != nil {
		return fmt.Errorf("source %s: %w", d.Name, err)
	}
	if _, ok := transports[d.Transport]; !ok {
		return fmt.Errorf("source %s: transport %q is not one of %s", d.Name, d.Transport, strings.Join(TransportNames(), ", "))
	}
	switch d.Dedup {
	case "", "keep_latest", "append":
	default:
		return fmt.Errorf("source %s: dedup %q: want keep_latest or append / 去重策略应为 keep_latest 或 append", d.Name, d.Dedup)
	}
	return nil
}

// Opened is a definition made runnable.
type Opened struct {
	Def    Definition
	Schema *schemas.Schema
	Source connectors.Source
}

// transport builds a source of one kind.
type transport func(d Definition, m *mapping.Mapper) (connectors.Source, error)

// transports is the registry: one line per transport package.
var transports = map[string]transport{
	"file":  func(d Definition, m *mapping.Mapper) (connectors.Source, error) { return file.New(d.File, m) },
	"sql":   func(d Definition, m *mapping.Mapper) (connectors.Source, error) { return sqldb.New(d.SQL, m) },
	"http":  func(d Definition, m *mapping.Mapper) (connectors.Source, error) { return httpapi.New(d.HTTP, m) },
	"kafka": func(d Definition, m *mapping.Mapper) (connectors.Source, error) { return kafkasrc.New(d.Kafka, m) },
	"mqtt":  func(d Definition, m *mapping.Mapper) (connectors.Source, error) { return mqtt.New(d.MQTT, m) },
}

// TransportNames lists the registered transports.
func TransportNames() []string {
	names := make([]string, 0, len(transports))
	for n := range transports {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open checks a definition and builds its source.
func Open(d Definition, reg *schemas.Registry) (*Opened, error) {
	if err := d.Validate(reg); err != nil {
		return nil, err
	}
	s, _ := reg.Get(d.Schema)
	m, err := mapping.New(s, d.Mapping)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", d.Name, err)
	}
	if m.Wide() && d.Transport != "file" {
		return nil, fmt.Errorf("source %s: %w: mapping.unpivot (wide rows) is for file sources; transport %s sends one record per row / 宽表转换仅用于文件数据源", d.Name, mapping.ErrMapping, d.Transport)
	}
	src, err := transports[d.Transport](d, m)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", d.Name, err)
	}
	return &Opened{Def: d, Schema: s, Source: src}, nil
}
