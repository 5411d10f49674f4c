package main

import flag "github.com/spf13/pflag"

// commandGroups puts the flags of the commands other than scan (whose
// groups are in scanhabits.go) in the help's groups, by command name.
// A flag missing here is shown under "Advanced"; a name here that the
// command does not have is skipped, so a flag can move or go without
// touching this table.
var commandGroups = map[string]map[string][]string{
	"capture": {
		"Paths":           {"i", "interface", "rx", "mode"},
		"Rate and timing": {"c", "count", "duration"},
		"Output":          {"w", "pcap", "time-stamp-precision", "s", "snaplen", "count-only", "stats-json", "metrics-addr"},
	},
	"monitor": {
		"Paths":           {"i", "interface", "mode"},
		"Rate and timing": {"duration", "interval"},
		"Output":          {"json", "metrics-addr"},
	},
	"merge": {
		"Output": {"o", "format"},
	},
}

var commandMetavars = map[string]string{
	"i": "IFACE", "interface": "IFACE", "w": "FILE", "stats-json": "FILE", "out": "DIR", "Z": "USER", "user": "USER",
	"s": "BYTES", "snaplen": "BYTES", "metrics-addr": "HOST:PORT", "o": "FILE", "dst": "ADDR", "filter": "EXPR",
}

// applyHelpGroups sets the groups and value names of fs's flags from the
// tables above (an existing annotation stays).
func applyHelpGroups(fs *flag.FlagSet) {
	for group, names := range commandGroups[fs.Name()] {
		for _, n := range names {
			if fl := fs.Lookup(n); fl != nil && len(fl.Annotations[annGroup]) == 0 {
				fs.SetAnnotation(n, annGroup, []string{group})
			}
		}
	}
	for n, mv := range commandMetavars {
		if fl := fs.Lookup(n); fl != nil && len(fl.Annotations[annMetavar]) == 0 {
			fs.SetAnnotation(n, annMetavar, []string{mv})
		}
	}
}
