package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// BackupInfo describes a SQLite backup that was taken or is about to be restored.
type BackupInfo struct {
	Bytes        int64
	LastEvent    int64 // the highest event sequence in the copy
	Cadres       int64
	Certificates int64
}

// Backup writes a consistent copy of the SQLite store at path to out while knkd
// may keep writing: VACUUM INTO reads the store in one read transaction, which in
// WAL mode never blocks the writer, and the copy holds exactly the transactions
// committed when it began. The copy is written beside out under a temporary name
// with mode 0600, checked (PRAGMA integrity_check), synced to disk, and only then
// given the name out, which must not exist: a failed backup leaves nothing
// behind and never replaces an earlier one.
func Backup(ctx context.Context, path, out string) (BackupInfo, error) {
	if IsPostgres(path) {
		return BackupInfo{}, errors.New("knkctl backup copies SQLite stores; back up PostgreSQL with pg_dump (see README, Backups)")
	}
	if _, err := os.Stat(path); err != nil {
		return BackupInfo{}, fmt.Errorf("the store %s: %w", path, err)
	}
	if err := mustNotExist(out); err != nil {
		return BackupInfo{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*") // 0600
	if err != nil {
		return BackupInfo{}, err
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // gone once linked to out, or on failure

	src, err := sql.Open("sqlite3", "file:"+path+"?mode=rw&_busy_timeout=10000")
	if err != nil {
		return BackupInfo{}, err
	}
	defer src.Close()
	// VACUUM INTO needs an empty (or missing) target: the temporary file is empty.
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmpPath); err != nil {
		return BackupInfo{}, fmt.Errorf("copy %s: %w", path, err)
	}
	info, err := Check(ctx, tmpPath)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the copy does not check out: %w", err)
	}
	if err := syncFile(tmpPath); err != nil {
		return BackupInfo{}, err
	}
	if err := publish(tmpPath, out); err != nil {
		return BackupInfo{}, err
	}
	return info, nil
}

// Restore copies the backup file from to the path to, which must not exist yet
// (nor its -wal and -shm files): a restore never overwrites a store. The backup
// is checked first (integrity, a KNK schema), and the store appears under its
// name only once it is completely written and synced.
func Restore(ctx context.Context, from, to string) (BackupInfo, error) {
	if IsPostgres(to) {
		return BackupInfo{}, errors.New("knkctl restore writes SQLite stores; restore PostgreSQL with pg_restore (see README, Backups)")
	}
	for _, p := range []string{to, to + "-wal", to + "-shm"} {
		if err := mustNotExist(p); err != nil {
			return BackupInfo{}, fmt.Errorf("restore only into an empty path: %w", err)
		}
	}
	info, err := Check(ctx, from)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the backup %s does not check out: %w", from, err)
	}
	in, err := os.Open(from)
	if err != nil {
		return BackupInfo{}, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".partial-*") // 0600
	if err != nil {
		return BackupInfo{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return BackupInfo{}, err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return BackupInfo{}, err
	}
	return info, publish(tmp.Name(), to)
}

// Check opens a SQLite file read-only and checks that it is whole (PRAGMA
// integrity_check) and is a KNK store, and describes it.
func Check(ctx context.Context, path string) (BackupInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		return BackupInfo{}, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("not a SQLite database: %w", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return BackupInfo{}, err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return BackupInfo{}, err
	}
	if len(problems) > 0 {
		return BackupInfo{}, fmt.Errorf("integrity check: %s", strings.Join(problems, "; "))
	}
	info := BackupInfo{Bytes: st.Size()}
	err = conn.QueryRowContext(ctx, `SELECT (SELECT COALESCE(MAX(sequence), 0) FROM events),
		(SELECT COUNT(*) FROM cadres), (SELECT COUNT(*) FROM certificates)`).Scan(&info.LastEvent, &info.Cadres, &info.Certificates)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("not a KNK store: %w", err)
	}
	return info, nil
}

func mustNotExist(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s already exists; give a new file name", path)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return nil
}

// publish gives the finished file tmp the name final without ever replacing a
// file of that name (a hard link fails if final exists), and syncs the directory
// so that the name survives a crash.
func publish(tmp, final string) error {
	if err := os.Link(tmp, final); err != nil {
		return fmt.Errorf("name the copy %s: %w", final, err)
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(final))
	if err != nil {
		return err
	}
	return errors.Join(dir.Sync(), dir.Close())
}
