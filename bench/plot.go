package bench

import (
	"fmt"
	"os"
	"sort"

	"github.com/xdpscan/xdpscan/internal/svgplot"
)

// PlotScan draws found % against achieved send rate, one line per tool,
// and the bare sendmmsg loop's rate as a vertical line.
func PlotScan(path string, r *ScanResults) error {
	l := svgplot.Lines{
		Title:      fmt.Sprintf("Found %% of the truth vs send rate (%s target, %s x %d ports)", r.Target, r.Prefix, len(r.Ports)),
		XLabel:     "achieved send rate (thousand probes/s, median)",
		YLabel:     "found (% of open ports, median)",
		YMin:       0,
		YMax:       105,
		LegendLeft: true,
	}
	byTool := map[string]int{}
	loop := 0.0
	for _, s := range r.Steps() {
		if s.Tool == "sendmmsg" { // the loop runs flat out whatever rate is asked: its last step
			loop = s.SendPPS / 1000
			continue
		}
		i, ok := byTool[s.Tool]
		if !ok {
			i = len(l.Series)
			byTool[s.Tool] = i
			l.Series = append(l.Series, svgplot.Series{Name: s.Tool})
		}
		l.Series[i].Points = append(l.Series[i].Points, svgplot.Point{X: s.SendPPS / 1000, Y: s.FoundPct})
	}
	for _, s := range l.Series {
		sort.Slice(s.Points, func(i, j int) bool { return s.Points[i].X < s.Points[j].X })
	}
	if loop > 0 {
		l.Marks = []svgplot.Mark{{X: loop, Label: fmt.Sprintf("bare sendmmsg loop (%.0fk/s)", loop)}}
	}
	return writeSVG(path, l.SVG(648, 360))
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
type Panel = svgplot.Bars

// PlotPanels draws bar charts side by side into one SVG.
func PlotPanels(path string, panels []Panel) error {
	for _, p := range panels {
		if len(p.Names) != len(p.Values) {
			return fmt.Errorf("plot %s: %d names for %d values", path, len(p.Names), len(p.Values))
		}
	}
	return writeSVG(path, svgplot.Panels(panels, 396, 324))
}

func writeSVG(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
