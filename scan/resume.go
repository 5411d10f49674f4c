package scan

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
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/targets"
)

const ResumeVersion = 2

// maxResumeBytes bounds what --resume reads: a resume file holds the
// arguments and digests, never the target list itself.
const maxResumeBytes = 16 << 20

// ResumeFile is the resume file. The cookie key is deliberately not saved:
// the resumed run draws a new one, so the target's late retransmissions to
// the first run's probes do not validate.
type ResumeFile struct {
	Version int `json:"version"`
	// Args are the scan's arguments (after "scan"), with file paths made
	// absolute and without --resume and --seed.
	Args    []string      `json:"args"`
	Seed    uint64        `json:"seed"`
	Shards  uint64        `json:"shards"`
	Shard   uint64        `json:"shard"`
	Retries int           `json:"retries"`
	Targets TargetsDigest `json:"targets"`
	Ports   string        `json:"ports"`
	// Output is the results file (absolute; "" for stdout) and its format.
	Output   string    `json:"output"`
	Format   string    `json:"format"`
	Position Position  `json:"position"`
	Saved    time.Time `json:"saved"`
	// Checksum is the SHA-256 of this object written with Checksum "".
	Checksum string `json:"checksum"`
}

// TargetsDigest identifies a target set without listing it (an -iL list
// may hold millions of ranges).
type TargetsDigest struct {
	Addresses uint64 `json:"addresses"`
	Ranges    int    `json:"ranges"`
	Summary   string `json:"summary"`
	SHA256    string `json:"sha256"`
}

// DigestTargets is the digest of a target set.
func DigestTargets(s targets.RangeSet) TargetsDigest {
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
	return TargetsDigest{Addresses: s.Len(), Ranges: len(rs), Summary: strings.Join(sum, ","), SHA256: hex.EncodeToString(h.Sum(nil))}
}

func (d TargetsDigest) String() string {
	return fmt.Sprintf("%s (%d addresses)", d.Summary, d.Addresses)
}

// PortsString is a port list as the resume file keeps it.
func PortsString(ports []targets.Port) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// checksum is the SHA-256 of the file's JSON object without its
// "checksum" member, written with its keys sorted and no spaces (numbers as
// they are written): anyone can recompute it, so it catches damage and
// careless edits, not a determined forger; MatchResume checks what the
// content says.
func (s *ResumeFile) checksum() string {
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

func (s *ResumeFile) marshal() []byte {
	s.Checksum = s.checksum()
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

// LoadResume reads and checks a resume file: its form and its checksum.
// What it says is checked against the command later (MatchResume).
func LoadResume(path string) (*ResumeFile, error) {
	// A regular file of sane size: never a FIFO or a device to block on
	// or read forever.
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("--resume: %v", err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("--resume %s: not a regular file", path)
	case fi.Size() > maxResumeBytes:
		return nil, fmt.Errorf("--resume %s: %d bytes: not a resume file xdpscan wrote (those are under %d)", path, fi.Size(), maxResumeBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--resume: %v", err)
	}
	var s ResumeFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("--resume %s: not a resume file xdpscan wrote: %v", path, err)
	}
	if s.Version != ResumeVersion {
		return nil, fmt.Errorf("--resume %s: a version %d resume file; this xdpscan reads version %d: rerun the scan", path, s.Version, ResumeVersion)
	}
	if got, _ := contentChecksum(b); got != s.Checksum {
		return nil, fmt.Errorf("--resume %s: checksum mismatch (the file says %.12s, its content is %.12s): it was changed or damaged since xdpscan wrote it; rerun the scan",
			path, s.Checksum, got)
	}
	return &s, nil
}

// MatchResume checks the command against the resume file: the same scan
// (targets, ports, seed, shards, passes, output), and a position that scan
// can have reached.
func MatchResume(path string, saved *ResumeFile, cfg Config, output, format string) error {
	mismatch := func(what, here, there string) error {
		return fmt.Errorf("--resume %s: this command changes the scan's %s: %s here, %s in the file; "+
			"resume with `xdpscan scan --resume %s` alone, or remove the file to start a new scan", path, what, here, there, path)
	}
	if d := DigestTargets(cfg.Targets); d != saved.Targets {
		return mismatch("targets", d.String(), saved.Targets.String())
	}
	if p := PortsString(cfg.Ports); p != saved.Ports {
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
		return fmt.Errorf("--resume %s: %v; the file was forged or damaged: rerun the scan", path, err)
	}
	return nil
}

func nameOr(path string) string {
	if path == "" {
		return "stdout"
	}
	return "-o " + path
}

// DefaultResumePath is where a scan keeps its checkpoints: beside its
// output.
func DefaultResumePath(output string) string { return output + ".resume" }

// FreeResumePath is where a scan to stdout saves its position on
// interrupt: xdpscan.resume, or xdpscan-2.resume, ... if that is taken
// (another scan's, to be resumed too).
func FreeResumePath() string {
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

// Checkpointer writes the resume file while the scan runs.
type Checkpointer struct {
	Path     string
	Saved    ResumeFile // everything but the position
	Progress *Progress
	// lag is how long a position must be in the past before it counts as
	// done: every reply to the probes before it has arrived (--wait) and
	// been written.
	Lag time.Duration
	// flush pushes the results written so far to the disk: a checkpoint
	// is written only after the results it counts.
	Flush func() error
	// periodic: write checkpoints while scanning; otherwise only sample
	// (a scan to stdout saves on interrupt only).
	Periodic bool

	mu      sync.Mutex
	samples []sample
	last    Position
	wrote   bool
	failed  bool
	done    chan struct{}
	stopped chan struct{}
}

type sample struct {
	at  time.Time
	pos Position
}

const (
	checkpointSample = 500 * time.Millisecond
	checkpointEvery  = 2 * time.Second
)

// CheckpointLag is how long a position must be in the past before every
// reply to the probes before it has arrived and been written: --wait (at
// least a sample's time) and a sample. A connect probe past the position
// may still wait in the workers' queue (as long as one probe takes, at
// most), then takes up to its timeout: each of its 1 + --retries attempts
// waits for the SYN's retransmission (1 s) plus the adaptive margin, at
// least --connect-timeout (connectTimer).
func CheckpointLag(cfg Config) time.Duration {
	if cfg.Connect {
		return time.Duration(cfg.Retries+2) * (2*max(cfg.ConnectTimeout, time.Second) + time.Second)
	}
	return max(cfg.Wait, checkpointSample) + checkpointSample
}

// Save writes the resume file at pos (results flushed first).
func (c *Checkpointer) Save(pos Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wrote && pos == c.last {
		return nil
	}
	if c.Flush != nil {
		if err := c.Flush(); err != nil {
			return err
		}
	}
	s := c.Saved
	s.Position, s.Saved = pos, time.Now().UTC()
	if err := outfile.WriteFile(c.Path, s.marshal(), 0o600); err != nil {
		return err
	}
	c.last, c.wrote = pos, true
	return nil
}

// Start samples the sender's position and writes checkpoints until stop.
func (c *Checkpointer) Start(notice func(string)) {
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
				if pos, ok := c.Progress.Position(); ok {
					c.mu.Lock()
					c.samples = append(c.samples, sample{now, pos})
					c.mu.Unlock()
				}
				if !c.Periodic || now.Sub(lastWrite) < checkpointEvery-checkpointSample/2 { // the ticker jitters
					continue
				}
				pos, ok := c.SafeAt(now)
				c.mu.Lock()
				ok = ok && pos != c.last
				c.mu.Unlock()
				if !ok {
					continue
				}
				lastWrite = now
				if err := c.Save(pos); err != nil && !c.failed {
					c.failed = true
					notice(fmt.Sprintf("cannot write the resume checkpoint %s: %v (the scan goes on; an interrupt will try again)", c.Path, err))
				}
			}
		}
	}()
}

// Started says whether Start was called.
func (c *Checkpointer) Started() bool { return c.done != nil }

// Stop ends Start's checkpoints and waits for the last one to finish.
func (c *Checkpointer) Stop() {
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

// SafeAt is the newest position sampled at least lag before t: every
// reply to the probes before it has had its time to arrive.
func (c *Checkpointer) SafeAt(t time.Time) (Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.samples) - 1
	for i >= 0 && t.Sub(c.samples[i].at) < c.Lag {
		i--
	}
	if i < 0 {
		return Position{}, false
	}
	pos := c.samples[i].pos
	c.samples = c.samples[i:] // older ones are never needed again
	return pos, true
}

// RemoveResume removes the resume file of a scan that completed.
func RemoveResume(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
