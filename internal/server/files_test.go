package server_test

import (
	"os"
	"path/filepath"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// TestStoreFilesArePrivate: the SQLite database, its WAL and shared-memory
// files and the key-encryption key beside them are readable by knkd's user
// only, on a fresh store and on one whose file was made world-readable.
func TestStoreFilesArePrivate(t *testing.T) {
	t.Parallel()
	for name, prepare := range map[string]func(path string){
		"fresh":           func(string) {},
		"world-readable":  func(path string) { os.WriteFile(path, nil, 0o644); os.Chmod(path, 0o644) },
		"group-writeable": func(path string) { os.WriteFile(path, nil, 0o660); os.Chmod(path, 0o664) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "knk.db")
			prepare(path)
			e := testenv.StartAt(t, path)
			e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "") // a write, so the WAL holds data
			for _, f := range []string{path, path + "-wal", path + "-shm", path + ".kek"} {
				st, err := os.Stat(f)
				if err != nil {
					t.Errorf("%s: %v", filepath.Base(f), err)
					continue
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %04o, want 0600", filepath.Base(f), st.Mode().Perm())
				}
			}
		})
	}
}
