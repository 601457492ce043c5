package warnings

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

//go:embed rules/*.sql
var builtinRules embed.FS

// Inputs are the canonical schemas the engine reads, in evaluation order
// (a venue's own count before the mobile signal, whose venue rule falls back
// on the cells only for venues without a recent count).
var Inputs = []string{"weather", "water_telemetry", "traffic_speeds", "traffic_collisions", "crowd_counts", "mobile_signal"}

// RuleSet is the parsed rules directory.
type RuleSet struct {
	Schema string
	// State, After: statements per input.
	State, After map[string][]string
	// Rules: input → rule name → SELECT, evaluated in name order.
	Rules map[string]map[string]string
}

// RuleNames lists input.rule names, sorted.
func (rs *RuleSet) RuleNames() []string {
	var out []string
	for in, rules := range rs.Rules {
		for name := range rules {
			out = append(out, in+"."+name)
		}
	}
	sort.Strings(out)
	return out
}

// LoadRules reads the rule files from dir, or the embedded ones when dir is "".
func LoadRules(dir string) (*RuleSet, error) {
	var fsys fs.FS
	if dir == "" {
		sub, err := fs.Sub(builtinRules, "rules")
		if err != nil {
			return nil, err
		}
		fsys = sub
	} else {
		fsys = os.DirFS(dir)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("预警规则目录不可读 read warning rules %s: %w (check warnings.rules_dir)", dir, err)
	}
	known := map[string]bool{}
	for _, in := range Inputs {
		known[in] = true
	}
	rs := &RuleSet{State: map[string][]string{}, After: map[string][]string{}, Rules: map[string]map[string]string{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		text := string(b)
		base := strings.TrimSuffix(name, ".sql")
		if base == "schema" {
			rs.Schema = text
			continue
		}
		in, rule, ok := strings.Cut(base, ".")
		if !ok || !known[in] || rule == "" {
			return nil, fmt.Errorf("规则文件名无效 rule file %q: want schema.sql or <input>.<rule>.sql with input one of %v", name, Inputs)
		}
		switch rule {
		case "state":
			rs.State[in] = SplitStatements(text)
		case "after":
			rs.After[in] = SplitStatements(text)
		default:
			if rs.Rules[in] == nil {
				rs.Rules[in] = map[string]string{}
			}
			rs.Rules[in][rule] = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(text), ";"))
		}
	}
	if rs.Schema == "" {
		return nil, fmt.Errorf("规则目录缺少 schema.sql / rules %q have no schema.sql (copy pipelines/warnings/rules to start from the shipped rules)", dir)
	}
	return rs, nil
}

// SplitStatements splits SQL on semicolons outside quotes and comments.
func SplitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	inStr, inLine := false, false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case inLine:
			if c == '\n' {
				inLine = false
			}
		case inStr:
			if c == '\'' {
				inStr = false
			}
		case c == '\'':
			inStr = true
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			inLine = true
		case c == ';':
			if s := strings.TrimSpace(cur.String()); hasCode(s) {
				out = append(out, s)
			}
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if s := strings.TrimSpace(cur.String()); hasCode(s) {
		out = append(out, s)
	}
	return out
}

func hasCode(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "--") {
			return true
		}
	}
	return false
}
