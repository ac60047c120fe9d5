package certificate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/secretbox"
)

// Key is a private signing key.
type Key struct {
	ID  string
	key ed25519.PrivateKey
}

// Sign signs canonical bytes.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.key, msg) }

// Signer hands out the key that signs certificates now: the key of the
// --signing-key file, or the active key stored in the database, whose seed is
// sealed under the key-encryption key (KEK). The active key is read in the
// caller's transaction, so that a rotation made by another replica, or earlier
// in the same SQLite batch, is seen at once.
type Signer struct {
	kek   *secretbox.Key
	fixed *Key // from --signing-key; nil when the stored key signs

	mu   sync.Mutex
	keys map[string]*Key // stored keys decrypted so far, by id
}

// SignerConfig says where the signing keys come from.
type SignerConfig struct {
	// File is a PKCS#8 PEM Ed25519 key (--signing-key); its public key is
	// published, its private key never stored. Empty: the stored key signs.
	File string
	// KEKFile holds the key-encryption key (--key-encryption-key-file).
	KEKFile string
	// CreateKEK lets LoadSigner create KEKFile when it is missing and no stored
	// key is encrypted yet (the SQLite default: a file beside the database).
	CreateKEK bool
	Now       time.Time
}

// ErrKeys is wrapped by every LoadSigner error about the keys themselves (as
// opposed to the database): a missing or wrong key-encryption key, a key that
// does not decrypt.
var ErrKeys = errors.New("signing keys")

// LoadSigner opens the key-encryption key, checks that every stored private key
// decrypts under it (knkd must not start otherwise, and never makes a new key in
// place of one it cannot read), seals any seed still stored in plaintext, and
// generates the first key if the store has none and no file is given. Every key
// ever used stays published so old certificates still verify.
func LoadSigner(ctx context.Context, store *db.DB, cfg SignerConfig) (*Signer, error) {
	kek, err := loadKEK(ctx, store, cfg)
	if err != nil {
		return nil, err
	}
	s := &Signer{kek: kek, keys: map[string]*Key{}}
	if err := s.openStored(ctx, store); err != nil {
		return nil, err
	}
	if cfg.File != "" {
		key, err := readKey(cfg.File)
		if err != nil {
			return nil, err
		}
		pub := key.Public().(ed25519.PublicKey)
		s.fixed = &Key{ID: KeyID(pub), key: key}
		err = store.Write(ctx, func(tx *db.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, public_key, create_time) VALUES (?, ?, ?)
				ON CONFLICT (id) DO NOTHING`, s.fixed.ID, []byte(pub), cfg.Now.UnixMicro())
			return err
		})
		return s, err
	}
	err = store.Write(ctx, func(tx *db.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys WHERE active = 1 AND private_key IS NOT NULL`).Scan(&n); err != nil || n > 0 {
			return err
		}
		_, err := s.insertNew(ctx, tx, cfg.Now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.Current(ctx, store); err != nil {
		return nil, err
	}
	return s, nil
}

func loadKEK(ctx context.Context, store *db.DB, cfg SignerConfig) (*secretbox.Key, error) {
	if cfg.KEKFile == "" {
		return nil, fmt.Errorf("%w: no key-encryption key file given (--key-encryption-key-file)", ErrKeys)
	}
	kek, err := secretbox.ReadKeyFile(cfg.KEKFile)
	if errors.Is(err, fs.ErrNotExist) && cfg.CreateKEK {
		var sealed int
		if err := store.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys WHERE key_encrypted = 1 AND private_key IS NOT NULL`).Scan(&sealed); err != nil {
			return nil, err
		}
		if sealed > 0 {
			return nil, fmt.Errorf("%w: the signing keys in the database are encrypted, but the key-encryption key file %s is missing: "+
				"restore it from where you keep it (knkd will not make a new signing key in their place)", ErrKeys, cfg.KEKFile)
		}
		kek, err = secretbox.CreateKeyFile(cfg.KEKFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: key-encryption key: %w", ErrKeys, err)
	}
	return kek, nil
}

// openStored decrypts every stored private key, refusing to go on if one does
// not decrypt, and seals the seeds still stored in plaintext.
func (s *Signer) openStored(ctx context.Context, store *db.DB) error {
	type row struct {
		id        string
		pub, priv []byte
		sealed    bool
	}
	rows, err := db.All(ctx, store, func(r db.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.pub, &x.priv, &x.sealed)
	}, `SELECT id, public_key, private_key, key_encrypted FROM signing_keys WHERE private_key IS NOT NULL ORDER BY id`)
	if err != nil {
		return err
	}
	var plain []row
	for _, r := range rows {
		if !r.sealed {
			plain = append(plain, r)
			continue
		}
		if _, err := s.open(r.id, r.pub, r.priv, true); err != nil {
			return err
		}
	}
	if len(plain) == 0 {
		return nil
	}
	return store.Write(ctx, func(tx *db.Tx) error {
		for _, r := range plain {
			if _, err := s.open(r.id, r.pub, r.priv, false); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = ?, key_encrypted = 1 WHERE id = ? AND key_encrypted = 0`,
				s.kek.Seal(r.priv, []byte(r.id)), r.id)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// open turns a stored private key into a Key (cached by id), checking that it
// belongs to the stored public key.
func (s *Signer) open(id string, pub, priv []byte, sealed bool) (*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[id]; ok {
		return k, nil
	}
	seed := priv
	if sealed {
		var err error
		if seed, err = s.kek.Open(priv, []byte(id)); err != nil {
			return nil, fmt.Errorf("%w: signing key %s does not decrypt with the key-encryption key given: %w; "+
				"start knkd with the key-encryption key file the database was used with", ErrKeys, id, err)
		}
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: signing key %s: stored private key has %d bytes", ErrKeys, id, len(seed))
	}
	key := ed25519.NewKeyFromSeed(seed)
	if !key.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) || KeyID(pub) != id {
		return nil, fmt.Errorf("%w: signing key %s: the stored private key does not match its public key", ErrKeys, id)
	}
	k := &Key{ID: id, key: key}
	s.keys[id] = k
	return k, nil
}

// Current returns the key that signs now, reading the active stored key with q
// (the caller's transaction when it is about to sign).
func (s *Signer) Current(ctx context.Context, q db.Querier) (*Key, error) {
	if s.fixed != nil {
		return s.fixed, nil
	}
	var (
		id        string
		pub, priv []byte
		sealed    bool
	)
	err := q.QueryRowContext(ctx, `SELECT id, public_key, private_key, key_encrypted FROM signing_keys
		WHERE active = 1 AND private_key IS NOT NULL`).Scan(&id, &pub, &priv, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("no active signing key is stored")
	}
	if err != nil {
		return nil, err
	}
	return s.open(id, pub, priv, sealed)
}

// Fixed reports the id of the --signing-key key, or "" when the stored key signs.
func (s *Signer) Fixed() string {
	if s.fixed == nil {
		return ""
	}
	return s.fixed.ID
}

// insertNew generates a key, stores it sealed and active, and returns it.
func (s *Signer) insertNew(ctx context.Context, tx *db.Tx, now time.Time) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	k := &Key{ID: KeyID(pub), key: priv}
	_, err = tx.ExecContext(ctx, `INSERT INTO signing_keys (id, public_key, private_key, key_encrypted, active, create_time)
		VALUES (?, ?, ?, 1, 1, ?) ON CONFLICT DO NOTHING`, k.ID, []byte(pub), s.kek.Seal(priv.Seed(), []byte(k.ID)), now.UnixMicro())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.keys[k.ID] = k
	s.mu.Unlock()
	return k, nil
}

// rotate makes a new stored key the active one in tx. The old active key stays
// published, but its private key is discarded: nothing signs with it again.
func (s *Signer) rotate(ctx context.Context, tx *db.Tx, now time.Time) (*Key, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET active = 0, private_key = NULL
		WHERE active = 1 AND private_key IS NOT NULL`); err != nil {
		return nil, err
	}
	k, err := s.insertNew(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys WHERE id = ? AND active = 1`, k.ID).Scan(&n); err != nil {
		return nil, err
	}
	if n != 1 { // another replica rotated at the same moment and won
		return nil, db.ErrConflict
	}
	return k, nil
}

func readKey(file string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("signing key: no PEM block in " + file)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", file, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("signing key: " + file + " is not an Ed25519 key")
	}
	return key, nil
}

// Rekey seals every stored private key again under next, opening it with
// current, in one transaction, and returns how many it re-sealed. Run it with
// knkd stopped, then start every knkd with next: the database then no longer
// opens under current.
func Rekey(ctx context.Context, store *db.DB, current, next *secretbox.Key) (int, error) {
	n := 0
	err := store.Write(ctx, func(tx *db.Tx) error {
		n = 0
		type sealed struct {
			id   string
			priv []byte
		}
		rows, err := db.All(ctx, tx, func(r db.Scanner) (sealed, error) {
			var k sealed
			return k, r.Scan(&k.id, &k.priv)
		}, `SELECT id, private_key FROM signing_keys WHERE private_key IS NOT NULL AND key_encrypted = 1`+tx.ForUpdate())
		if err != nil {
			return err
		}
		for _, k := range rows {
			seed, err := current.Open(k.priv, []byte(k.id))
			if err != nil {
				return fmt.Errorf("%w: signing key %s does not decrypt with the current key-encryption key: %w", ErrKeys, k.id, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = ? WHERE id = ?`, next.Seal(seed, []byte(k.id)), k.id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
