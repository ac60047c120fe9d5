package metrics_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knk-id/knk/internal/metrics"
)

// TestAlertRules checks the example alert rules and scrape configuration in
// docs/prometheus with promtool, and runs the rules' unit tests.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it): alert rules not checked")
	}
	dir := filepath.Join("..", "..", "docs", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "knk-alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "knk-alerts-test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRegistryHasTheAlertedSeries makes sure the series the alert rules use are
// the ones knkd exports, so a rename cannot silence an alert.
func TestRegistryHasTheAlertedSeries(t *testing.T) {
	metrics.StoreFsyncSeconds.Observe(0.001)
	reg, err := metrics.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"knk_store_fsync_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if !names[want] {
			t.Errorf("registry has no %s", want)
		}
	}
}
