// Command plotcores draws docs/bench/cores.md's plots (issue 25: 1 vs 2
// rings, 1 vs 2 senders) from the rounds in a JSON file, medians of each
// case's rounds:
//
//	go run ./bench/plotcores docs/bench/cores.json docs/bench
//
// The rounds come from docs/bench/cores-rings.sh and cores-txxdp.sh; the
// file says when and where they were taken.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xdpscan/xdpscan/bench"
)

// figure is one SVG: cases side by side in each panel.
type figure struct {
	File   string   `json:"file"`
	Panels []string `json:"panels"` // a title per measure, with its unit
	Format []string `json:"format"` // a label format per measure
	Cases  []struct {
		Name   string      `json:"name"`
		Rounds [][]float64 `json:"rounds"` // per measure, the rounds' values
	} `json:"cases"`
}

func run(in, outDir string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var figs struct {
		Taken   string   `json:"taken"`
		Figures []figure `json:"figures"`
	}
	if err := json.Unmarshal(b, &figs); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	for _, f := range figs.Figures {
		var panels []bench.Panel
		for m, title := range f.Panels {
			p := bench.Panel{Title: title, Format: f.Format[m]}
			for _, c := range f.Cases {
				if m >= len(c.Rounds) {
					return fmt.Errorf("%s: case %q has no rounds for %q", f.File, c.Name, title)
				}
				p.Names = append(p.Names, c.Name)
				p.Values = append(p.Values, bench.Median(c.Rounds[m]))
			}
			panels = append(panels, p)
		}
		if err := bench.PlotPanels(filepath.Join(outDir, f.File), panels); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/plotcores FILE.json OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "plotcores:", err)
		os.Exit(1)
	}
}
