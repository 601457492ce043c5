package channels

import (
	"strings"
	"unicode/utf8"
)

var colourZh = map[string]string{"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}

// tagZh is the message's level in Chinese: "III级响应 · 橙色预警".
func tagZh(m Message) string {
	var parts []string
	if m.Level != "" {
		parts = append(parts, m.Level+"级响应")
	}
	if m.WarningLevel != "" {
		c, ok := colourZh[strings.ToLower(m.WarningLevel)]
		if !ok {
			c = m.WarningLevel
		}
		parts = append(parts, c+"预警")
	}
	return strings.Join(parts, " · ")
}

// tagEn is the message's level in English: "Level III response · orange warning".
func tagEn(m Message) string {
	var parts []string
	if m.Level != "" {
		parts = append(parts, "Level "+m.Level+" response")
	}
	if m.WarningLevel != "" {
		parts = append(parts, strings.ToLower(m.WarningLevel)+" warning")
	}
	return strings.Join(parts, " · ")
}

// headZh is the Chinese headline: "【III级响应 · 橙色预警】title".
func headZh(m Message) string {
	if t := tagZh(m); t != "" {
		return "【" + t + "】" + m.TitleZh
	}
	return m.TitleZh
}

// headEn is the English headline: "[Level III response · orange warning] title".
func headEn(m Message) string {
	if t := tagEn(m); t != "" {
		return "[" + t + "] " + m.TitleEn
	}
	return m.TitleEn
}

// plainText is the message as plain text, Chinese first.
func plainText(m Message) string {
	var b strings.Builder
	b.WriteString(headZh(m) + "\n")
	if m.BodyZh != "" {
		b.WriteString("\n" + strings.TrimRight(m.BodyZh, "\n") + "\n")
	}
	if m.URL != "" {
		b.WriteString("\n打开任务：" + m.URL + "\n")
	}
	b.WriteString("\n----\n\n" + headEn(m) + "\n")
	if m.BodyEn != "" {
		b.WriteString("\n" + strings.TrimRight(m.BodyEn, "\n") + "\n")
	}
	if m.URL != "" {
		b.WriteString("\nOpen the task: " + m.URL + "\n")
	}
	return b.String()
}

// clipBytes shortens s to at most n bytes, cutting at a rune boundary and
// ending with "…" when it cut.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + ell
}

// clipRunes shortens s to at most n characters, the last "…" when it cut.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
