package audit

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
)

// Chart is the bar chart of a count report: one bar per hour of the day
// or weekday (every slot, in order), or one per key of the largest counts
// (failed logins by person, application or address). HTML exports draw it
// as SVG, PDF exports with the PDF's own lines and rectangles.
type Chart struct {
	Title  string
	Labels []string // short labels under (or beside) the bars
	Names  []string // full names (SVG tooltips)
	Values []int64
	// Horizontal: keyed bars, one per line with its label on the left
	// (largest first); else vertical bars over fixed slots.
	Horizontal bool
}

// MaxChartBars is the most bars of a chart by key (the largest counts).
const MaxChartBars = 15

// CountChart is the chart of a count report, nil when it has none (a
// report split by hour or day buckets, or without counts).
func CountChart(q CountQuery, counts []Count) *Chart {
	if q.Bucket != NoBucket || len(counts) == 0 {
		return nil
	}
	c := &Chart{Title: "Records by " + q.By.String()}
	if q.By == ByHourOfDay || q.By == ByWeekday {
		n := 24
		if q.By == ByWeekday {
			n = 7
		}
		c.Values = make([]int64, n)
		for _, k := range counts {
			i, err := strconv.Atoi(k.Key)
			if err != nil || i < 0 || i >= n {
				continue
			}
			c.Values[i] += k.Count
		}
		for i := range n {
			name := q.By.Label(strconv.Itoa(i))
			label := strconv.Itoa(i)
			if q.By == ByWeekday {
				label = name[:3]
			}
			c.Labels, c.Names = append(c.Labels, label), append(c.Names, name)
		}
		return c
	}
	c.Horizontal = true
	for _, k := range counts[:min(len(counts), MaxChartBars)] {
		name := k.Key
		if name == "" {
			name = "(none)"
		}
		c.Labels, c.Names, c.Values = append(c.Labels, shorten(name, 32)), append(c.Names, name), append(c.Values, k.Count)
	}
	return c
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (c *Chart) top() int64 {
	var top int64 = 1
	for _, v := range c.Values {
		top = max(top, v)
	}
	return top
}

// SVG draws the chart as inline SVG (labels escaped).
func (c *Chart) SVG() template.HTML {
	if c == nil {
		return ""
	}
	var b strings.Builder
	top := c.top()
	esc := template.HTMLEscapeString
	if c.Horizontal {
		const label, width, line = 220, 480, 22
		h := line*len(c.Values) + 10
		fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`,
			label+width+80, h, esc(c.Title))
		for i, v := range c.Values {
			y := i*line + 4
			w := int(v * width / top)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>`, label-6, y+14, esc(c.Labels[i]))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#4a7bd0"><title>%s: %d</title></rect>`,
				label, y, max(w, 1), line-6, esc(c.Names[i]), v)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%d</text>`, label+w+4, y+13, v)
		}
		return template.HTML(b.String() + "</svg>\n") //nolint:gosec // numbers and escaped labels only
	}
	n := len(c.Values)
	const width, height, bar = 720, 200, 24
	step := width / n
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">`,
		width, height+20, esc(c.Title))
	for i, v := range c.Values {
		h := int(v * height / top)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#4a7bd0"><title>%s: %d</title></rect>`,
			i*step+2, height-h, min(bar, step-4), h, esc(c.Names[i]), v)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10">%s</text>`, i*step+2, height+14, esc(c.Labels[i]))
	}
	return template.HTML(b.String() + "</svg>\n") //nolint:gosec // numbers and escaped labels only
}
