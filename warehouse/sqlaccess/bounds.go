package sqlaccess

import (
	"fmt"
	"strings"
)

// Size bombs. A few functions build a value whose size one argument
// chooses: repeat('x', 3000000000) is a 3 GB string made in one call, which
// DuckDB can neither interrupt (the statement timeout is checked between
// chunks) nor count against memory_limit (string heaps are not the buffer
// pool's) — it ran 5 minutes under a 20 s timeout and took 3 GB against a
// 1.8 GB limit. In every sandbox these functions are shadowed by macros of
// the same name (an unqualified call resolves to the sandbox's main schema
// before the built-ins) that refuse a result above maxGenerated, and the
// guard refuses calling them qualified (system.main.repeat) around the
// macros. The refusal is SQLSTATE 53200 and audited as "memory".

// maxGenerated is the most characters, bytes or list elements one call
// of a size-amplifying function may produce.
const maxGenerated = 16 << 20

// errTooLarge marks the macros' refusal (classify maps it to 53200).
const errTooLarge = "结果值过大 value too large"

// boundedFunctions are the functions the macros shadow.
var boundedFunctions = map[string]bool{
	"repeat": true, "lpad": true, "rpad": true, "list_resize": true, "array_resize": true,
	"range": true, "generate_series": true, "bar": true, "bitstring": true,
}

// boundedMacros shadow boundedFunctions in a sandbox's main schema.
func boundedMacros() []string {
	refuse := func(fn string) string {
		return fmt.Sprintf("error('%s: %s would build more than %d characters or elements in one value; build less, or aggregate / 单个值不能超过 %d 个字符或元素')",
			errTooLarge, fn, maxGenerated, maxGenerated)
	}
	// count of range(a, b, step) without building it
	span := func(a, b, step string) string {
		return fmt.Sprintf("abs((CAST(%s AS DOUBLE) - CAST(%s AS DOUBLE)) / nullif(CAST(%s AS DOUBLE), 0))", b, a, step)
	}
	m := maxGenerated
	return []string{
		fmt.Sprintf("CREATE MACRO main.repeat(s, n) AS CASE WHEN CAST(n AS DOUBLE) * greatest(len(s), 1) > %d THEN %s ELSE system.main.repeat(s, n) END", m, refuse("repeat")),
		fmt.Sprintf("CREATE MACRO main.lpad(s, n, p) AS CASE WHEN CAST(n AS DOUBLE) > %d THEN %s ELSE system.main.lpad(s, n, p) END", m, refuse("lpad")),
		fmt.Sprintf("CREATE MACRO main.rpad(s, n, p) AS CASE WHEN CAST(n AS DOUBLE) > %d THEN %s ELSE system.main.rpad(s, n, p) END", m, refuse("rpad")),
		fmt.Sprintf("CREATE MACRO main.list_resize(l, n) AS CASE WHEN CAST(n AS DOUBLE) > %[1]d THEN %[2]s ELSE system.main.list_resize(l, n) END, (l, n, v) AS CASE WHEN CAST(n AS DOUBLE) > %[1]d THEN %[2]s ELSE system.main.list_resize(l, n, v) END", m, refuse("list_resize")),
		fmt.Sprintf("CREATE MACRO main.array_resize(l, n) AS CASE WHEN CAST(n AS DOUBLE) > %[1]d THEN %[2]s ELSE system.main.array_resize(l, n) END, (l, n, v) AS CASE WHEN CAST(n AS DOUBLE) > %[1]d THEN %[2]s ELSE system.main.array_resize(l, n, v) END", m, refuse("array_resize")),
		fmt.Sprintf("CREATE MACRO main.bar(x, lo, hi) AS system.main.bar(x, lo, hi), (x, lo, hi, w) AS CASE WHEN CAST(w AS DOUBLE) > %d THEN %s ELSE system.main.bar(x, lo, hi, w) END", 1<<16, refuse("bar")),
		fmt.Sprintf("CREATE MACRO main.bitstring(s, n) AS CASE WHEN CAST(n AS DOUBLE) > %d THEN %s ELSE system.main.bitstring(s, n) END", m, refuse("bitstring")),
		// The list forms of range and generate_series (the table functions are
		// read chunk by chunk, and stay as they are).
		fmt.Sprintf("CREATE MACRO main.range(b) AS CASE WHEN %[1]s > %[2]d THEN %[3]s ELSE system.main.range(b) END, (a, b) AS CASE WHEN %[4]s > %[2]d THEN %[3]s ELSE system.main.range(a, b) END, (a, b, st) AS CASE WHEN %[5]s > %[2]d THEN %[3]s ELSE system.main.range(a, b, st) END",
			span("0", "b", "1"), m, refuse("range"), span("a", "b", "1"), span("a", "b", "st")),
		fmt.Sprintf("CREATE MACRO main.generate_series(b) AS CASE WHEN %[1]s > %[2]d THEN %[3]s ELSE system.main.generate_series(b) END, (a, b) AS CASE WHEN %[4]s > %[2]d THEN %[3]s ELSE system.main.generate_series(a, b) END, (a, b, st) AS CASE WHEN %[5]s > %[2]d THEN %[3]s ELSE system.main.generate_series(a, b, st) END",
			span("0", "b", "1"), m, refuse("generate_series"), span("a", "b", "1"), span("a", "b", "st")),
	}
}

// qualifiedBounded refuses calling a bounded function by its qualified
// name (system.main.repeat), which would skip its macro.
func qualifiedBounded(name, schema, catalog string) error {
	if !boundedFunctions[strings.ToLower(name)] || schema == "" && catalog == "" {
		return nil
	}
	return refused("函数 %s 请直接调用，不要加库名或模式名 (call %s unqualified)", name, name)
}

// formatFunctions take a format string whose field widths size the result
// (printf('%1000000000d', 1) is a 1 GB string): their widths are checked
// by checkFormat. Variadic, so no macro can shadow them.
var formatFunctions = map[string]bool{"printf": true, "format": true, "sprintf": true}

// checkFormat refuses a format call whose format string is not a literal,
// uses a width from an argument (*, {:{}}), or a width or precision above
// maxGenerated.
func checkFormat(name string, x map[string]any) error {
	fmtStr, ok := "", false
	if ch, _ := x["children"].([]any); len(ch) > 0 {
		if c, _ := ch[0].(map[string]any); c != nil && c["class"] == "CONSTANT" {
			if v, _ := c["value"].(map[string]any); v != nil {
				fmtStr, ok = v["value"].(string)
			}
		}
	}
	if !ok {
		return refused("%s 的格式串须为字面量 (the format string of %s must be a literal)", name, name)
	}
	bad := strings.Contains(fmtStr, "*")
	// a replacement field inside a field: a width from an argument ({:>{}})
	inField := false
	for i := 0; i < len(fmtStr); i++ {
		switch fmtStr[i] {
		case '{':
			if !inField && i+1 < len(fmtStr) && fmtStr[i+1] == '{' {
				i++ // {{ is a brace
			} else if inField {
				bad = true
			} else {
				inField = true
			}
		case '}':
			inField = false
		}
	}
	digits := 0
	for _, r := range fmtStr + " " {
		if r >= '0' && r <= '9' {
			digits++
			continue
		}
		if digits > 7 { // above 9,999,999 ≥ maxGenerated's order
			bad = true
		}
		digits = 0
	}
	if bad {
		return &Error{Code: "53200", Msg: fmt.Sprintf("%s: %s 的宽度过大或来自参数 (a width in %s's format string above %d or taken from an argument would build a huge value)", errTooLarge, name, name, maxGenerated)}
	}
	return nil
}
