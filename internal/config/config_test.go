package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"citybrain/connectors/sources"
)

// clearEnv keeps the developer's environment out of the tests.
func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv("CITYBRAIN_DATA_DIR", "")
	t.Setenv("CITYBRAIN_KAFKA_BOOTSTRAP", "")
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "citybrain.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.resolve(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with built-in sources: %v", err)
	}
	if len(c.Defs) != len(sources.Names()) {
		t.Errorf("%d defs, %d built-ins", len(c.Defs), len(sources.Names()))
	}
	if _, err := c.Source("weather"); err != nil {
		t.Error(err)
	}
	if _, err := c.Source("nope"); err == nil || !strings.Contains(err.Error(), "weather") {
		t.Errorf("Source(nope) = %v, want error listing configured sources", err)
	}
}

func TestLoadMissingOptional(t *testing.T) {
	clearEnv(t)
	c, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if c.DataDir != want.DataDir || c.Log != want.Log || c.HTTP != want.HTTP ||
		!reflect.DeepEqual(c.Broker, want.Broker) || !reflect.DeepEqual(c.Warehouse, want.Warehouse) || c.LakeWriter != want.LakeWriter {
		t.Errorf("got %+v, want defaults %+v", c, want)
	}
	if len(c.Defs) == 0 {
		t.Error("built-in sources not resolved")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), false); err == nil {
		t.Error("missing required config file accepted")
	}
}

func TestLoadEmptyFile(t *testing.T) {
	clearEnv(t)
	for _, body := range []string{"", "# only a comment\n"} {
		c, err := Load(writeConfig(t, body), false)
		if err != nil {
			t.Errorf("%q: %v", body, err)
		}
		if c.DataDir != "data" {
			t.Errorf("%q: data_dir %q", body, c.DataDir)
		}
	}
}

func TestLoadOverrides(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeConfig(t, `
data_dir: /var/lib/citybrain
log: {level: debug}
warehouse:
  maintenance:
    retain_last: 5
`), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/citybrain" || c.Log.Level != "debug" || c.Log.Format != "text" {
		t.Errorf("got %+v", c)
	}
	d := Default()
	if c.Warehouse.Maintenance.RetainLast != 5 || c.Warehouse.Maintenance.Interval != d.Warehouse.Maintenance.Interval || c.Warehouse.Catalog != d.Warehouse.Catalog {
		t.Errorf("partial section override lost defaults: %+v", c.Warehouse)
	}
}

func TestLoadRejects(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown top-level key", "data_dri: x\n", []string{"data_dri", "docs/config.md"}},
		{"unknown nested key", "warehouse:\n  maintenance:\n    intervall: 1m\n", []string{"intervall", "docs/config.md"}},
		{"unknown source key", "sources:\n  - name: weather\n    file: {pathz: [a]}\n", []string{"pathz"}},
		{"bad log level", "log: {level: loud}\n", []string{"log.level", "loud"}},
		{"source without name", "sources:\n  - schema: weather\n", []string{"name"}},
		{"source with unknown schema", "sources:\n  - {name: extra, schema: nope, transport: file, file: {paths: [x]}}\n", []string{"nope"}},
		{"bad yaml", "log: [\n", []string{"docs/config.md"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.body), false)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSourceOverrideKeepsMapping(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeConfig(t, `
sources:
  - name: weather
    file:
      paths: [/data/weather/*.csv]
`), false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Source("weather")
	if err != nil {
		t.Fatal(err)
	}
	builtin, _ := sources.Builtin()
	b := builtin["weather"]
	if !reflect.DeepEqual(d.File.Paths, []string{"/data/weather/*.csv"}) {
		t.Errorf("paths %v", d.File.Paths)
	}
	if !reflect.DeepEqual(d.Mapping, b.Mapping) {
		t.Errorf("mapping changed:\n got %+v\nwant %+v", d.Mapping, b.Mapping)
	}
	if d.Schema != b.Schema || d.Transport != b.Transport || d.File.Header != b.File.Header || d.File.Delimiter != b.File.Delimiter || d.PollInterval != b.PollInterval {
		t.Errorf("other keys changed: %+v", d)
	}
	n := 0
	for _, x := range c.Defs {
		if x.Name == "weather" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("weather defined %d times", n)
	}
	// The built-in definitions themselves are untouched.
	again, _ := sources.Builtin()
	if reflect.DeepEqual(again["weather"].File.Paths, d.File.Paths) {
		t.Error("override leaked into the built-in definition")
	}
}

func TestSourceDisable(t *testing.T) {
	clearEnv(t)
	c, err := Load(writeConfig(t, "sources:\n  - {name: weather, enabled: false}\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := c.Source("weather")
	if d.IsEnabled() || len(d.Mapping.Fields) == 0 {
		t.Errorf("got %+v", d)
	}
}

func TestEnvOverrides(t *testing.T) {
	clearEnv(t)
	t.Setenv("CITYBRAIN_DATA_DIR", "/tmp/cb-env")
	t.Setenv("CITYBRAIN_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
	c, err := Load(writeConfig(t, "data_dir: /from/file\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/tmp/cb-env" {
		t.Errorf("data_dir %q, want env value", c.DataDir)
	}
	if !reflect.DeepEqual(c.Broker.Bootstrap, []string{"k1:9092", "k2:9092"}) {
		t.Errorf("bootstrap %v", c.Broker.Bootstrap)
	}
}

var nodeType = reflect.TypeOf(yaml.Node{})

// configKeys lists the dotted keys of a struct type, following yaml tags:
// nested structs recurse, slices of structs become key[], and the Sources
// yaml.Node list is walked as sources.Definition.
func configKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if strings.Contains(opts, "inline") {
			keys = append(keys, configKeys(prefix, ft)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := prefix + name
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem() == nodeType && key == "sources":
			keys = append(keys, key)
			keys = append(keys, configKeys(key+"[].", reflect.TypeOf(sources.Definition{}))...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, key)
			keys = append(keys, configKeys(key+"[].", ft.Elem())...)
		case ft.Kind() == reflect.Struct && ft != nodeType && ft.PkgPath() != "time":
			keys = append(keys, configKeys(key+".", ft)...)
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := configKeys("", reflect.TypeOf(Config{}))
	for _, want := range []string{"warehouse.maintenance.interval", "sources[].file.paths", "sources[].mapping.fields", "broker.bootstrap", "lake_writer.idle_flush"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("walker did not produce %s: %v", want, keys)
		}
	}
	var missing []string
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("docs/config.md does not document %d key(s): %s", len(missing), strings.Join(missing, ", "))
	}
	t.Logf("%d keys documented", len(keys))
}

// The configuration make run uses loads and validates, its demo extracts
// included.
func TestRepoConfigValidates(t *testing.T) {
	clearEnv(t)
	c, err := Load(filepath.Join("..", "..", "citybrain.yaml"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	defs, err := c.Extracts.All()
	if err != nil || len(defs) < 3 {
		t.Fatalf("demo extracts: %d, %v", len(defs), err)
	}
}
