package dashboards_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

const visibleTexts = `(() => {
  const out = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, el = n.parentElement;
    if (!el || el.closest("script,style,textarea,option,code,[data-raw]")) continue;
    if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
    const s = n.textContent.trim();
    if (s) out.push(s);
  }
  document.querySelectorAll("select option").forEach((o) => out.push(o.textContent.trim()));
  document.querySelectorAll("[title],[placeholder],[aria-label]").forEach((e) => ["title", "placeholder", "aria-label"].forEach((a) => { const v = e.getAttribute(a); if (v) out.push(v.trim()); }));
  if (window.citybrainChartTexts) out.push(...window.citybrainChartTexts());
  return out;
})()`

var (
	asciiWord = regexp.MustCompile(`[A-Za-z][A-Za-z_:]{2,}`)
	longCode  = regexp.MustCompile(`\b\d{9,}\b`)
	manyDecs  = regexp.MustCompile(`\b\d+\.\d{3,}\b`)
	hanChar   = regexp.MustCompile(`\p{Han}+`)
)

// allowWords are the words a zh-CN page may show in Latin letters, and
// the one Chinese word an English page may show (the switch back).
var allowWords = map[string]bool{"SQL": true, "CSV": true, "PNG": true, "LEC": true, "KPI": true, "English": true, "中文": true}

// TestBrowserLanguages walks every page in zh-CN and in English, as an
// admin (every page) and as a department user, and fails on words of the
// other language, codes (a community's 12-digit code, a source id such as
// city_management, a rule's district:traffic) and figures with more than
// two decimals (7.126, 0.7584) in what the page shows: its text, its
// select options, titles and placeholders, and its charts' labels. Text
// from the data (names, addresses, descriptions: [data-raw]) and
// identifiers shown as code (table names) are the page's quotations, not
// its words.
func TestBrowserLanguages(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	e := newEnv(t)
	e.waterData()
	b := newBrowser(t, e.ctx)
	base := e.srv.URL
	walks := []struct {
		user  string
		pages []string
	}{
		{"admin", []string{"cockpit", "dept", "map", "risk", "risk/110102001", "risk/110102001/C001", "enterprise/E1", "crowd", "crowd/V1", "health", "extracts", "sql", "admin"}},
		{"dept_water", []string{"dept", "cockpit", "map", "risk", "crowd", "health"}},
	}
	for _, wk := range walks {
		b.login(base, wk.user)
		for _, lang := range []string{"zh", "en"} {
			b.run("lang "+lang, chromedp.Evaluate[chromedp.Void](`localStorage.setItem("citybrain.lang", "`+lang+`")`))
			for _, page := range wk.pages {
				b.run(lang+" "+page, chromedp.Navigate(base+"/?l="+lang+"#/"+page), rendered(strings.Split(page, "/")[0]))
				for _, p := range languageProblems(b, lang) {
					t.Errorf("%s, %s, #/%s: %s", wk.user, lang, page, p)
				}
				b.shot("lang-" + wk.user + "-" + lang + "-" + strings.ReplaceAll(page, "/", "-"))
			}
		}
		b.run("back to zh", chromedp.Evaluate[chromedp.Void](`localStorage.setItem("citybrain.lang", "zh")`))
		b.logout()
	}
}

// languageProblems are the words of the other language, codes and
// over-precise figures the page shows in lang (see TestBrowserLanguages).
func languageProblems(b *browser, lang string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range eval[[]string](b, visibleTexts) {
		var bad []string
		re := asciiWord
		if lang == "en" {
			re = hanChar
		}
		for _, w := range re.FindAllString(s, -1) {
			if !allowWords[w] {
				bad = append(bad, w)
			}
		}
		bad = append(bad, longCode.FindAllString(s, -1)...)
		bad = append(bad, manyDecs.FindAllString(s, -1)...)
		if len(bad) > 0 && !seen[s] {
			seen[s] = true
			out = append(out, fmt.Sprintf("%q in %q", bad, s))
		}
	}
	return out
}
