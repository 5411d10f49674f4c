package main

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
)

const mergeSynopsis = `xdpscan merge [-o FILE] [--format F] PART.ndjson...

Puts the outputs of a sharded scan together (scan --shards N --shard I, the
same --seed, -o PART.ndjson or NDJSON on stdout: what a Kubernetes Indexed
Job's pods print, deploy/kubernetes/). Each part's first line says which scan
and shard it holds; merge checks that all parts belong to one scan (same
targets, ports, seed and shard count), names the shards that are missing or
given twice, and writes each (address, protocol, port) once, sorted, in any
--format. Exit status: 0 when every shard is there once, 1 when some are
missing (the results of those present are still written), 2 when the parts
do not belong together or cannot be read.

  xdpscan merge -o all.xml --format xml shard-*.ndjson
  kubectl logs -l job-name=xdpscan --prefix=false | xdpscan merge -     # stdin: the parts one after another`

func runMerge(args []string) error {
	fs := newFlags("merge", mergeSynopsis)
	out := fs.String("o", "", "write the merged results to FILE (default: stdout); replaced only when complete")
	format := fs.String("format", "ndjson", "output format: "+strings.Join(output.Formats, ", "))
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageError("merge: name the parts to merge (NDJSON outputs of scan --shards N); see xdpscan merge --help")
	}
	if _, err := output.NewWriter(io.Discard, *format); err != nil {
		return usageError("merge: %v", err)
	}
	if *out != "" {
		for _, f := range files {
			if outfile.Same(*out, f) {
				return usageError("merge: -o %s is also a part: the merge would overwrite its input", *out)
			}
		}
		if err := outfile.Check(*out, true); err != nil {
			return usageError("merge: -o %s: cannot write: %v", *out, err)
		}
	}
	var parts []mergePart
	for _, name := range files {
		ps, err := readParts(name)
		if err != nil {
			return usageError("merge: %v", err)
		}
		parts = append(parts, ps...)
	}
	m, err := mergeParts(parts)
	if err != nil {
		return usageError("merge: %v", err)
	}

	var w io.Writer = os.Stdout
	var file *outfile.Replace
	if *out != "" {
		if file, err = outfile.CreateReplace(*out, 0o644); err != nil {
			return fmt.Errorf("merge: -o: %w", err)
		}
		w = file
	}
	rw, err := output.NewWriter(w, *format)
	if err == nil {
		for _, r := range m.results {
			if err = rw.Write(r); err != nil {
				break
			}
		}
		if cerr := rw.Close(); err == nil {
			err = cerr
		}
	}
	if file != nil {
		if err != nil {
			file.Abort()
		} else {
			err = file.Commit()
		}
	}
	if err != nil {
		return fmt.Errorf("merge: write: %w", err)
	}
	fmt.Fprintf(os.Stderr, "xdpscan: merged %d results from %d parts (shards %d of %d present)", len(m.results), len(parts), m.shards-uint64(len(m.missing)), m.shards)
	if m.dropped > 0 {
		fmt.Fprintf(os.Stderr, ", %d duplicate lines dropped", m.dropped)
	}
	if m.conflicts > 0 {
		fmt.Fprintf(os.Stderr, ", %d pairs with conflicting states (the first part's kept)", m.conflicts)
	}
	fmt.Fprintln(os.Stderr)
	for _, d := range m.twice {
		fmt.Fprintf(os.Stderr, "xdpscan: shard %d given %d times (%s): merged once\n", d.shard, len(d.names), strings.Join(d.names, ", "))
	}
	if len(m.missing) > 0 {
		return fmt.Errorf("merge: incomplete: shard(s) %s of 0-%d missing: their pairs are not in the result (rerun them: scan --shard I --shards %d --seed %d)",
			joinNums(m.missing), m.shards-1, m.shards, parts[0].part.Seed)
	}
	return nil
}

// mergePart is one shard's output.
type mergePart struct {
	name    string
	part    scan.Part
	results []scan.Result
}

// readParts reads one file ("-": stdin), which may hold several parts one
// after another (logs of several pods): each starts at its header line.
func readParts(name string) ([]mergePart, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var parts []mergePart
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] != '{' {
			// Not JSON: kubectl logs puts the pods' stderr (their
			// summaries) between the NDJSON lines.
			continue
		}
		if output.IsPartHeader(b) {
			p, err := output.ParsePartHeader(b)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, line, err)
			}
			parts = append(parts, mergePart{name: fmt.Sprintf("%s:%d", name, line), part: p})
			continue
		}
		if len(parts) == 0 {
			return nil, fmt.Errorf("%s:%d: results before any %q header line: not the NDJSON output of a sharded scan (scan --shards N --format ndjson)",
				name, line, output.PartKey)
		}
		res, err := output.ParseNDJSON(b)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		last := &parts[len(parts)-1]
		last.results = append(last.results, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s: no %q header line: not the NDJSON output of a sharded scan (scan --shards N --format ndjson)", name, output.PartKey)
	}
	return parts, nil
}

type merged struct {
	results            []scan.Result
	shards             uint64
	missing            []uint64
	twice              []twiceShard
	dropped, conflicts int
}

type twiceShard struct {
	shard uint64
	names []string
}

// mergeParts checks that the parts are shards of one scan and puts their
// results together, each pair once, sorted by address, protocol, port.
func mergeParts(parts []mergePart) (merged, error) {
	first := parts[0]
	for _, p := range parts[1:] {
		a, b := first.part, p.part
		var diff []string
		if a.Targets.SHA256 != b.Targets.SHA256 {
			diff = append(diff, fmt.Sprintf("targets %s here, %s there", b.Targets.Summary, a.Targets.Summary))
		}
		if a.Ports != b.Ports {
			diff = append(diff, fmt.Sprintf("ports %s here, %s there", b.Ports, a.Ports))
		}
		if a.Seed != b.Seed {
			diff = append(diff, fmt.Sprintf("seed %d here, %d there", b.Seed, a.Seed))
		}
		if a.Shards != b.Shards {
			diff = append(diff, fmt.Sprintf("%d shards here, %d there", b.Shards, a.Shards))
		}
		if len(diff) > 0 {
			return merged{}, fmt.Errorf("%s is not a shard of the scan %s is (%s)", p.name, first.name, strings.Join(diff, "; "))
		}
	}
	m := merged{shards: first.part.Shards}
	names := map[uint64][]string{}
	for _, p := range parts {
		if p.part.Shard >= p.part.Shards {
			return merged{}, fmt.Errorf("%s: shard %d of %d: impossible", p.name, p.part.Shard, p.part.Shards)
		}
		names[p.part.Shard] = append(names[p.part.Shard], p.name)
	}
	for s := range m.shards {
		switch n := names[s]; {
		case len(n) == 0:
			m.missing = append(m.missing, s)
		case len(n) > 1:
			m.twice = append(m.twice, twiceShard{s, n})
		}
	}
	seen := map[output.PairKey]scan.State{}
	for _, p := range parts {
		for _, r := range p.results {
			k := output.KeyOf(r)
			if st, dup := seen[k]; dup {
				m.dropped++
				if st != r.State {
					m.conflicts++
				}
				continue
			}
			seen[k] = r.State
			m.results = append(m.results, r)
		}
	}
	slices.SortStableFunc(m.results, func(a, b scan.Result) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
	})
	return m, nil
}

func joinNums(ns []uint64) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
