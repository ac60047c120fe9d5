// Package secretarg keeps secrets off the command line: a process's arguments are
// visible to every user in ps and /proc, and end up in shell histories and
// profiles. Secrets come from files or the environment instead.
package secretarg

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Given reports whether the flag (e.g. "--db") appears in args, as "--db VALUE"
// or "--db=VALUE".
func Given(args []string, flag string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// HasPassword reports whether a database DSN carries a password: in the user
// information of a URL (postgres://user:secret@host/db) or as a password
// parameter (…?password=secret, or password=secret in key=value form).
func HasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			return true
		}
		if u.Query().Has("password") {
			return true
		}
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(strings.ToLower(f), "password=") {
			return true
		}
	}
	return false
}

// RefuseDSN is an error when the DSN given with flag on the command line (args)
// carries a password; instead says where it belongs.
func RefuseDSN(args []string, flag, dsn, instead string) error {
	if !Given(args, flag) || !HasPassword(dsn) {
		return nil
	}
	return fmt.Errorf("%s holds a password on the command line, where ps shows it to every user: pass it in %s", flag, instead)
}

// ReadFile reads a secret (a key, a DSN) from a file, without the surrounding
// white space and line end.
func ReadFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
