package main

// What nmap's formats (-oX, -oG, -oN) say about the scan beside its
// results: the command line, the ports probed (scaninfo), the addresses
// probed (runstats' total), xdpscan's version.

import (
	"os"
	"path/filepath"

	"github.com/xdpscan/xdpscan/output"
	"github.com/xdpscan/xdpscan/scan"
	"github.com/xdpscan/xdpscan/targets"
)

func outputMeta(cfg scan.Config, connect bool) output.Meta {
	ver, _, _ := buildVersion()
	m := output.Meta{Args: os.Args, Version: ver, Connect: connect, Hosts: cfg.Targets.Len()}
	for _, p := range cfg.Ports {
		switch p.Proto {
		case targets.ProtoTCP:
			m.TCP = append(m.TCP, p.Num)
		case targets.ProtoUDP:
			m.UDP = append(m.UDP, p.Num)
		}
	}
	return m
}

// outputTempDir is where a grouped format sorts what outgrows memory:
// beside its file (the disk the user chose for results), or $TMPDIR for
// stdout.
func outputTempDir(path string) string {
	if path == "" {
		return ""
	}
	return filepath.Dir(path)
}
