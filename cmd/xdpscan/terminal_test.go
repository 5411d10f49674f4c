package main

import (
	"bytes"
	"strings"
	"testing"
)

// callLog records each Write separately, to check writes are whole.
type callLog struct{ calls []string }

func (l *callLog) Write(p []byte) (int, error) {
	l.calls = append(l.calls, string(p))
	return len(p), nil
}

func (l *callLog) String() string { return strings.Join(l.calls, "") }

func TestConsole(t *testing.T) {
	type op struct{ kind, arg string } // kind: status, result, msg, clear
	const cl = clearLine
	for _, tc := range []struct {
		name           string
		errTTY, shared bool
		width          int
		ops            []op
		wantOut        []string // each write to stdout
		wantErr        string
	}{
		{name: "a result with no status shown passes as it is", errTTY: true, shared: true, width: 80,
			ops: []op{{"result", "open tcp 1\n"}}, wantOut: []string{"open tcp 1\n"}},
		{name: "a result erases the status line and redraws it below, in one write", errTTY: true, shared: true, width: 80,
			ops:     []op{{"status", "1.0s 10%"}, {"result", "open tcp 1\nopen tcp 2\n"}},
			wantOut: []string{cl + "open tcp 1\nopen tcp 2\n1.0s 10%"}, wantErr: cl + "1.0s 10%"},
		{name: "a line without its newline waits for it", errTTY: true, shared: true, width: 80,
			ops:     []op{{"status", "S"}, {"result", "open tcp 1\nopen t"}, {"result", "cp"}, {"result", " 2\n"}},
			wantOut: []string{cl + "open tcp 1\nS", cl + "open tcp 2\nS"}, wantErr: cl + "S"},
		{name: "a new status replaces the old in place", errTTY: true, shared: true, width: 80,
			ops:     []op{{"status", "long status one"}, {"status", "two"}, {"result", "r\n"}},
			wantOut: []string{cl + "r\ntwo"}, wantErr: cl + "long status one" + cl + "two"},
		{name: "a status as wide as the terminal is cut to width-1 so it never wraps", errTTY: true, shared: true, width: 10,
			ops:     []op{{"status", "0123456789abcdef"}, {"result", "r\n"}},
			wantOut: []string{cl + "r\n012345678"}, wantErr: cl + "012345678"},
		{name: "unknown width: the status is not cut", errTTY: true, shared: true, width: 0,
			ops: []op{{"status", "0123456789abcdef"}}, wantErr: cl + "0123456789abcdef"},
		{name: "a message goes above the status line", errTTY: true, shared: false, width: 80,
			ops:     []op{{"status", "S"}, {"msg", "interrupted"}, {"result", "r\n"}},
			wantOut: []string{"r\n"}, wantErr: cl + "S" + cl + "interrupted\nS"},
		{name: "after clear, results and messages carry no control sequence", errTTY: true, shared: true, width: 80,
			ops:     []op{{"status", "S"}, {"clear", ""}, {"result", "r\n"}, {"msg", "done\n"}, {"clear", ""}},
			wantOut: []string{"r\n"}, wantErr: cl + "S" + cl + "done\n"},
		{name: "stderr not a terminal: the status is plain lines, nothing else is added", errTTY: false, shared: false, width: 80,
			ops:     []op{{"status", "S1"}, {"result", "r1\n"}, {"status", "S2"}, {"msg", "m"}, {"clear", ""}, {"result", "r2\n"}},
			wantOut: []string{"r1\n", "r2\n"}, wantErr: "S1\nS2\nm\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errw := &callLog{}, &callLog{}
			c := &console{out: out, err: errw, errTTY: tc.errTTY, shared: tc.shared, width: func() int { return tc.width }}
			for _, o := range tc.ops {
				switch o.kind {
				case "status":
					c.setStatus(o.arg)
				case "result":
					if n, err := c.results().Write([]byte(o.arg)); n != len(o.arg) || err != nil {
						t.Fatalf("Write(%q) = %d, %v", o.arg, n, err)
					}
				case "msg":
					c.printf("%s", o.arg)
				case "clear":
					c.clearStatus()
				}
			}
			if strings.Join(out.calls, "|") != strings.Join(tc.wantOut, "|") {
				t.Errorf("stdout writes\n got %q\nwant %q", out.calls, tc.wantOut)
			}
			if errw.String() != tc.wantErr {
				t.Errorf("stderr\n got %q\nwant %q", errw.String(), tc.wantErr)
			}
			if !tc.errTTY && strings.ContainsAny(out.String()+errw.String(), "\r\x1b") {
				t.Errorf("a control character reached a non-terminal: %q %q", out.String(), errw.String())
			}
		})
	}
}

func TestConsoleCloseWritesAnUnfinishedLine(t *testing.T) {
	var out bytes.Buffer
	c := &console{out: &out, err: &bytes.Buffer{}, errTTY: true, shared: true, width: func() int { return 80 }}
	c.Write([]byte("a\nb"))
	if err := c.Close(); err != nil || out.String() != "a\nb" {
		t.Fatalf("after Close: %q, %v; want %q", out.String(), err, "a\nb")
	}
}
