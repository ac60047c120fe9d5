package secretbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, err := CreateKeyFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	sealed := k.Seal(secret, []byte("row-1"))
	if bytes.Contains(sealed, secret) || !IsSealed(sealed) || IsSealed(secret) {
		t.Fatalf("sealed value %x holds the plaintext or is not recognised", sealed)
	}
	if again := k.Seal(secret, []byte("row-1")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same secret are equal: the nonce is not fresh")
	}
	got, err := k.Open(sealed, []byte("row-1"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	reread, err := ReadKeyFile(filepath.Join(dir, "kek"))
	if err != nil || reread.ID() != k.ID() {
		t.Fatalf("ReadKeyFile: %v, id %s want %s", err, reread.ID(), k.ID())
	}
	if _, err := reread.Open(sealed, []byte("row-1")); err != nil {
		t.Fatalf("the key read back does not open: %v", err)
	}

	// The additional data binds the value to its row.
	if _, err := k.Open(sealed, []byte("row-2")); err == nil || errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another row's ad = %v, want an error that is not ErrWrongKey", err)
	}
	// A flipped bit is refused.
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := k.Open(bad, []byte("row-1")); err == nil {
		t.Fatal("an altered value opened")
	}
	// Another key is told apart.
	other, err := CreateKeyFile(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(sealed, []byte("row-1")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open under another key = %v, want ErrWrongKey", err)
	}
	if _, err := k.Open(secret, nil); err == nil {
		t.Fatal("a plaintext opened")
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := syscall.Umask(0) // the file must be 0600 whatever the umask
	path := filepath.Join(dir, "kek")
	_, err := CreateKeyFile(path)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if _, err := CreateKeyFile(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateKeyFile over an existing file = %v, want ErrExist", err)
	}
	for name, content := range map[string]string{
		"short": "c2hvcnQ=\n",
		"text":  "not base64 at all\n",
		"empty": "",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := ReadKeyFile(p); err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Errorf("ReadKeyFile(%s) = %v, want an error saying how to make a key", name, err)
		}
	}
}
