package models

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The SQL files are written in the subset of dbt's Jinja that this package
// renders itself (so the same project runs unmodified under dbt-duckdb):
//
//	{{ config(materialized='table', unique_key='d', partition_by='d', ...) }}
//	{{ ref('model') }}   {{ source('raw', 'table') }}   {{ this }}
//	{{ var('name') }}    {{ var('name', default) }}
//	{% if is_incremental() %} … {% else %} … {% endif %}   (also "not is_incremental()")
//	{# comments #}
//
// Anything else is an error naming the file and line.

// renderCtx resolves the names a template refers to.
type renderCtx struct {
	ref         func(name string) (string, error)
	source      func(src, table string) (string, error)
	this        string
	vars        map[string]any
	incremental bool
	// config receives config(...) keyword arguments.
	config map[string]any
}

// node is a parsed piece of a template.
type node struct {
	text  string // literal text
	expr  string // {{ expr }}
	cond  string // {% if cond %}: then / else
	then  []node
	other []node
	line  int
}

// parseTemplate splits a template into text, expressions and if-blocks.
func parseTemplate(src string) ([]node, error) {
	p := &tplParser{src: src, line: 1}
	nodes, end, err := p.parse(0)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, fmt.Errorf("line %d: {%% %s %%} without {%% if %%}", p.line, end)
	}
	return nodes, nil
}

type tplParser struct {
	src  string
	pos  int
	line int
}

// parse reads nodes until EOF or an else/endif tag (returned).
func (p *tplParser) parse(depth int) ([]node, string, error) {
	var out []node
	for p.pos < len(p.src) {
		i := strings.IndexAny(p.src[p.pos:], "{")
		if i < 0 {
			out = append(out, node{text: p.src[p.pos:]})
			p.advance(len(p.src) - p.pos)
			break
		}
		start := p.pos + i
		if start+1 >= len(p.src) || !strings.ContainsRune("{%#", rune(p.src[start+1])) {
			out = append(out, node{text: p.src[p.pos : start+1]})
			p.advance(start + 1 - p.pos)
			continue
		}
		if start > p.pos {
			out = append(out, node{text: p.src[p.pos:start]})
			p.advance(start - p.pos)
		}
		open := p.src[start+1]
		closeTag := map[byte]string{'{': "}}", '%': "%}", '#': "#}"}[open]
		j := strings.Index(p.src[start+2:], closeTag)
		if j < 0 {
			return nil, "", fmt.Errorf("line %d: unclosed {%c", p.line, open)
		}
		inner := strings.TrimSpace(strings.Trim(p.src[start+2:start+2+j], "-"))
		line := p.line
		p.advance(j + 4)
		switch open {
		case '#':
			continue
		case '{':
			out = append(out, node{expr: inner, line: line})
		case '%':
			word, rest, _ := strings.Cut(inner, " ")
			switch word {
			case "if":
				then, end, err := p.parse(depth + 1)
				if err != nil {
					return nil, "", err
				}
				n := node{cond: strings.TrimSpace(rest), then: then, line: line}
				if end == "else" {
					other, end2, err := p.parse(depth + 1)
					if err != nil {
						return nil, "", err
					}
					if end2 != "endif" {
						return nil, "", fmt.Errorf("line %d: {%% if %%} without {%% endif %%}", line)
					}
					n.other = other
				} else if end != "endif" {
					return nil, "", fmt.Errorf("line %d: {%% if %%} without {%% endif %%}", line)
				}
				out = append(out, n)
			case "else", "endif":
				if depth == 0 {
					return nil, "", fmt.Errorf("line %d: {%% %s %%} without {%% if %%}", line, word)
				}
				return out, word, nil
			default:
				return nil, "", fmt.Errorf("line %d: {%% %s %%} is not supported (supported: if / else / endif) / 不支持的模板语句", line, word)
			}
		}
	}
	return out, "", nil
}

func (p *tplParser) advance(n int) {
	p.line += strings.Count(p.src[p.pos:p.pos+n], "\n")
	p.pos += n
}

// render evaluates nodes into SQL.
func render(nodes []node, rc *renderCtx) (string, error) {
	var b strings.Builder
	for _, n := range nodes {
		switch {
		case n.cond != "":
			ok, err := evalCond(n.cond, rc)
			if err != nil {
				return "", fmt.Errorf("line %d: %w", n.line, err)
			}
			branch := n.other
			if ok {
				branch = n.then
			}
			s, err := render(branch, rc)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
		case n.expr != "":
			s, err := evalExpr(n.expr, rc)
			if err != nil {
				return "", fmt.Errorf("line %d: {{ %s }}: %w", n.line, n.expr, err)
			}
			b.WriteString(s)
		default:
			b.WriteString(n.text)
		}
	}
	return b.String(), nil
}

func evalCond(cond string, rc *renderCtx) (bool, error) {
	c := strings.Join(strings.Fields(cond), " ")
	switch c {
	case "is_incremental()":
		return rc.incremental, nil
	case "not is_incremental()":
		return !rc.incremental, nil
	}
	return false, fmt.Errorf("condition %q is not supported (use is_incremental() or not is_incremental()) / 不支持的条件", cond)
}

func evalExpr(expr string, rc *renderCtx) (string, error) {
	if expr == "this" {
		return rc.this, nil
	}
	name, args, kwargs, err := parseCall(expr)
	if err != nil {
		return "", err
	}
	str := func(i int) (string, error) {
		if i >= len(args) {
			return "", fmt.Errorf("%s: missing argument %d", name, i+1)
		}
		s, ok := args[i].(string)
		if !ok {
			return "", fmt.Errorf("%s: argument %d must be a string", name, i+1)
		}
		return s, nil
	}
	switch name {
	case "config":
		if rc.config != nil {
			for k, v := range kwargs {
				rc.config[k] = v
			}
		}
		return "", nil
	case "ref":
		m, err := str(len(args) - 1)
		if err != nil {
			return "", err
		}
		return rc.ref(m)
	case "source":
		s, err := str(0)
		if err != nil {
			return "", err
		}
		t, err := str(1)
		if err != nil {
			return "", err
		}
		return rc.source(s, t)
	case "var":
		v, err := str(0)
		if err != nil {
			return "", err
		}
		val, ok := rc.vars[v]
		if !ok {
			if len(args) < 2 {
				return "", fmt.Errorf("var %q is not set and has no default (set it in dbt_project.yml vars or --vars) / 变量未设置", v)
			}
			val = args[1]
		}
		return varString(val), nil
	}
	return "", fmt.Errorf("%s() is not supported (supported: config, ref, source, var, this) / 不支持的模板函数", name)
}

// varString prints a value as dbt's Jinja would.
func varString(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == float64(int64(x)) && (x < 1e15 && x > -1e15) {
			return strconv.FormatFloat(x, 'f', 1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// parseCall parses name(arg, ..., key=value, ...) with string, number,
// boolean, None and list literals.
func parseCall(expr string) (string, []any, map[string]any, error) {
	i := strings.IndexByte(expr, '(')
	if i < 0 || !strings.HasSuffix(expr, ")") {
		return "", nil, nil, fmt.Errorf("expression %q is not supported (supported: config(...), ref(...), source(...), var(...), this) / 不支持的模板表达式", expr)
	}
	name := strings.TrimSpace(expr[:i])
	l := &lexer{s: expr[i+1 : len(expr)-1]}
	var args []any
	kwargs := map[string]any{}
	for {
		l.skip()
		if l.eof() {
			break
		}
		// key=value?
		save := l.pos
		if id := l.ident(); id != "" {
			l.skip()
			if !l.eof() && l.s[l.pos] == '=' {
				l.pos++
				v, err := l.value()
				if err != nil {
					return "", nil, nil, err
				}
				kwargs[id] = v
				if err := l.comma(); err != nil {
					return "", nil, nil, err
				}
				continue
			}
		}
		l.pos = save
		v, err := l.value()
		if err != nil {
			return "", nil, nil, err
		}
		args = append(args, v)
		if err := l.comma(); err != nil {
			return "", nil, nil, err
		}
	}
	return name, args, kwargs, nil
}

type lexer struct {
	s   string
	pos int
}

func (l *lexer) eof() bool { return l.pos >= len(l.s) }
func (l *lexer) skip() {
	for l.pos < len(l.s) && unicode.IsSpace(rune(l.s[l.pos])) {
		l.pos++
	}
}
func (l *lexer) ident() string {
	st := l.pos
	for l.pos < len(l.s) && (l.s[l.pos] == '_' || unicode.IsLetter(rune(l.s[l.pos])) || (l.pos > st && unicode.IsDigit(rune(l.s[l.pos])))) {
		l.pos++
	}
	return l.s[st:l.pos]
}
func (l *lexer) comma() error {
	l.skip()
	if l.eof() {
		return nil
	}
	if l.s[l.pos] == ',' {
		l.pos++
		return nil
	}
	if l.s[l.pos] == ']' {
		return nil
	}
	return fmt.Errorf("unexpected %q in arguments", l.s[l.pos:])
}

func (l *lexer) value() (any, error) {
	l.skip()
	if l.eof() {
		return nil, fmt.Errorf("missing value")
	}
	c := l.s[l.pos]
	switch {
	case c == '\'' || c == '"':
		j := strings.IndexByte(l.s[l.pos+1:], c)
		if j < 0 {
			return nil, fmt.Errorf("unterminated string")
		}
		v := l.s[l.pos+1 : l.pos+1+j]
		l.pos += j + 2
		return v, nil
	case c == '[':
		l.pos++
		var list []any
		for {
			l.skip()
			if l.eof() {
				return nil, fmt.Errorf("unterminated list")
			}
			if l.s[l.pos] == ']' {
				l.pos++
				return list, nil
			}
			v, err := l.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			if err := l.comma(); err != nil {
				return nil, err
			}
		}
	case c == '-' || c == '.' || unicode.IsDigit(rune(c)):
		st := l.pos
		l.pos++
		for l.pos < len(l.s) && (l.s[l.pos] == '.' || unicode.IsDigit(rune(l.s[l.pos]))) {
			l.pos++
		}
		txt := l.s[st:l.pos]
		if n, err := strconv.ParseInt(txt, 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(txt, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", txt)
		}
		return f, nil
	}
	id := l.ident()
	switch id {
	case "True", "true":
		return true, nil
	case "False", "false":
		return false, nil
	case "None", "none":
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported value at %q", l.s[l.pos:])
}
