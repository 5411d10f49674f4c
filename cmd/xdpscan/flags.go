package main

// GNU-style flags (spf13/pflag) with the spellings masscan, nmap, zmap and
// tcpdump users type from memory. Every subcommand registers its flags on
// a *flag.FlagSet (pflag's, which has std flag's methods), and parses them
// with parseFlags, which first rewrites the command line into the long
// form pflag parses:
//
//	-p80, -p 80, -p=80     --p=80 (a one-letter flag's value may be glued)
//	-p-                    --p=-  (nmap: every port)
//	-vv, -nv               --v --v, --n --v (one-letter switches combine)
//	-iL FILE, -oX FILE     --iL FILE (nmap's two-letter flags keep one dash)
//	-rate 100              --rate 100 (Go's one-dash long form still works)
//
// and refuses what it does not know in one line on stderr, with a "did
// you mean" or, for another scanner's flag, what xdpscan has instead.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	flag "github.com/spf13/pflag"
	"golang.org/x/term"
)

// synopses holds each flag set's help text (pflag's FlagSet has no field
// for it).
var synopses sync.Map // *flag.FlagSet -> string

// newFlags makes a flag set whose errors come back to run() instead of
// exiting, and whose --help prints the command's own text.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	synopses.Store(fs, synopsis)
	return fs
}

// command is the name used in "see `xdpscan scan --help`".
func command(fs *flag.FlagSet) string { return fs.Name() }

// parseFlags parses args with flags and positional arguments interleaved
// (`xdpscan scan 198.18.0.0/16 -p 80` as masscan and nmap accept).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	finishFlags(fs)
	if collectFlags != nil {
		collectFlags(fs)
		return nil, errHelpShown
	}
	norm, err := normalizeArgs(fs, args)
	if errors.Is(err, errHelpShown) {
		printHelp(os.Stdout, fs, helpWidth(os.Stdout))
		return nil, errHelpShown
	}
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(norm); err != nil {
		return nil, translateParseError(fs, err)
	}
	return fs.Args(), nil
}

// finishFlags makes every duration flag also take a plain number of
// seconds (masscan's and zmap's --wait 2), whoever registered it.
func finishFlags(fs *flag.FlagSet) {
	applyHelpGroups(fs)
	fs.VisitAll(func(fl *flag.Flag) {
		if _, done := fl.Value.(*secondsValue); !done && fl.Value.Type() == "duration" {
			fl.Value = &secondsValue{fl.Value}
		}
	})
}

// secondsValue is a duration flag that takes "2" and "0.5" as seconds as
// well as Go's "2s", "500ms", "2m".
type secondsValue struct{ flag.Value }

func (v *secondsValue) Set(s string) error {
	if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/1e9 {
			return fmt.Errorf("out of range")
		}
		s = time.Duration(f * float64(time.Second)).String()
	}
	return v.Value.Set(s)
}

// dashNames are the flags spelled with one dash although longer than a
// letter (nmap's): shown, suggested and accepted as -iL.
var dashNames = map[string]bool{"iL": true, "sU": true, "sT": true, "sS": true, "Pn": true, "sn": true,
	"oL": true, "oX": true, "oG": true, "oJ": true, "oD": true, "oN": true, "oA": true, "oM": true}

// dispName is a flag as the user types it: -p, -iL, --rate.
func dispName(name string) string {
	if len(name) == 1 || dashNames[name] {
		return "-" + name
	}
	return "--" + name
}

// takesValue says whether the flag needs an argument (a switch has a
// NoOptDefVal: bool and count flags).
func takesValue(fl *flag.Flag) bool { return fl.NoOptDefVal == "" }

// normalizeArgs rewrites args to the long forms pflag parses (see the top
// of this file). Positional arguments, a flag's value (even one starting
// with "-", as in --tx-relay-cpu -1) and everything after "--" pass as
// they are.
func normalizeArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		double := strings.HasPrefix(a, "--")
		body := strings.TrimLeft(a, "-")
		name, val, hasVal := strings.Cut(body, "=")
		if name == "help" || (name == "h" && fs.Lookup("h") == nil) {
			return nil, errHelpShown
		}
		if hint, ok := foreignFlag(fs, a, name); ok {
			return nil, usageError("%s: %s (see `xdpscan %s --help`)", command(fs), hint, command(fs))
		}
		if fl := fs.Lookup(name); fl != nil && name != "" {
			arg := "--" + name
			if hasVal {
				arg += "=" + val
			}
			out = append(out, arg)
			if !hasVal && takesValue(fl) {
				if i+1 >= len(args) {
					return nil, usageError("%s: %s needs a value (see `xdpscan %s --help`)", command(fs), dispName(name), command(fs))
				}
				out = append(out, args[i+1])
				i++
			}
			continue
		}
		if double {
			return nil, unknownFlag(fs, a, name)
		}
		// One dash: a cluster of one-letter flags, the last of which may
		// take the rest of the word, or the next word, as its value.
		for j := 1; j < len(a); j++ {
			fl := fs.Lookup(a[j : j+1])
			if fl == nil {
				fl = fs.ShorthandLookup(a[j : j+1]) // registered with pflag's ...VarP
			}
			if fl == nil {
				return nil, unknownFlag(fs, a, name)
			}
			c := fl.Name
			if !takesValue(fl) {
				if j+1 < len(a) && a[j+1] == '=' { // -v=2
					out = append(out, "--"+c+"="+a[j+2:])
					break
				}
				out = append(out, "--"+c)
				continue
			}
			rest := strings.TrimPrefix(a[j+1:], "=")
			if j+1 < len(a) {
				out = append(out, "--"+c+"="+rest)
				break
			}
			if i+1 >= len(args) {
				return nil, usageError("%s: -%s needs a value (see `xdpscan %s --help`)", command(fs), c, command(fs))
			}
			out = append(out, "--"+c, args[i+1])
			i++
		}
	}
	return out, nil
}

// unknownFlag is the error for a flag this command does not have, with
// the nearest one it has when the user seems to have mistyped it.
func unknownFlag(fs *flag.FlagSet, typed, name string) error {
	typed, _, _ = strings.Cut(typed, "=")
	if near := nearestFlag(fs, name); near != "" {
		return usageError("%s: unknown flag %s: did you mean %s? (see `xdpscan %s --help`)", command(fs), typed, near, command(fs))
	}
	return usageError("%s: unknown flag %s (see `xdpscan %s --help`)", command(fs), typed, command(fs))
}

// nearestFlag is the flag name closest to name (edit distance at most 1,
// or 2 for names of 5 letters and more; or the only flag name starts
// with), as typed; "" when none is close.
func nearestFlag(fs *flag.FlagSet, name string) string {
	lname := strings.ToLower(name)
	if len(lname) < 3 {
		return "" // -x is one edit from every two-letter name: no guess
	}
	best, bestD := "", 1<<30
	var prefixed []string
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Hidden {
			return
		}
		cand := strings.ToLower(fl.Name)
		if len(lname) >= 3 && strings.HasPrefix(cand, lname) {
			prefixed = append(prefixed, fl.Name)
		}
		d := editDistance(lname, cand)
		limit := 1
		if len(lname) >= 5 {
			limit = 2
		}
		if len(cand) > 1 && d <= limit && d < bestD {
			best, bestD = fl.Name, d
		}
	})
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	if best == "" {
		return ""
	}
	return dispName(best)
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment: a swap of two neighbours counts one, as in "--opne").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// translateParseError turns pflag's errors (a bad value, mostly: the
// rewrite has refused unknown flags already) into one line.
func translateParseError(fs *flag.FlagSet, err error) error {
	var inv *flag.InvalidValueError
	if errors.As(err, &inv) {
		fl := inv.GetFlag()
		want := wantOf(fl)
		if cause := inv.Unwrap(); cause != nil && want == "not a valid value" {
			want = cause.Error() // a flag type of our own says what it wants
		}
		return usageError("%s: %s %q: %s (see `xdpscan %s --help`)", command(fs), dispName(fl.Name), inv.GetValue(),
			want, command(fs))
	}
	var need *flag.ValueRequiredError
	if errors.As(err, &need) {
		fl := need.GetFlag()
		return usageError("%s: %s needs a value (see `xdpscan %s --help`)", command(fs), dispName(fl.Name), command(fs))
	}
	return usageError("%s: %v (see `xdpscan %s --help`)", command(fs), err, command(fs))
}

// wantOf says what a flag's value must look like.
func wantOf(fl *flag.Flag) string {
	switch t := fl.Value.Type(); {
	case t == "duration":
		return "want seconds (2, 0.5) or a duration (500ms, 2m)"
	case t == "bool":
		return "want true or false"
	case t == "count":
		return "want a count (or repeat the flag: -vv)"
	case strings.HasPrefix(t, "float"):
		return "want a number"
	case strings.HasPrefix(t, "uint"):
		return "want a whole number, 0 or more"
	case strings.HasPrefix(t, "int"):
		return "want a whole number"
	default:
		return "not a valid value"
	}
}

// Help, grouped by purpose. A flag's group and the name of its value are
// pflag annotations; aliases (flags that share one variable) are shown on
// one line.

const (
	annGroup   = "xdpscan-group"
	annMetavar = "xdpscan-metavar"
)

// setGroup puts the named flags in a help group. A name the set does not
// have is skipped (a flag renamed on another branch must not break the
// command; TestHelpGroupsName checks the tables).
func setGroup(fs *flag.FlagSet, group string, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, annGroup, []string{group}); err != nil {
			missingHelpNames.Store(fs.Name()+" "+n, true)
		}
	}
}

// missingHelpNames are the names setGroup and setMetavar did not find.
var missingHelpNames sync.Map

// setMetavar names the value of the named flags in the help (--allow CIDR).
func setMetavar(fs *flag.FlagSet, metavar string, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, annMetavar, []string{metavar}); err != nil {
			missingHelpNames.Store(fs.Name()+" "+n, true)
		}
	}
}

// groupOrder is the order groups are shown in; flags in no group are
// "Advanced".
var groupOrder = []string{"Targets", "Ports and probes", "Rate and timing", "Output", "Paths", "Advanced"}

type helpEntry struct {
	names []*flag.Flag // the first registered first: its usage is the entry's
	group string
}

// helpEntries are fs's visible flags, aliases merged, in registration
// order.
func helpEntries(fs *flag.FlagSet) []*helpEntry {
	var entries []*helpEntry
	byValue := map[flag.Value]*helpEntry{}
	fs.VisitAll(func(fl *flag.Flag) {
		if fl.Hidden {
			return
		}
		key := fl.Value
		if sv, ok := key.(*secondsValue); ok {
			key = sv.Value
		}
		if e, ok := byValue[key]; ok && comparableValue(key) {
			e.names = append(e.names, fl)
			if g := fl.Annotations[annGroup]; len(g) > 0 && e.group == "" {
				e.group = g[0]
			}
			return
		}
		e := &helpEntry{names: []*flag.Flag{fl}}
		if g := fl.Annotations[annGroup]; len(g) > 0 {
			e.group = g[0]
		}
		if comparableValue(key) {
			byValue[key] = e
		}
		entries = append(entries, e)
	})
	for _, e := range entries {
		if e.group == "" {
			e.group = "Advanced"
		}
	}
	return entries
}

// shownNames are an entry's names as typed: the one-dash ones first.
func shownNames(e *helpEntry) []string {
	var short, long []string
	for _, fl := range e.names {
		if n := dispName(fl.Name); strings.HasPrefix(n, "--") {
			long = append(long, n)
		} else {
			short = append(short, n)
		}
	}
	return append(short, long...)
}

// comparableValue: pflag's values are pointers (to the variable itself
// for the basic types), so two flags on one variable compare equal.
func comparableValue(v flag.Value) bool {
	defer func() { recover() }()
	m := map[flag.Value]bool{v: true}
	return m[v]
}

// printHelp writes fs's synopsis and its flags by group, wrapped to width.
func printHelp(w io.Writer, fs *flag.FlagSet, width int) {
	syn, _ := synopses.Load(fs)
	s, _ := syn.(string)
	for _, line := range strings.Split("Usage: "+s, "\n") {
		writeLong(w, line, width)
	}
	printFlagGroups(w, fs, width)
}

// printFlagGroups writes fs's flags by group.
func printFlagGroups(w io.Writer, fs *flag.FlagSet, width int) {
	entries := helpEntries(fs)
	groups := map[string][]*helpEntry{}
	for _, e := range entries {
		groups[e.group] = append(groups[e.group], e)
	}
	order := append([]string{}, groupOrder...)
	for g := range groups {
		if !contains(order, g) {
			order = append(order, g)
		}
	}
	for _, g := range order {
		if len(groups[g]) == 0 {
			continue
		}
		heading := g
		if len(groups) == 1 {
			heading = "Flags" // a command whose flags are in no group: one plain list
		}
		fmt.Fprintf(w, "\n%s:\n", heading)
		for _, e := range groups[g] {
			writeEntry(w, e, width)
		}
	}
}

// writeLong writes a line of the synopsis, an example command longer
// than width broken with shell continuations.
func writeLong(w io.Writer, line string, width int) {
	indent := "      "
	for len(line) > width {
		cut := strings.LastIndex(line[:width-2], " ")
		if cut <= len(indent) {
			break
		}
		fmt.Fprintf(w, "%s \\\n", line[:cut])
		line = indent + strings.TrimLeft(line[cut:], " ")
	}
	fmt.Fprintln(w, line)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// descCol is where descriptions start; a longer flag column puts its
// description on the next line.
const descCol = 28

func writeEntry(w io.Writer, e *helpEntry, width int) {
	main := e.names[0]
	left := "  " + strings.Join(shownNames(e), ", ")
	if takesValue(main) {
		left += " " + metavarOf(main)
	}
	desc := strings.Join(strings.Fields(main.Usage), " ")
	if d := shownDefault(main); d != "" {
		desc += " (default " + d + ")"
	}
	lines := wrap(desc, width-descCol)
	if len(left) > descCol-2 {
		fmt.Fprintln(w, left)
	} else {
		fmt.Fprintf(w, "%-*s%s\n", descCol, left, lines[0])
		lines = lines[1:]
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%*s%s\n", descCol, "", l)
	}
}

func metavarOf(fl *flag.Flag) string {
	if m := fl.Annotations[annMetavar]; len(m) > 0 {
		return m[0]
	}
	switch t := fl.Value.Type(); {
	case t == "duration":
		return "SECONDS"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "N"
	}
	return strings.ToUpper(fl.Name)
}

// shownDefault is a default worth printing: not the zero value.
func shownDefault(fl *flag.Flag) string {
	switch fl.DefValue {
	case "", "false", "0", "0s", "[]":
		return ""
	}
	if fl.Value.Type() == "string" {
		return strconv.Quote(fl.DefValue)
	}
	return fl.DefValue
}

// wrap breaks s into lines of at most width columns (a longer word keeps
// its own line).
func wrap(s string, width int) []string {
	if width < 20 {
		width = 20
	}
	var lines []string
	line := ""
	var words []string
	for _, word := range strings.Fields(s) {
		// A word too long for a line (a default list) breaks after commas.
		for len(word) > width && strings.Contains(word[:width], ",") {
			cut := strings.LastIndex(word[:width], ",") + 1
			words = append(words, word[:cut])
			word = word[cut:]
		}
		words = append(words, word)
	}
	for _, word := range words {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}

// helpWidth is the terminal's width, capped at 100 (longer lines read
// badly); 80 when stdout is no terminal.
func helpWidth(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return min(w, 100)
	}
	return 80
}

func netInterface(name string) (*net.Interface, error) { return net.InterfaceByName(name) }

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
