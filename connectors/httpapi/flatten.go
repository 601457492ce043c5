package httpapi

import (
	"bytes"
	"citybrain/connectors/mapping"
	"encoding/json"
	"fmt"
	"strings"
)

// flatten is the shared JSON flattener (mapping.FlattenJSON).
var flatten = mapping.FlattenJSON

// scalarText is a JSON scalar as text (mapping.JSONText).
var scalarText = mapping.JSONText

// lookup returns the value at a dotted path of a JSON document (nil when
// absent or null); "" is the document itself.
func lookup(doc []byte, path string) (json.RawMessage, error) {
	cur := json.RawMessage(doc)
	if path == "" {
		return trimNull(cur), nil
	}
	for _, part := range strings.Split(path, ".") {
		cur = trimNull(cur)
		if cur == nil {
			return nil, nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, fmt.Errorf("%q is not an object on the path %q", part, path)
		}
		cur = obj[part]
	}
	return trimNull(cur), nil
}

func trimNull(v json.RawMessage) json.RawMessage {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return v
}
