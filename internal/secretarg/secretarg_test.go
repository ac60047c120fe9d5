package secretarg

import "testing"

func TestHasPassword(t *testing.T) {
	for dsn, want := range map[string]bool{
		"knk.db":                                      false,
		"/var/lib/knk/knk.db":                         false,
		"postgres://postgres@127.0.0.1:5432/knk":      false,
		"postgres://knk:s3cret@db.internal/knk":       true,
		"postgresql://knk:@db/knk":                    true, // an empty password is still one
		"postgres://knk@db/knk?password=s3cret":       true,
		"host=db user=knk password=s3cret dbname=knk": true,
		"host=db user=knk dbname=knk":                 false,
	} {
		if got := HasPassword(dsn); got != want {
			t.Errorf("HasPassword(%q) = %v, want %v", dsn, got, want)
		}
	}
}

func TestRefuseDSN(t *testing.T) {
	dsn := "postgres://knk:s3cret@db/knk"
	if err := RefuseDSN([]string{"--db", dsn}, "--db", dsn, "KNK_DB"); err == nil {
		t.Error("a password given as --db VALUE was accepted")
	}
	if err := RefuseDSN([]string{"--db=" + dsn}, "--db", dsn, "KNK_DB"); err == nil {
		t.Error("a password given as --db=VALUE was accepted")
	}
	if err := RefuseDSN([]string{"--grpc-addr", ":1"}, "--db", dsn, "KNK_DB"); err != nil {
		t.Errorf("a DSN from the environment was refused: %v", err)
	}
	if err := RefuseDSN([]string{"--db", "knk.db"}, "--db", "knk.db", "KNK_DB"); err != nil {
		t.Errorf("a file path was refused: %v", err)
	}
}
