// Package svgplot draws the bench's two kinds of chart, lines with points
// and bar panels, as plain SVG text.
//
// It replaced gonum.org/v1/plot, which every xdpscan command paid for at
// start-up whether it drew or not: its package initialisation parses the
// Liberation fonts, and it pulls in a LaTeX renderer, a PDF writer and
// eight more modules. Without it (perf stat -r 30 task-clock, alternated,
// 2026-12-05) a 1-probe scan takes 77 ms of CPU against 81-83, `xdpscan
// version` 95 against 110, package initialisation 10.9 ms against 13.2,
// and the binary is 28.4 MB instead of 36.7. The bench needs no text
// metrics: the SVG viewer lays text out (text-anchor).
package svgplot

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Point is one point of a Series.
type Point struct{ X, Y float64 }

// Series is one line of a Lines chart, drawn in the order of its points.
type Series struct {
	Name   string
	Points []Point
}

// Mark is a vertical dashed line across a Lines chart at X, named in the
// legend.
type Mark struct {
	X     float64
	Label string
}

// Lines is a chart of lines with a marker at each point.
type Lines struct {
	Title, XLabel, YLabel string
	// YMin and YMax fix the y axis; with YMax <= YMin it spans the data.
	YMin, YMax float64
	Series     []Series
	Marks      []Mark
	// LegendLeft puts the legend in the lower left corner instead of the
	// lower right.
	LegendLeft bool
}

// Bars is one bar chart of Panels: a bar per name, labelled with
// fmt.Sprintf(Format, value).
type Bars struct {
	Title  string
	Names  []string
	Values []float64
	Format string
}

// The palette and the line dashes, one per series in turn, as
// gonum/plot's plotutil drew them (the plots in docs/bench keep their
// look).
var (
	colors = []string{"#F15A60", "#7AC36A", "#5A9BD4", "#FAA75B", "#9E67AB", "#CE7058", "#D77FB4", "#737373"}
	dashes = []string{"", "6,2", "2,2", "1,1", "5,2,1,2", "10,2,2,2"}
)

const (
	fontSize  = 12
	smallFont = 10
	markGray  = "#787878"
)

// canvas collects SVG elements in page coordinates (y down).
type canvas struct {
	b    bytes.Buffer
	w, h float64
}

func newCanvas(w, h float64) *canvas {
	c := &canvas{w: w, h: h}
	fmt.Fprintf(&c.b, "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%spt\" height=\"%spt\" viewBox=\"0 0 %s %s\" font-family=\"Liberation Serif, serif\">\n",
		num(w), num(h), num(w), num(h))
	fmt.Fprintf(&c.b, "<rect width=\"%s\" height=\"%s\" fill=\"#FFFFFF\"/>\n", num(w), num(h))
	return c
}

func (c *canvas) bytes() []byte {
	c.b.WriteString("</svg>\n")
	return c.b.Bytes()
}

func (c *canvas) line(x1, y1, x2, y2 float64, stroke string, width float64, dash string) {
	fmt.Fprintf(&c.b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"%s\"%s/>\n",
		num(x1), num(y1), num(x2), num(y2), stroke, num(width), dashAttr(dash))
}

func (c *canvas) polyline(pts []Point, stroke, dash string) {
	var s strings.Builder
	for i, p := range pts {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(num(p.X) + "," + num(p.Y))
	}
	fmt.Fprintf(&c.b, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\"%s/>\n", s.String(), stroke, dashAttr(dash))
}

// marker draws series i's marker at (x, y): circle, square, triangle,
// cross, plus, in turn.
func (c *canvas) marker(i int, x, y float64, stroke string) {
	const r = 2.5
	style := fmt.Sprintf(" fill=\"none\" stroke=\"%s\" stroke-width=\"0.5\"", stroke)
	switch i % 5 {
	case 0:
		fmt.Fprintf(&c.b, "<circle cx=\"%s\" cy=\"%s\" r=\"%s\"%s/>\n", num(x), num(y), num(r), style)
	case 1:
		fmt.Fprintf(&c.b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"%s/>\n", num(x-r), num(y-r), num(2*r), num(2*r), style)
	case 2:
		fmt.Fprintf(&c.b, "<polygon points=\"%s,%s %s,%s %s,%s\"%s/>\n", num(x), num(y-r), num(x-r), num(y+r), num(x+r), num(y+r), style)
	case 3:
		fmt.Fprintf(&c.b, "<path d=\"M%s,%sL%s,%sM%s,%sL%s,%s\"%s/>\n", num(x-r), num(y-r), num(x+r), num(y+r), num(x-r), num(y+r), num(x+r), num(y-r), style)
	default:
		fmt.Fprintf(&c.b, "<path d=\"M%s,%sL%s,%sM%s,%sL%s,%s\"%s/>\n", num(x-r), num(y), num(x+r), num(y), num(x), num(y-r), num(x), num(y+r), style)
	}
}

// text writes s at (x, y), anchored "start", "middle" or "end"; rotate
// turns it a quarter counter-clockwise about that point.
func (c *canvas) text(x, y float64, size int, anchor, s string, rotate bool) {
	tr := ""
	if rotate {
		tr = fmt.Sprintf(" transform=\"rotate(-90 %s %s)\"", num(x), num(y))
	}
	fmt.Fprintf(&c.b, "<text x=\"%s\" y=\"%s\" font-size=\"%d\" text-anchor=\"%s\"%s>%s</text>\n", num(x), num(y), size, anchor, tr, escape(s))
}

func dashAttr(d string) string {
	if d == "" {
		return ""
	}
	return " stroke-dasharray=\"" + d + "\""
}

func escape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// num is a coordinate or length with at most 2 decimals; a value that is
// not finite (a median of nothing) is drawn at 0 rather than written as
// "NaN", which no SVG viewer reads.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// finite is whether v can be placed on an axis.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Ticks returns the round values (1, 2 or 5 times a power of ten apart)
// from lo to hi, about n of them.
func Ticks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	exp := math.Floor(math.Log10(raw))
	// A tick is k*m times 10^exp, computed as an integer times or over an
	// exact power of ten, so 3 steps of 0.1 print as 0.3.
	scale := func(k float64) float64 { return k * math.Pow(10, exp) }
	if exp < 0 {
		scale = func(k float64) float64 { return k / math.Pow(10, -exp) }
	}
	m := 10.0
	for _, c := range []float64{1, 2, 5} {
		if scale(c) >= raw {
			m = c
			break
		}
	}
	var out []float64
	for k := math.Ceil(lo / scale(m)); scale(k*m) <= hi+math.Abs(hi)*1e-12; k++ {
		v := scale(k * m)
		if v == 0 {
			v = 0 // not -0
		}
		out = append(out, v)
	}
	return out
}

// tickLabel prints a tick value without float noise.
func tickLabel(v float64) string {
	if v == 0 {
		v = 0 // not "-0"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// plotArea maps data to a frame inside a canvas.
type plotArea struct {
	left, top, right, bottom float64 // page coordinates of the frame
	x0, x1, y0, y1           float64 // data range
}

func (a plotArea) px(x float64) float64 {
	if a.x1 == a.x0 {
		return (a.left + a.right) / 2
	}
	return a.left + (x-a.x0)/(a.x1-a.x0)*(a.right-a.left)
}

func (a plotArea) py(y float64) float64 {
	if a.y1 == a.y0 {
		return (a.top + a.bottom) / 2
	}
	return a.bottom - (y-a.y0)/(a.y1-a.y0)*(a.bottom-a.top)
}

// axes draws the frame's left and bottom axes with the given ticks and a
// light grid, and the labels.
func (c *canvas) axes(a plotArea, xt, yt []float64, xLabel, yLabel string, xNames []string) {
	const grid = "#808080"
	for _, v := range yt {
		y := a.py(v)
		c.line(a.left, y, a.right, y, grid, 0.25, "")
		c.line(a.left-4, y, a.left, y, "#000000", 0.5, "")
		c.text(a.left-6, y+3.5, smallFont, "end", tickLabel(v), false)
	}
	for i, v := range xt {
		x := a.px(v)
		label := tickLabel(v)
		if xNames != nil {
			label = xNames[i]
		} else {
			c.line(x, a.top, x, a.bottom, grid, 0.25, "")
		}
		c.line(x, a.bottom, x, a.bottom+4, "#000000", 0.5, "")
		c.text(x, a.bottom+15, smallFont, "middle", label, false)
	}
	c.line(a.left, a.top, a.left, a.bottom, "#000000", 0.5, "")
	c.line(a.left, a.bottom, a.right, a.bottom, "#000000", 0.5, "")
	if xLabel != "" {
		c.text((a.left+a.right)/2, a.bottom+30, fontSize, "middle", xLabel, false)
	}
	if yLabel != "" {
		c.text(a.left-32, (a.top+a.bottom)/2, fontSize, "middle", yLabel, true)
	}
}

// SVG draws the chart on a w x h point page.
func (l Lines) SVG(w, h float64) []byte {
	c := newCanvas(w, h)
	x0, x1 := math.Inf(1), math.Inf(-1)
	y0, y1 := l.YMin, l.YMax
	fitY := !(l.YMax > l.YMin)
	if fitY {
		y0, y1 = math.Inf(1), math.Inf(-1)
	}
	see := func(p Point) {
		if !finite(p.X) || !finite(p.Y) {
			return
		}
		x0, x1 = min(x0, p.X), max(x1, p.X)
		if fitY {
			y0, y1 = min(y0, p.Y), max(y1, p.Y)
		}
	}
	for _, s := range l.Series {
		for _, p := range s.Points {
			see(p)
		}
	}
	for _, m := range l.Marks {
		if finite(m.X) {
			x0, x1 = min(x0, m.X), max(x1, m.X)
		}
	}
	if math.IsInf(x0, 0) {
		x0, x1 = 0, 1
	}
	if math.IsInf(y0, 0) {
		y0, y1 = 0, 1
	}
	a := plotArea{left: 60, top: 30, right: w - 12, bottom: h - 45, x0: x0, x1: x1, y0: y0, y1: y1}
	c.text(w/2, 18, fontSize, "middle", l.Title, false)
	c.axes(a, Ticks(x0, x1, 5), Ticks(y0, y1, 5), l.XLabel, l.YLabel, nil)

	type entry struct {
		name, color, dash string
		marker            int
	}
	var legend []entry
	for i, s := range l.Series {
		col, dash := colors[i%len(colors)], dashes[i%len(dashes)]
		var pts []Point
		for _, p := range s.Points {
			if finite(p.X) && finite(p.Y) {
				pts = append(pts, Point{a.px(p.X), a.py(p.Y)})
			}
		}
		c.polyline(pts, col, dash)
		for _, p := range pts {
			c.marker(i, p.X, p.Y, col)
		}
		legend = append(legend, entry{s.Name, col, dash, i})
	}
	for _, m := range l.Marks {
		x := a.px(m.X)
		c.line(x, a.top, x, a.bottom, markGray, 1, "4,3")
		legend = append(legend, entry{m.Label, markGray, "4,3", -1})
	}
	lx := a.right - 180
	if l.LegendLeft {
		lx = a.left + 8
	}
	for i, e := range legend {
		y := a.bottom - 12 - float64(len(legend)-1-i)*14
		c.line(lx, y, lx+20, y, e.color, 1, e.dash)
		if e.marker >= 0 {
			c.marker(e.marker, lx+10, y, e.color)
		}
		c.text(lx+24, y+4, fontSize, "start", e.name, false)
	}
	return c.bytes()
}

// Panels draws the bar charts side by side, each panelW x h points.
func Panels(panels []Bars, panelW, h float64) []byte {
	c := newCanvas(panelW*float64(len(panels)), h)
	for i, p := range panels {
		off := panelW * float64(i)
		top := 0.0
		for _, v := range p.Values {
			if finite(v) {
				top = max(top, v)
			}
		}
		top = max(top*1.15, 1)
		n := float64(len(p.Values))
		a := plotArea{left: off + 55, top: 30, right: off + panelW - 10, bottom: h - 30, x0: -0.5, x1: n - 0.5, y0: 0, y1: top}
		xt := make([]float64, len(p.Values))
		for j := range xt {
			xt[j] = float64(j)
		}
		c.text(off+panelW/2, 18, fontSize, "middle", p.Title, false)
		c.axes(a, xt, Ticks(0, top, 5), "", "", p.Names)
		const barW = 28
		for j, v := range p.Values {
			x, y := a.px(float64(j)), a.py(v)
			fmt.Fprintf(&c.b, "<rect x=\"%s\" y=\"%s\" width=\"%d\" height=\"%s\" fill=\"%s\"/>\n",
				num(x-barW/2), num(y), barW, num(a.bottom-y), colors[0])
			c.text(x, y-3, smallFont, "middle", fmt.Sprintf(p.Format, v), false)
		}
	}
	return c.bytes()
}
