package testbed

import (
	"bytes"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
)

func commandOutput(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

func numCPU() int { return runtime.NumCPU() }
