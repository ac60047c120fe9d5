// Command readme rewrites the disclosure-table section of README.md from the
// table in internal/disclosure: go run ./internal/disclosure/readme [README.md].
package main

import (
	"fmt"
	"os"

	"github.com/knk-id/knk/internal/disclosure"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func run() error {
	path := "README.md"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := disclosure.Rewrite(old)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}
