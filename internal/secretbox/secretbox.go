// Package secretbox encrypts small secrets at rest (signing-key seeds, TOTP
// secrets) under a key-encryption key (KEK) kept apart from the database, with
// AES-256-GCM from the standard library.
//
// A sealed secret is: version byte (1) | KEK id (8 bytes) | nonce (12 bytes) |
// ciphertext and tag. The KEK id names the key it was sealed under, so that a
// wrong key is reported as such rather than as corrupt data. Additional data
// (e.g. the row's id) is authenticated but not stored: a sealed value moved to
// another row does not open.
package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of a key-encryption key: AES-256.
const KeySize = 32

const (
	version  = 1
	idSize   = 8
	overhead = 1 + idSize + 12 + 16
)

// ErrWrongKey is returned by Open when a value was sealed under another key.
var ErrWrongKey = errors.New("sealed under a different key-encryption key")

// Key is a key-encryption key.
type Key struct {
	aead cipher.AEAD
	id   [idSize]byte
}

// NewKey returns the key-encryption key of 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a key-encryption key has %d bytes, not %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &Key{aead: aead}
	sum := sha256.Sum256(append([]byte("knk-secretbox-key-id\x00"), raw...))
	copy(k.id[:], sum[:])
	return k, nil
}

// ID names the key without revealing it: 16 hex digits of a hash of it.
func (k *Key) ID() string { return hex.EncodeToString(k.id[:]) }

// Seal encrypts plaintext, binding it to ad (which Open must be given again).
func (k *Key) Seal(plaintext, ad []byte) []byte {
	out := make([]byte, 1+idSize+k.aead.NonceSize(), overhead+len(plaintext))
	out[0] = version
	copy(out[1:], k.id[:])
	rand.Read(out[1+idSize:]) // never fails (crypto/rand panics rather)
	nonce := out[1+idSize:]
	return k.aead.Seal(out, nonce, plaintext, ad)
}

// Open decrypts a value made by Seal with the same ad. A value sealed under
// another key gives ErrWrongKey; a changed value or ad gives another error.
func (k *Key) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < overhead || sealed[0] != version {
		return nil, errors.New("not a sealed value")
	}
	if !bytes.Equal(sealed[1:1+idSize], k.id[:]) {
		return nil, fmt.Errorf("%w (it was sealed under key %x, this is %s)", ErrWrongKey, sealed[1:1+idSize], k.ID())
	}
	nonce := sealed[1+idSize : 1+idSize+k.aead.NonceSize()]
	plain, err := k.aead.Open(nil, nonce, sealed[1+idSize+k.aead.NonceSize():], ad)
	if err != nil {
		return nil, errors.New("sealed value was altered or belongs elsewhere")
	}
	return plain, nil
}

// IsSealed reports whether b has the form of a sealed value.
func IsSealed(b []byte) bool { return len(b) >= overhead && b[0] == version }

// ReadKeyFile reads a key-encryption key file: 32 random bytes in standard
// base64 (as `openssl rand -base64 32` writes them), surrounding space ignored.
func ReadKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != KeySize {
		return nil, fmt.Errorf("%s does not hold a key-encryption key: it must be %d random bytes in base64 (make one with: openssl rand -base64 32)", path, KeySize)
	}
	return NewKey(raw)
}

// CreateKeyFile makes a new random key and writes it to path, which must not
// exist, with mode 0600 (whatever the umask).
func CreateKeyFile(path string) (*Key, error) {
	raw := make([]byte, KeySize)
	rand.Read(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return NewKey(raw)
}
