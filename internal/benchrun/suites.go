package main

import (
	"context"
	"fmt"
	"strings"
)

// Suite is a benchmark suite beside lakewriter and connectors (models,
// warnings, query, extracts, anchors …), registered from its own file's init
// with registerSuite. It runs in benchrun's process, may use tmp (a fresh
// directory) for its data, and returns one Result per figure, each with
// its anchor and ratio when the issue names one.
type Suite struct {
	Name string
	// Doc says what is measured and how, for results.md.
	Doc string
	// Reproduce is the command(s) to run the suite alone.
	Reproduce string
	Run       func(ctx context.Context, tmp string) []Result
	// Manual suites (the 30-minute soak) are left out of -suite all, i.e.
	// of a plain make bench; they run when named.
	Manual bool
}

var suites []Suite

func registerSuite(s Suite) { suites = append(suites, s) }

func suiteByName(name string) (Suite, bool) {
	for _, s := range suites {
		if s.Name == name {
			return s, true
		}
	}
	return Suite{}, false
}

func suiteNames() []string {
	names := []string{"lakewriter", "connectors"}
	for _, s := range suites {
		names = append(names, s.Name)
	}
	return names
}

// suiteTable renders a registered suite's results generically.
func suiteTable(rs []Result) string {
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| benchmark | figure | unit | anchor | anchor figure | ratio (ours/anchor) | notes |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---|\n")
	for _, r := range rs {
		if r.Status != "ok" {
			fmt.Fprintf(&b, "| %s | %s | %s | | | | %s |\n", r.Name, r.Status, r.Unit, esc(r.Reason))
			continue
		}
		an, af, ar := "", "", ""
		if r.Anchor != nil {
			an = r.Anchor.Name
			if r.Anchor.Figure != 0 {
				af = num(r.Anchor.Figure) + " " + r.Anchor.Unit
			}
			if r.Anchor.Ratio != 0 {
				ar = fmt.Sprintf("%.2f×", r.Anchor.Ratio)
			}
		}
		fmt.Fprintf(&b, "| %s | **%s** | %s | %s | %s | %s | %s |\n", r.Name, num(r.Figure), r.Unit, esc(an), af, ar, esc(r.Reason))
	}
	return b.String()
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
