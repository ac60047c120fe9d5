package main

import (
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// Every limit flag is documented in the README's configuration table with the
// default knkd really has (taken from server.DefaultLimits), so that the table
// cannot drift from the code.
func TestREADMEListsEveryLimitWithItsDefault(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // flag -> default cell
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 4 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = cells[3]
		}
	}
	parser, err := kong.New(&cli{}, limitVars())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range parser.Model.Flags {
		if f.Group == nil || f.Group.Key != "limits" {
			continue
		}
		n++
		cell, ok := rows["--"+f.Name]
		if !ok {
			t.Errorf("--%s is not in the README's configuration table", f.Name)
			continue
		}
		if !strings.Contains(cell, "`"+f.Default+"`") {
			t.Errorf("README gives --%s the default %q; knkd's is %q", f.Name, strings.TrimSpace(cell), f.Default)
		}
	}
	if n < 10 {
		t.Errorf("only %d limit flags found", n)
	}
}
