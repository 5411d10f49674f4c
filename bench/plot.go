package bench

import (
	"fmt"
	"image/color"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PlotScan draws found % against achieved send rate, one line per tool,
// and the bare sendmmsg loop's rate as a vertical line.
func PlotScan(path string, r *ScanResults) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Found %% of the truth vs send rate (%s target, %s x %d ports)", r.Target, r.Prefix, len(r.Ports))
	p.X.Label.Text = "achieved send rate (thousand probes/s, median)"
	p.Y.Label.Text = "found (% of open ports, median)"
	p.Y.Min, p.Y.Max = 0, 105
	p.Add(plotter.NewGrid())
	byTool := map[string]plotter.XYs{}
	var tools []string
	loop := 0.0
	for _, s := range r.Steps() {
		if s.Tool == "sendmmsg" {
			loop = s.SendPPS / 1000
			continue
		}
		if _, ok := byTool[s.Tool]; !ok {
			tools = append(tools, s.Tool)
		}
		byTool[s.Tool] = append(byTool[s.Tool], plotter.XY{X: s.SendPPS / 1000, Y: s.FoundPct})
	}
	var lines []any
	for _, t := range tools {
		xy := byTool[t]
		sort.Slice(xy, func(i, j int) bool { return xy[i].X < xy[j].X })
		lines = append(lines, t, xy)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	if loop > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: loop, Y: 0}, {X: loop, Y: 105}})
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 120}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("bare sendmmsg loop (%.0fk/s)", loop), l)
	}
	p.Legend.Top = false
	p.Legend.Left = true
	return saveSVG(path, 9*vg.Inch, 5*vg.Inch, p)
}

// PlotCapture draws, per tool, the CPU the capture added per packet and
// the packets it lost, side by side.
func PlotCapture(path string, r *CaptureResults) error {
	var names []string
	var cpu, lost []float64
	for _, s := range r.Steps() {
		if s.Tool == "none" {
			continue
		}
		names = append(names, s.Tool)
		cpu = append(cpu, max(s.AddedCPUNs, 0))
		lost = append(lost, float64(s.LostMax))
	}
	if len(names) == 0 {
		return fmt.Errorf("capture plot: no tool ran")
	}
	return PlotPanels(path, []Panel{
		{Title: "CPU added per packet (ns, all CPUs, median)", Names: names, Values: cpu, Format: "%.0f ns"},
		{Title: fmt.Sprintf("packets lost of %d (worst run)", r.Packets), Names: names, Values: lost, Format: "%.0f"},
	})
}

// Panel is one bar chart of PlotPanels: a value per name, labelled with
// Format.
type Panel struct {
	Title  string
	Names  []string
	Values []float64
	Format string
}

// PlotPanels draws bar charts side by side into one SVG.
func PlotPanels(path string, panels []Panel) error {
	var row []*plot.Plot
	for _, pn := range panels {
		p, err := barPlot(pn.Title, pn.Names, pn.Values, pn.Format)
		if err != nil {
			return err
		}
		row = append(row, p)
	}
	w, h := vg.Length(len(panels))*5.5*vg.Inch, 4.5*vg.Inch
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	return writeCanvas(path, c)
}

func barPlot(title string, names []string, v []float64, labelFmt string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	bars, err := plotter.NewBarChart(plotter.Values(v), vg.Points(28))
	if err != nil {
		return nil, err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Min = 0
	top := 0.0
	for _, x := range v {
		top = max(top, x)
	}
	p.Y.Max = max(top*1.15, 1)
	xys := make(plotter.XYs, len(v))
	labels := make([]string, len(v))
	for i, x := range v {
		xys[i] = plotter.XY{X: float64(i), Y: x}
		labels[i] = fmt.Sprintf(labelFmt, x)
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].YAlign = draw.YBottom
	}
	p.Add(l)
	return p, nil
}

func saveSVG(path string, w, h vg.Length, p *plot.Plot) error {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	return writeCanvas(path, c)
}

func writeCanvas(path string, c *vgsvg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
