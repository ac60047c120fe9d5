package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An operator reading `knkd --help` (or a script checking it) gets the flags and
// exit status 0; a wrong flag is a non-zero exit status with a message naming it.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "knkd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build knkd: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--db") || !strings.Contains(string(out), "--http-addr") {
		t.Errorf("knkd --help: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--no-such-flag").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), "unknown flag --no-such-flag") {
		t.Errorf("knkd --no-such-flag: %v\n%s; want a failure naming the flag", err, out)
	}
}
