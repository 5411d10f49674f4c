package main

// A scan's output files, opened so that nothing the user has is destroyed
// by a run that fails (internal/outfile): every path is checked before
// setup without being touched, and -o is opened only in scan's Ready
// seam, once targets, ports, interface, program load and attach have all
// succeeded.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/xdpscan/xdpscan/internal/outfile"
	"github.com/xdpscan/xdpscan/internal/privs"
	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
)

// scanOutputs is the results stream of one scan.
type scanOutputs struct {
	path      string // -o; "" for stdout
	outputAbs string
	format    string
	appendTo  bool
	// readBack is what the output of a resumed scan already holds: its
	// pairs are not written again.
	readBack *output.ReadBack

	mu      sync.Mutex // results are written by the scan and flushed by checkpoints
	opened  bool
	stream  *outfile.Stream
	results *output.Writer
	pending []scan.Result // results before open (none in practice: nothing is sent before Ready)
	werr    error
	skipped int
	// part, for a sharded scan, heads a new output (merge reads it).
	part *scan.Part

	meta   output.Meta            // what nmap's formats say about the scan
	keep   func(scan.Result) bool // --open
	extras []*extraOutput         // -oX FILE -oG FILE ...: the files beyond the first
}

// checkScanFiles checks the files the scan will write (and resumePath, if
// not ""): each is writable, no two are the same file, none is an input.
// It creates and changes nothing, and runs before the routes are looked
// up, so a bad path is refused before any setup.
func checkScanFiles(f *scanFlags, resumePath string) error {
	type named struct{ flag, path string }
	files := []named{{"-o", f.output}, {"--stats-json", f.statsJSON}}
	if resumePath != "" {
		files = append(files, named{"the resume file", resumePath})
	}
	for _, x := range f.habits.extras {
		files = append(files, named{"-" + x.flag, x.path})
	}
	inputs := []named{{"-iL", f.includeFile}, {"--exclude-file", f.excludeFile}}
	for i, a := range files {
		if a.path == "" {
			continue
		}
		for _, b := range append(files[i+1:], inputs...) {
			if outfile.Same(a.path, b.path) {
				return usageError("%s %s and %s %s are the same file: one would overwrite the other; name two files", a.flag, a.path, b.flag, b.path)
			}
		}
		if err := outfile.Check(a.path, a.flag != "-o"); err != nil {
			return usageError("%s %s: cannot write: %v", a.flag, a.path, err)
		}
	}
	return nil
}

// planScanOutputs checks every file the scan will write, before any
// setup, without creating or changing one: each is writable, no two are
// the same file, none is an input. A resumed scan's output is read back.
func planScanOutputs(f *scanFlags, saved *scan.ResumeFile, resumePath string, checkpoints bool) (*scanOutputs, error) {
	o := &scanOutputs{path: f.output, format: f.format, appendTo: f.appendOutput || saved != nil, keep: f.habits.keep}
	for _, x := range f.habits.extras {
		o.extras = append(o.extras, &extraOutput{formatOutput: *x})
	}
	if !checkpoints {
		resumePath = ""
	}
	if err := checkScanFiles(f, resumePath); err != nil {
		return nil, err
	}
	if f.output != "" {
		abs, err := filepath.Abs(f.output)
		if err != nil {
			return nil, usageError("-o %s: %v", f.output, err)
		}
		o.outputAbs = abs
	}
	if checkpoints && saved == nil {
		if _, err := os.Lstat(resumePath); err == nil {
			return nil, usageError("%s exists: an interrupted scan can continue with `xdpscan scan --resume %s`; "+
				"remove it to start a new scan that writes there", resumePath, resumePath)
		}
	}
	if o.appendTo && f.output != "" {
		fh, err := os.OpenFile(f.output, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		switch {
		case errors.Is(err, fs.ErrNotExist) && saved != nil:
			return nil, usageError("--resume %s: the scan's output %s is gone: its first part's results are lost; remove %s and rerun the scan",
				f.resume, f.output, f.resume)
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, usageError("-o %s: %v", f.output, err)
		default:
			fi, _ := fh.Stat()
			if fi != nil && fi.Mode().IsRegular() && fi.Size() > 0 {
				if saved == nil && !output.Appendable(f.format) {
					fh.Close()
					return nil, usageError("--append-output: %s holds a %s document already; appending another makes it invalid: name a new file", f.output, f.format)
				}
				if saved != nil {
					rb, err := output.Read(fh, f.format)
					if err != nil {
						fh.Close()
						return nil, usageError("--resume %s: reading back %s: %v", f.resume, f.output, err)
					}
					o.readBack = rb
				} else {
					o.readBack = &output.ReadBack{Whole: fi.Size(), Size: fi.Size()}
				}
			}
			fh.Close()
		}
	}
	return o, nil
}

// open opens the results stream: called from Ready, once the scan has
// started. A resumed output loses its torn last line, if any.
func (o *scanOutputs) open() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened {
		return nil // --ping-first's second phase
	}
	var w io.Writer = stdio().results() // on the status line's terminal: erases and redraws it around results
	if o.path != "" {
		s, err := outfile.OpenStream(o.path, o.appendTo)
		if err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		if rb := o.readBack; rb != nil && rb.Whole != rb.Size {
			fi, err := s.File().Stat()
			if err == nil && fi.Size() != rb.Size {
				err = fmt.Errorf("it changed while the scan started (%d bytes, then %d)", rb.Size, fi.Size())
			}
			if err == nil {
				err = s.File().Truncate(rb.Whole)
			}
			if err != nil {
				s.Close(false)
				return fmt.Errorf("-o %s: cutting its torn last line: %w", o.path, err)
			}
			fmt.Fprintf(os.Stderr, "xdpscan: %s ended in a torn line (%d bytes, from a scan killed mid-write): cut off\n", o.path, rb.Size-rb.Whole)
		}
		o.stream, w = s, s
	}
	var err error
	if o.readBack != nil && o.readBack.Whole > 0 {
		o.results, err = output.NewWriterAppend(w, o.format)
	} else {
		o.results, err = output.New(w, o.format, output.Options{Meta: o.meta, TempDir: outputTempDir(o.path)})
		if err == nil && o.part != nil {
			err = o.results.WritePart(*o.part)
		}
	}
	if err != nil {
		if o.stream != nil {
			o.stream.Close(false)
		}
		return err
	}
	for i, x := range o.extras {
		if err := x.open(o.meta, o.part); err != nil {
			for _, y := range o.extras[:i] {
				y.close(false)
			}
			if o.stream != nil {
				o.stream.Close(false)
			}
			return err
		}
	}
	o.opened = true
	for _, r := range o.pending {
		o.writeLocked(r)
	}
	o.pending = nil
	return nil
}

// write writes one result (the scan's emit).
func (o *scanOutputs) write(r scan.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.opened {
		o.pending = append(o.pending, r)
		return
	}
	o.writeLocked(r)
}

func (o *scanOutputs) writeLocked(r scan.Result) {
	if o.keep != nil && !o.keep(r) {
		return
	}
	for _, x := range o.extras {
		if err := x.results.Write(r); err != nil && o.werr == nil {
			o.werr = fmt.Errorf("-%s %s: %w", x.flag, x.path, err)
		}
	}
	if rb := o.readBack; rb != nil && rb.Pairs != nil {
		if _, dup := rb.Pairs[output.KeyOf(r)]; dup {
			o.skipped++
			return
		}
	}
	if err := o.results.Write(r); err != nil && o.werr == nil {
		o.werr = err
	}
}

// sync pushes every result written so far to the disk: a checkpoint is
// written only after the results it counts.
func (o *scanOutputs) sync() error {
	o.mu.Lock()
	if !o.opened {
		o.mu.Unlock()
		return nil
	}
	err := o.results.Flush()
	for _, x := range o.extras {
		if ferr := x.results.Flush(); err == nil {
			err = ferr
		}
	}
	stream := o.stream
	o.mu.Unlock()
	// The fsync runs outside the lock: results keep being written (after
	// what it must cover) while the disk catches up.
	if err == nil && stream != nil {
		err = stream.Sync()
	}
	return err
}

// flush writes out the results buffered so far (on a signal: what arrived
// is on the page, whatever comes next).
func (o *scanOutputs) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened {
		o.results.Flush()
		for _, x := range o.extras {
			x.results.Flush()
		}
	}
}

// close ends the results: the format's trailer, then the file. ok says
// the scan ran (completed or interrupted); when it failed, a file nothing
// was written to is left as it was.
func (o *scanOutputs) close(ok bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.opened {
		return nil
	}
	o.opened = false
	err := o.werr
	if ok {
		if cerr := o.results.Close(); err == nil {
			err = cerr
		}
	}
	if o.stream != nil {
		if cerr := o.stream.Close(ok); err == nil {
			err = cerr
		}
	}
	for _, x := range o.extras {
		if cerr := x.close(ok); err == nil {
			err = cerr
		}
	}
	return err
}

// statsFile is --stats-json. It is written at the end, beside its path and
// renamed into place; under -Z USER the process can no longer rename into
// a directory only root writes, so the file is opened in place once setup
// is over (prepare, called from Ready before the switch, which hands it to
// USER), as tcpdump -Z does with -w.
type statsFile struct {
	path    string
	inPlace *outfile.Replace
}

func (s *statsFile) prepare(user *privs.User) error {
	if s.path == "" || user == nil {
		return nil
	}
	f, err := outfile.CreateInPlace(s.path, 0o644)
	if err != nil {
		return fmt.Errorf("--stats-json: %w", err)
	}
	s.inPlace = f
	return nil
}

// write writes the final counters.
func (s *statsFile) write(v any) error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if s.inPlace != nil {
		if _, err := s.inPlace.Write(b); err != nil {
			return fmt.Errorf("write --stats-json: %w", err)
		}
		return s.inPlace.Commit()
	}
	if err := outfile.WriteFile(s.path, b, 0o644); err != nil {
		return fmt.Errorf("write --stats-json: %w", err)
	}
	return nil
}
