package svgplot

import (
	"bytes"
	"encoding/xml"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi float64
		n      int
		want   []float64
	}{
		{"percent axis", 0, 105, 5, []float64{0, 50, 100}},
		{"thousands of pps", 48, 738, 5, []float64{200, 400, 600}},
		{"bar counts", 0, 92, 5, []float64{0, 20, 40, 60, 80}},
		{"fractions", 0, 0.35, 5, []float64{0, 0.1, 0.2, 0.3}},
		{"one point", 7, 7, 5, []float64{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Ticks(tc.lo, tc.hi, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("Ticks(%v, %v, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
			}
		})
	}
}

// element is any SVG element, with its attributes and children.
type element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []element  `xml:",any"`
}

func (e element) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// parse checks b is one well-formed svg document and returns its
// elements, depth first.
func parse(t *testing.T, b []byte) []element {
	t.Helper()
	var root element
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b)
	}
	if root.XMLName.Local != "svg" {
		t.Fatalf("root is %q, want svg", root.XMLName.Local)
	}
	var all []element
	var walk func(e element)
	walk = func(e element) {
		for _, c := range e.Children {
			all = append(all, c)
			walk(c)
		}
	}
	walk(root)
	return all
}

func TestLinesDrawsEverySeriesAndMark(t *testing.T) {
	l := Lines{
		Title: "found <% & rate>", XLabel: "rate", YLabel: "found", YMin: 0, YMax: 105,
		Series: []Series{
			{Name: "xdpscan", Points: []Point{{50, 100}, {100, 100}, {300, 99}}},
			{Name: "masscan", Points: []Point{{50, 100}, {150, 80}}},
		},
		Marks: []Mark{{X: 700, Label: "bare sendmmsg loop (700k/s)"}},
	}
	els := parse(t, l.SVG(648, 360))
	var polylines, markers, dashed int
	var texts []string
	for _, e := range els {
		switch e.XMLName.Local {
		case "polyline":
			polylines++
			if got := len(strings.Fields(e.attr("points"))); got != len(l.Series[polylines-1].Points) {
				t.Errorf("series %d: %d points drawn, want %d", polylines-1, got, len(l.Series[polylines-1].Points))
			}
		case "circle", "rect", "polygon", "path":
			if e.attr("stroke-width") == "0.5" {
				markers++
			}
		case "line":
			if e.attr("stroke-dasharray") == "4,3" {
				dashed++
			}
		case "text":
			texts = append(texts, e.Text)
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines, want one per series (2)", polylines)
	}
	if markers != 5+2 { // one per point, one per series in the legend
		t.Errorf("%d markers, want 7", markers)
	}
	if dashed != 2 { // the mark and its legend line
		t.Errorf("%d dashed lines, want 2", dashed)
	}
	for _, want := range []string{"found <% & rate>", "xdpscan", "masscan", "bare sendmmsg loop (700k/s)", "0", "50", "100", "rate", "found"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
}

func TestPanelsBarHeightsFollowValues(t *testing.T) {
	b := Panels([]Bars{
		{Title: "cpu", Names: []string{"a", "b", "c"}, Values: []float64{30, 60, 0}, Format: "%.0f ns"},
		{Title: "lost", Names: []string{"a", "b", "c"}, Values: []float64{0, 0, 80}, Format: "%.0f"},
	}, 396, 324)
	var heights []float64
	var labels []string
	for _, e := range parse(t, b) {
		if e.XMLName.Local == "rect" && e.attr("width") == "28" {
			h, err := strconv.ParseFloat(e.attr("height"), 64)
			if err != nil {
				t.Fatal(err)
			}
			heights = append(heights, h)
		}
		if e.XMLName.Local == "text" {
			labels = append(labels, e.Text)
		}
	}
	if len(heights) != 6 {
		t.Fatalf("%d bars, want 6", len(heights))
	}
	if heights[1] < 1.99*heights[0] || heights[1] > 2.01*heights[0] || heights[2] != 0 || heights[5] == 0 {
		t.Errorf("bar heights %v: want b twice a, c and the lost bars of a and b empty", heights)
	}
	for _, want := range []string{"30 ns", "60 ns", "0 ns", "80", "cpu", "lost", "a", "b", "c"} {
		if !slices.Contains(labels, want) {
			t.Errorf("no label %q in %q", want, labels)
		}
	}
}

func TestNonFiniteValuesStayReadable(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for name, b := range map[string][]byte{
		"lines": Lines{Title: "t", Series: []Series{{Name: "a", Points: []Point{{1, nan}, {2, 50}, {inf, 3}, {4, 60}}}}}.SVG(300, 200),
		"bars":  Panels([]Bars{{Title: "t", Names: []string{"a", "b"}, Values: []float64{nan, 5}, Format: "%.0f"}}, 300, 200),
	} {
		if bytes.Contains(b, []byte("NaN\"")) || bytes.Contains(b, []byte("Inf\"")) {
			t.Errorf("%s: a coordinate is not a number:\n%s", name, b)
		}
		for _, e := range parse(t, b) {
			if e.XMLName.Local == "polyline" && len(strings.Fields(e.attr("points"))) != 2 {
				t.Errorf("%s: polyline %q, want the 2 finite points", name, e.attr("points"))
			}
		}
	}
}
