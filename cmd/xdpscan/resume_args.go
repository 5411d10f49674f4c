package main

import (
	flag "github.com/spf13/pflag"
	"path/filepath"

	"github.com/xdpscan/xdpscan/scan"
)

// pathFlags are the flags that name files: made absolute in the resume
// file, so the scan can be resumed from any directory.
var pathFlags = map[string]bool{"iL": true, "include-file": true, "includefile": true, "exclude-file": true, "excludefile": true,
	"o": true, "stats-json": true, "oL": true, "oX": true, "oG": true, "oJ": true, "oD": true, "oN": true}

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
// names any). Whether that is still the same scan is scan.MatchResume's call.
func mergeResume(saved *scan.ResumeFile, given *flag.FlagSet, positional []string) (*scanFlags, *flag.FlagSet, []string, error) {
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
