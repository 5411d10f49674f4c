package main

// The resume file: what a scan is (its arguments, seed, shard, the
// identity of its targets and ports, its output) and how far it got. It is
// rewritten atomically every few seconds while the scan sends (a
// checkpoint: a position whose replies have all had --wait to arrive and
// were written to the output first) and on interrupt (the exact position),
// and removed when the scan completes. `xdpscan scan --resume FILE` alone
// continues the scan; flags given with it must not change what the scan
// is. A checksum over its content catches damage and hand edits.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/targets"
)

const resumeVersion = 2

// maxResumeBytes bounds what --resume reads: a resume file holds the
// arguments and digests, never the target list itself.
const maxResumeBytes = 16 << 20

// savedScan is the resume file. The cookie key is deliberately not saved:
// the resumed run draws a new one, so the target's late retransmissions to
// the first run's probes do not validate.
type savedScan struct {
	Version int `json:"version"`
	// Args are the scan's arguments (after "scan"), with file paths made
	// absolute and without --resume and --seed.
	Args    []string      `json:"args"`
	Seed    uint64        `json:"seed"`
	Shards  uint64        `json:"shards"`
	Shard   uint64        `json:"shard"`
	Retries int           `json:"retries"`
	Targets targetsDigest `json:"targets"`
	Ports   string        `json:"ports"`
	// Output is the results file (absolute; "" for stdout) and its format.
	Output   string        `json:"output"`
	Format   string        `json:"format"`
	Position scan.Position `json:"position"`
	Saved    time.Time     `json:"saved"`
	// Checksum is the SHA-256 of this object written with Checksum "".
	Checksum string `json:"checksum"`
}

// targetsDigest identifies a target set without listing it (an -iL list
// may hold millions of ranges).
type targetsDigest struct {
	Addresses uint64 `json:"addresses"`
	Ranges    int    `json:"ranges"`
	Summary   string `json:"summary"`
	SHA256    string `json:"sha256"`
}

func digestTargets(s targets.RangeSet) targetsDigest {
	h := sha256.New()
	rs := s.Ranges()
	var sum []string
	for i, r := range rs {
		lo, hi := r.Lo.As16(), r.Hi.As16()
		h.Write(lo[:])
		h.Write(hi[:])
		if i < 3 {
			sum = append(sum, r.String())
		}
	}
	if len(rs) > 3 {
		sum = append(sum, fmt.Sprintf("... (%d ranges)", len(rs)))
	}
	return targetsDigest{Addresses: s.Len(), Ranges: len(rs), Summary: strings.Join(sum, ","), SHA256: hex.EncodeToString(h.Sum(nil))}
}

func (d targetsDigest) String() string {
	return fmt.Sprintf("%s (%d addresses)", d.Summary, d.Addresses)
}

func portsString(ports []targets.Port) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// checksum is the SHA-256 of the file's JSON object without its
// "checksum" member, written with its keys sorted and no spaces (numbers as
// they are written): anyone can recompute it, so it catches damage and
// careless edits, not a determined forger; matchResume checks what the
// content says.
func (s *savedScan) checksum() string {
	b, _ := json.Marshal(s)
	sum, _ := contentChecksum(b)
	return sum
}

func contentChecksum(b []byte) (string, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return "", err
	}
	delete(m, "checksum")
	canon, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

func (s *savedScan) marshal() []byte {
	s.Checksum = s.checksum()
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

// loadResume reads and checks a resume file: its form and its checksum.
// What it says is checked against the command later (matchResume).
func loadResume(path string) (*savedScan, error) {
	// A regular file of sane size: never a FIFO or a device to block on
	// or read forever.
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, usageError("--resume: %v", err)
	case !fi.Mode().IsRegular():
		return nil, usageError("--resume %s: not a regular file", path)
	case fi.Size() > maxResumeBytes:
		return nil, usageError("--resume %s: %d bytes: not a resume file xdpscan wrote (those are under %d)", path, fi.Size(), maxResumeBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError("--resume: %v", err)
	}
	var s savedScan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, usageError("--resume %s: not a resume file xdpscan wrote: %v", path, err)
	}
	if s.Version != resumeVersion {
		return nil, usageError("--resume %s: a version %d resume file; this xdpscan reads version %d: rerun the scan", path, s.Version, resumeVersion)
	}
	if got, _ := contentChecksum(b); got != s.Checksum {
		return nil, usageError("--resume %s: checksum mismatch (the file says %.12s, its content is %.12s): it was changed or damaged since xdpscan wrote it; rerun the scan",
			path, s.Checksum, got)
	}
	return &s, nil
}

// pathFlags are the flags that name files: made absolute in the resume
// file, so the scan can be resumed from any directory.
var pathFlags = map[string]bool{"iL": true, "include-file": true, "exclude-file": true, "o": true, "stats-json": true}

// savedArgs are the command's arguments as the resume file keeps them.
func savedArgs(fs *flag.FlagSet, positional []string) []string {
	var args []string
	fs.Visit(func(fl *flag.Flag) {
		v := fl.Value.String()
		switch {
		case fl.Name == "resume" || fl.Name == "seed" || fl.Name == "dry-run" || fl.Name == "append-output":
			return
		case pathFlags[fl.Name] && v != "":
			if abs, err := filepath.Abs(v); err == nil {
				v = abs
			}
		}
		args = append(args, "--"+fl.Name+"="+v)
	})
	return append(args, positional...)
}

// mergeResume is the command a resume runs: the saved arguments, with
// the flags given on this command line on top (and its targets, if it
// names any). Whether that is still the same scan is matchResume's call.
func mergeResume(saved *savedScan, given *flag.FlagSet, positional []string) (*scanFlags, *flag.FlagSet, []string, error) {
	f, fs := newScanFlags()
	savedPos, err := parseFlags(fs, saved.Args)
	if err != nil {
		return nil, nil, nil, usageError("--resume: the saved arguments do not parse: %v", err)
	}
	var setErr error
	given.Visit(func(fl *flag.Flag) {
		if err := fs.Set(fl.Name, fl.Value.String()); err != nil && setErr == nil {
			setErr = err
		}
	})
	if setErr != nil {
		return nil, nil, nil, usageError("%v", setErr)
	}
	if len(positional) == 0 {
		positional = savedPos
	}
	seedGiven := false
	given.Visit(func(fl *flag.Flag) { seedGiven = seedGiven || fl.Name == "seed" })
	if !seedGiven {
		f.seed = saved.Seed
	}
	return f, fs, positional, nil
}

// matchResume checks the command against the resume file: the same scan
// (targets, ports, seed, shards, passes, output), and a position that scan
// can have reached.
func matchResume(path string, saved *savedScan, cfg scan.Config, output, format string) error {
	mismatch := func(what, here, there string) error {
		return usageError("--resume %s: this command changes the scan's %s: %s here, %s in the file; "+
			"resume with `xdpscan scan --resume %s` alone, or remove the file to start a new scan", path, what, here, there, path)
	}
	if d := digestTargets(cfg.Targets); d != saved.Targets {
		return mismatch("targets", d.String(), saved.Targets.String())
	}
	if p := portsString(cfg.Ports); p != saved.Ports {
		return mismatch("ports", p, saved.Ports)
	}
	if cfg.Seed != saved.Seed {
		return mismatch("seed", fmt.Sprint(cfg.Seed), fmt.Sprint(saved.Seed))
	}
	if cfg.Shards != saved.Shards || cfg.Shard != saved.Shard {
		return mismatch("shards", fmt.Sprintf("--shard %d --shards %d", cfg.Shard, cfg.Shards),
			fmt.Sprintf("--shard %d --shards %d", saved.Shard, saved.Shards))
	}
	if cfg.Retries != saved.Retries {
		return mismatch("retries", fmt.Sprintf("--retries %d", cfg.Retries), fmt.Sprintf("--retries %d", saved.Retries))
	}
	if !(output == "" && saved.Output == "") && !outfile.Same(output, saved.Output) {
		return mismatch("output", nameOr(output), nameOr(saved.Output))
	}
	if format != saved.Format {
		return mismatch("output format", "--format "+format, "--format "+saved.Format)
	}
	if err := cfg.ValidPosition(saved.Position); err != nil {
		return usageError("--resume %s: %v; the file was forged or damaged: rerun the scan", path, err)
	}
	return nil
}

func nameOr(path string) string {
	if path == "" {
		return "stdout"
	}
	return "-o " + path
}

// defaultResumePath is where a scan keeps its checkpoints: beside its
// output.
func defaultResumePath(output string) string { return output + ".resume" }

// freeResumePath is where a scan to stdout saves its position on
// interrupt: xdpscan.resume, or xdpscan-2.resume, ... if that is taken
// (another scan's, to be resumed too).
func freeResumePath() string {
	for i := 1; ; i++ {
		p := "xdpscan.resume"
		if i > 1 {
			p = fmt.Sprintf("xdpscan-%d.resume", i)
		}
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) || i == 1000 {
			return p
		}
	}
}

// checkpointer writes the resume file while the scan runs.
type checkpointer struct {
	path     string
	saved    savedScan // everything but the position
	progress *scan.Progress
	// lag is how long a position must be in the past before it counts as
	// done: every reply to the probes before it has arrived (--wait) and
	// been written.
	lag time.Duration
	// flush pushes the results written so far to the disk: a checkpoint
	// is written only after the results it counts.
	flush func() error
	// periodic: write checkpoints while scanning; otherwise only sample
	// (a scan to stdout saves on interrupt only).
	periodic bool

	mu      sync.Mutex
	samples []sample
	last    scan.Position
	wrote   bool
	failed  bool
	done    chan struct{}
	stopped chan struct{}
}

type sample struct {
	at  time.Time
	pos scan.Position
}

const (
	checkpointSample = 500 * time.Millisecond
	checkpointEvery  = 2 * time.Second
)

// save writes the resume file at pos (results flushed first).
func (c *checkpointer) save(pos scan.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wrote && pos == c.last {
		return nil
	}
	if c.flush != nil {
		if err := c.flush(); err != nil {
			return err
		}
	}
	s := c.saved
	s.Position, s.Saved = pos, time.Now().UTC()
	if err := outfile.WriteFile(c.path, s.marshal(), 0o600); err != nil {
		return err
	}
	c.last, c.wrote = pos, true
	return nil
}

// start samples the sender's position and writes checkpoints until stop.
func (c *checkpointer) start(notice func(string)) {
	c.done, c.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.stopped)
		t := time.NewTicker(checkpointSample)
		defer t.Stop()
		var lastWrite time.Time // the first checkpoint is due as soon as a position is safe
		for {
			select {
			case <-c.done:
				return
			case now := <-t.C:
				if pos, ok := c.progress.Position(); ok {
					c.mu.Lock()
					c.samples = append(c.samples, sample{now, pos})
					c.mu.Unlock()
				}
				if !c.periodic || now.Sub(lastWrite) < checkpointEvery-checkpointSample/2 { // the ticker jitters
					continue
				}
				pos, ok := c.safeAt(now)
				c.mu.Lock()
				ok = ok && pos != c.last
				c.mu.Unlock()
				if !ok {
					continue
				}
				lastWrite = now
				if err := c.save(pos); err != nil && !c.failed {
					c.failed = true
					notice(fmt.Sprintf("cannot write the resume checkpoint %s: %v (the scan goes on; an interrupt will try again)", c.path, err))
				}
			}
		}
	}()
}

func (c *checkpointer) stop() {
	if c.done == nil {
		return
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	<-c.stopped
}

// safeAt is the newest position sampled at least lag before t: every
// reply to the probes before it has had its time to arrive.
func (c *checkpointer) safeAt(t time.Time) (scan.Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.samples) - 1
	for i >= 0 && t.Sub(c.samples[i].at) < c.lag {
		i--
	}
	if i < 0 {
		return scan.Position{}, false
	}
	pos := c.samples[i].pos
	c.samples = c.samples[i:] // older ones are never needed again
	return pos, true
}

// removeResume removes the resume file of a scan that completed.
func removeResume(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
