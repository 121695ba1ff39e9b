package tabulate

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
	"strings"

	"stitch/artifacts"
)

// palette colours experiments in every chart, in input order. The
// rendering test looks for the first ones in a screenshot.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
	"#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"}

// referenceColour is for published figures, grey so they read as context.
const referenceColour = "#9e9e9e"

func colour(i int) string { return palette[i%len(palette)] }

const css = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:8px 0}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}td{white-space:nowrap}th:first-child,td:first-child{text-align:left}
tr.ref td{color:#666;font-style:italic}.note{color:#555;font-size:12px}
svg{display:block;margin:8px 0}svg text{font:11px system-ui,sans-serif;fill:#333}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}`

// HTML renders the self-contained report: no script, no external
// resource, so it opens the same anywhere and for ever.
func (r *report) HTML() []byte {
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
	fmt.Fprintf(&b, "<title>stitch report: top-%d</title><style>%s</style></head><body>\n", r.K, css)
	fmt.Fprintf(&b, "<h1>Experiments at top-%d</h1>\n", r.K)
	b.WriteString(r.legend())

	b.WriteString("<h2>Comparison (%)</h2>\n")
	r.writeTable(&b)

	b.WriteString("<h2>Per-type recall</h2>\n")
	b.WriteString(r.typeBars())

	if len(r.Histories) > 0 {
		b.WriteString("<h2>Training curves</h2>\n")
		for _, h := range r.Histories {
			b.WriteString(curves(h))
		}
	}
	if len(r.PerAttr) > 0 {
		fmt.Fprintf(&b, "<h2>Per-attribute recall@%d against frequency</h2>\n", r.K)
		b.WriteString(r.scatter())
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

func (r *report) legend() string {
	var b strings.Builder
	b.WriteString(`<p class="legend">`)
	for i, e := range r.Exps {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span>`, colour(i), html.EscapeString(e.Name))
	}
	if len(r.References) > 0 {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>published (not ours)</span>`, referenceColour)
	}
	b.WriteString("</p>\n")
	return b.String()
}

func (r *report) writeTable(b *bytes.Buffer) {
	rows := r.rows()
	// Wide tables scroll inside their box instead of widening the page.
	b.WriteString("<div style=\"overflow-x:auto\"><table><tr>")
	for _, h := range rows[0] {
		fmt.Fprintf(b, "<th>%s</th>", html.EscapeString(h))
	}
	b.WriteString("</tr>\n")
	for i, row := range rows[1:] {
		class := ""
		if i >= len(r.Exps) {
			class = ` class="ref"`
		}
		fmt.Fprintf(b, "<tr%s>", class)
		for _, c := range row {
			fmt.Fprintf(b, "<td>%s</td>", html.EscapeString(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table></div>\n<p class=\"note\">" + r.rankNote() +
		" Macro averages are over the attributes with positives (last column).")
	if note := r.wholeNote(); note != "" {
		b.WriteString(" " + html.EscapeString(note))
	}
	if slices.ContainsFunc(r.Cols, isCategory) {
		b.WriteString(" " + html.EscapeString(categoryNote))
	}
	if len(r.References) > 0 {
		fmt.Fprintf(b, " † %s.", html.EscapeString(refNote))
	}
	b.WriteString("</p>\n")
}

// typeBars is a grouped bar chart: one group per type and for "all", one
// bar per experiment, and the published "all" figures beside them.
func (r *report) typeBars() string {
	var groups []column
	for _, c := range r.Cols {
		if strings.HasPrefix(c.Name, "recall_") && !strings.HasSuffix(c.Name, "_micro") &&
			!strings.HasSuffix(c.Name, "_macro") {
			groups = append(groups, c)
		}
	}
	if len(groups) == 0 {
		return `<p class="note">No per-type recall in these metrics.</p>`
	}
	perGroup := len(r.Exps) + len(r.References)
	const width, height, left, bottom, top = 1000.0, 300.0, 40.0, 40.0, 10.0
	groupW := (width - left) / float64(len(groups))
	barW := math.Min(28, groupW*0.8/float64(perGroup))
	plotH := height - bottom - top
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" role="img" aria-label="per-type recall">`, width, height)
	for _, y := range []float64{0, .25, .5, .75, 1} {
		py := top + plotH*(1-y)
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, left, width, py, py)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%g%%</text>`, left-4, py+4, 100*y)
	}
	for gi, g := range groups {
		x0 := left + float64(gi)*groupW + (groupW-barW*float64(perGroup))/2
		bar := func(j int, v float64, fill, title string) float64 {
			h := plotH * math.Max(0, math.Min(1, v))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
				x0+float64(j)*barW, top+plotH-h, barW-2, h, fill, html.EscapeString(title))
			return top + plotH - h
		}
		for ei, e := range r.Exps {
			if v, ok := g.get(e, r.K); ok {
				_, whole := r.rankedWhole(e, g)
				title := fmt.Sprintf("%s %s: %.2f%%", e.Name, g.Header, 100*v)
				if whole {
					title += " (100 by construction: the top list holds every attribute)"
				}
				if y := bar(ei, v, colour(ei), title); whole {
					// The table's mark, over the bar.
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">*</text>`,
						x0+(float64(ei)+.5)*barW-1, y-2)
				}
			}
		}
		for ri, ref := range r.References {
			if v, ok := refValue(ref, g, r.K); ok {
				bar(len(r.Exps)+ri, v, referenceColour, fmt.Sprintf("%s (published): %.2f%%", ref.Name, 100*v))
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`,
			left+(float64(gi)+.5)*groupW, height-bottom+16, html.EscapeString(g.Header))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// series is one line of a line chart.
type series struct {
	Name   string
	Colour string
	Y      []float64
}

// curves draws one history: losses, validation AUC and learning rate per
// epoch, phases one after the other with a dashed line between them.
func curves(h history) string {
	epochs := slices.Clone(h.Epochs)
	slices.SortStableFunc(epochs, func(a, b artifacts.Epoch) int {
		if a.Phase != b.Phase {
			return a.Phase - b.Phase
		}
		return a.Epoch - b.Epoch
	})
	var phaseStarts []int
	pick := func(f func(artifacts.Epoch) float64) []float64 {
		out := make([]float64, len(epochs))
		for i, e := range epochs {
			out[i] = f(e)
		}
		return out
	}
	for i := 1; i < len(epochs); i++ {
		if epochs[i].Phase != epochs[i-1].Phase {
			phaseStarts = append(phaseStarts, i)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<h3>%s</h3>\n<div style=\"display:flex;gap:12px;flex-wrap:wrap\">", html.EscapeString(h.Name))
	b.WriteString(lineChart("loss", phaseStarts, false,
		series{"train", palette[0], pick(func(e artifacts.Epoch) float64 { return e.TrainLoss })},
		series{"validation", palette[1], pick(func(e artifacts.Epoch) float64 { return e.ValLoss })}))
	b.WriteString(lineChart("validation AUC", phaseStarts, false,
		series{"val AUC", palette[2], pick(func(e artifacts.Epoch) float64 { return e.ValAUC })}))
	b.WriteString(lineChart("learning rate", phaseStarts, true,
		series{"lr", palette[4], pick(func(e artifacts.Epoch) float64 { return e.LearningRate })}))
	b.WriteString("</div>\n")
	return b.String()
}

// lineChart draws series over epochs 1..n; logY plots log10 of positive
// values (learning rates span decades).
func lineChart(title string, phaseStarts []int, logY bool, ss ...series) string {
	const width, height, left, right, top, bottom = 330.0, 200.0, 48.0, 10.0, 22.0, 28.0
	tf := func(v float64) (float64, bool) {
		if math.IsNaN(v) || math.IsInf(v, 0) || (logY && v <= 0) {
			return 0, false
		}
		if logY {
			return math.Log10(v), true
		}
		return v, true
	}
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, s := range ss {
		n = max(n, len(s.Y))
		for _, v := range s.Y {
			if t, ok := tf(v); ok {
				lo, hi = math.Min(lo, t), math.Max(hi, t)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" role="img" aria-label="%s">`,
		width, height, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%g" y="14">%s</text>`, left, html.EscapeString(title))
	if n == 0 || lo > hi {
		b.WriteString(`<text x="60" y="100">no data</text></svg>`)
		return b.String()
	}
	if hi == lo {
		hi, lo = hi+.5, lo-.5
	}
	px := func(i int) float64 {
		if n == 1 {
			return left + (width-left-right)/2
		}
		return left + float64(i)*(width-left-right)/float64(n-1)
	}
	py := func(t float64) float64 { return top + (height-top-bottom)*(1-(t-lo)/(hi-lo)) }
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#ccc"/>`,
		left, top, width-left-right, height-top-bottom)
	for _, t := range []float64{lo, hi} {
		label := fmt.Sprintf("%.3g", t)
		if logY {
			label = fmt.Sprintf("%.1e", math.Pow(10, t))
		}
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`, left-3, py(t)+4, label)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">epoch %d</text>`, width-right, height-8, n)
	for _, p := range phaseStarts {
		x := (px(p-1) + px(p)) / 2
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" stroke="#888" stroke-dasharray="4 3"/>`,
			x, x, top, height-bottom)
	}
	for si, s := range ss {
		var pts []string
		for i, v := range s.Y {
			if t, ok := tf(v); ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(i), py(t)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Colour, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%g" y="%g" fill="%s" style="fill:%s">%s</text>`,
			left+6+float64(si)*90, top+12, s.Colour, s.Colour, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>")
	return b.String()
}

// scatter plots each attribute's recall at k against its number of
// positives (log scale), one colour per experiment.
func (r *report) scatter() string {
	const width, height, left, bottom, top, right = 1000.0, 340.0, 48.0, 36.0, 10.0, 10.0
	maxPos := 1.0
	for _, pa := range r.PerAttr {
		for _, row := range pa.Rows {
			maxPos = math.Max(maxPos, float64(row.Positives))
		}
	}
	logMax := math.Max(1, math.Log10(maxPos))
	px := func(pos int64) float64 { return left + (width-left-right)*math.Log10(float64(pos))/logMax }
	py := func(v float64) float64 { return top + (height-top-bottom)*(1-v) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" role="img" aria-label="recall against frequency">`, width, height)
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#ccc"/>`,
		left, top, width-left-right, height-top-bottom)
	for _, y := range []float64{0, .5, 1} {
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%g%%</text>`, left-4, py(y)+4, 100*y)
	}
	for e := 0; float64(e) <= logMax; e++ {
		x := px(int64(math.Pow(10, float64(e))))
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%g</text>`, x, height-bottom+14, math.Pow(10, float64(e)))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">positives in the evaluated images (log scale)</text>`,
		left+(width-left)/2, height-4)
	for i, pa := range r.PerAttr {
		// The experiment's colour when the same stage produced its metrics.
		c := colour(len(r.Exps) + i)
		for ei, e := range r.Exps {
			if e.Stage == pa.Stage || e.Name == pa.Name {
				c = colour(ei)
			}
		}
		for _, row := range pa.Rows {
			if row.K != r.K || row.Positives == 0 {
				continue
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s" fill-opacity="0.7"><title>%s: %s, %d positives, recall %.2f%%</title></circle>`,
				px(row.Positives), py(row.Recall), c, html.EscapeString(pa.Name), html.EscapeString(row.Name),
				row.Positives, 100*row.Recall)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
