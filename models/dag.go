package models

import (
	"fmt"
	"sort"
	"strings"
)

// topoSort orders models inputs-first (Kahn's algorithm, ties by name, so
// the order is stable); a cycle is an error naming it (a → b → a).
func topoSort(ms map[string]*Model) ([]string, error) {
	indeg := map[string]int{}
	users := map[string][]string{}
	for name, m := range ms {
		indeg[name] += 0
		for _, r := range m.Refs {
			if _, ok := ms[r]; !ok {
				continue
			}
			indeg[name]++
			users[r] = append(users[r], name)
		}
	}
	var ready []string
	for n, d := range indeg {
		if d == 0 {
			ready = append(ready, n)
		}
	}
	sort.Strings(ready)
	var out []string
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		us := users[n]
		sort.Strings(us)
		for _, u := range us {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
				sort.Strings(ready)
			}
		}
	}
	if len(out) == len(ms) {
		return out, nil
	}
	return nil, fmt.Errorf("%w: %w: %s (break it: a model cannot depend on itself through ref) / 模型之间存在循环依赖", ErrProject, ErrCycle, findCycle(ms, indeg))
}

// findCycle names one cycle among the models left with inputs.
func findCycle(ms map[string]*Model, indeg map[string]int) string {
	var left []string
	for n, d := range indeg {
		if d > 0 {
			left = append(left, n)
		}
	}
	sort.Strings(left)
	state := map[string]int{} // 1 on stack, 2 done
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = 1
		stack = append(stack, n)
		refs := append([]string(nil), ms[n].Refs...)
		sort.Strings(refs)
		for _, r := range refs {
			if _, ok := ms[r]; !ok {
				continue
			}
			if state[r] == 1 {
				for i, s := range stack {
					if s == r {
						found = append(append([]string(nil), stack[i:]...), r)
					}
				}
				return true
			}
			if state[r] == 0 && visit(r) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		return false
	}
	for _, n := range left {
		if state[n] == 0 && visit(n) {
			break
		}
	}
	// found runs against the ref arrows (model → its input); print it in
	// data-flow order: input → user.
	for i, j := 0, len(found)-1; i < j; i, j = i+1, j-1 {
		found[i], found[j] = found[j], found[i]
	}
	return strings.Join(found, " → ")
}

// Select resolves dbt-style selectors into models in run order:
// "name" the model, "name+" it and everything downstream, "+name" it and
// everything upstream, "+name+" both. No selector selects every model.
func (p *Project) Select(selectors []string) ([]string, error) {
	var sel []string
	for _, s := range selectors {
		sel = append(sel, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	if len(sel) == 0 {
		return p.Order(), nil
	}
	users := map[string][]string{}
	for n, m := range p.Models {
		for _, r := range m.Refs {
			users[r] = append(users[r], n)
		}
	}
	chosen := map[string]bool{}
	var walk func(n string, next func(string) []string)
	walk = func(n string, next func(string) []string) {
		for _, x := range next(n) {
			if !chosen[x] {
				chosen[x] = true
				walk(x, next)
			}
		}
	}
	for _, s := range sel {
		up, down := strings.HasPrefix(s, "+"), strings.HasSuffix(s, "+")
		name := strings.Trim(s, "+")
		if _, ok := p.Models[name]; !ok {
			return nil, fmt.Errorf("%w: --select %s: no model %q (see `citybrain models ls`) / 没有该模型", ErrProject, s, name)
		}
		chosen[name] = true
		if up {
			walk(name, func(n string) []string { return p.Models[n].Refs })
		}
		if down {
			walk(name, func(n string) []string { return users[n] })
		}
	}
	var out []string
	for _, n := range p.order {
		if chosen[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Downstream is the models that use name (directly).
func (p *Project) Downstream(name string) []string {
	var out []string
	for _, n := range p.order {
		for _, r := range p.Models[n].Refs {
			if r == name {
				out = append(out, n)
			}
		}
	}
	return out
}

// Lineage renders the models' inputs and users as text, one model a block.
func (p *Project) Lineage(names []string) string {
	var b strings.Builder
	for _, n := range names {
		m := p.Models[n]
		fmt.Fprintf(&b, "%s (%s)\n", n, m.Config.Materialized)
		for _, s := range m.SourceRefs {
			fmt.Fprintf(&b, "  ← %s (source)\n", s)
		}
		for _, r := range m.Refs {
			fmt.Fprintf(&b, "  ← %s\n", r)
		}
		for _, d := range p.Downstream(n) {
			fmt.Fprintf(&b, "  → %s\n", d)
		}
	}
	return b.String()
}
