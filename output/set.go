package output

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/xdpscan/xdpscan/scan"
)

// Dest is one output of a scan: a format and the file it goes to ("-":
// standard output).
type Dest struct {
	Format, Path string
}

// ParseDest parses FORMAT:FILE (--out xml:scan.xml).
func ParseDest(s string) (Dest, error) {
	format, path, ok := strings.Cut(s, ":")
	if !ok || path == "" {
		return Dest{}, fmt.Errorf("%q is not FORMAT:FILE (xml:scan.xml; formats: %v)", s, Formats)
	}
	if !slices.Contains(Formats, format) {
		return Dest{}, fmt.Errorf("unknown format %q in %q: use one of %v", format, s, Formats)
	}
	return Dest{Format: format, Path: path}, nil
}

// Set is the several outputs of one scan (nmap's -oX a -oG b, masscan's
// -oL c): each result goes to every Writer, each in its own format and
// file. Write is called from one goroutine, Flush and Close from any.
type Set struct {
	writers []*Writer
	closers []io.Closer // the files OpenSet opened, closed after their Writer
}

// NewSet feeds ws; it closes none of their files.
func NewSet(ws ...*Writer) *Set { return &Set{writers: ws} }

// OpenSet opens one Writer per Dest, each on the file open returns (nil:
// created or truncated with os.Create, "-" is os.Stdout). Every Dest's
// format is checked before any file is opened, and if one cannot be
// opened the ones already opened are closed.
func OpenSet(dests []Dest, opt Options, open func(Dest) (io.WriteCloser, error)) (*Set, error) {
	for _, d := range dests {
		if !slices.Contains(Formats, d.Format) {
			return nil, fmt.Errorf("unknown format %q for %s: use one of %v", d.Format, d.Path, Formats)
		}
	}
	if open == nil {
		open = func(d Dest) (io.WriteCloser, error) {
			if d.Path == "-" {
				return nopCloser{os.Stdout}, nil
			}
			return os.Create(d.Path)
		}
	}
	s := &Set{}
	for _, d := range dests {
		f, err := open(d)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s output %s: %w", d.Format, d.Path, err)
		}
		w, err := New(f, d.Format, opt)
		if err != nil {
			f.Close()
			s.Close()
			return nil, err
		}
		s.writers = append(s.writers, w)
		s.closers = append(s.closers, f)
	}
	return s, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Write writes r to every output; the error is the first output's that failed.
func (s *Set) Write(r scan.Result) error {
	var first error
	for _, w := range s.writers {
		if err := w.Write(r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Flush writes out what every output holds.
func (s *Set) Flush() error {
	var errs []error
	for _, w := range s.writers {
		errs = append(errs, w.Flush())
	}
	return errors.Join(errs...)
}

// Close ends every output (its trailer, the grouped formats' hosts) and
// closes the files OpenSet opened.
func (s *Set) Close() error {
	var errs []error
	for i, w := range s.writers {
		errs = append(errs, w.Close())
		if i < len(s.closers) {
			errs = append(errs, s.closers[i].Close())
		}
	}
	for _, c := range s.closers[min(len(s.writers), len(s.closers)):] {
		errs = append(errs, c.Close())
	}
	s.writers, s.closers = nil, nil
	return errors.Join(errs...)
}
