package sources

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// An override that gives a mapping replaces the built-in mapping as a whole
// (the simulator's feeds have other columns than the shipped samples); one
// without a mapping keeps the built-in one.
func TestOverrideMappingReplaces(t *testing.T) {
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(`
name: police
file: {paths: [feeds/*.csv]}
mapping:
  fields:
    occurred_at: {column: occurred_at}
`), &node); err != nil {
		t.Fatal(err)
	}
	d, err := Override(&node)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Mapping.Fields) != 1 || d.Mapping.Coordinates != nil || d.Mapping.Timezone != "" {
		t.Errorf("mapping not replaced: %+v", d.Mapping)
	}
	if d.File.Delimiter != "|" || d.File.Paths[0] != "feeds/*.csv" {
		t.Errorf("other keys should be laid over the built-in: %+v", d.File)
	}
	if err := yaml.Unmarshal([]byte("name: police\nfile: {paths: [x.csv]}\n"), &node); err != nil {
		t.Fatal(err)
	}
	d, err = Override(&node)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Mapping.Fields) < 5 || d.Mapping.Coordinates == nil {
		t.Errorf("built-in mapping lost without a mapping key: %+v", d.Mapping)
	}
}
