package main

import (
	"fmt"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// createPrivate creates or truncates a file that holds personal data (NIKs,
// names) with mode 0600, whatever the umask, and takes group and other access
// away from a file that was there before.
func createPrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("make %s private (mode 0600): %w", path, err)
	}
	return f, nil
}

type keysRotateCmd struct {
	Org    string        `arg:"" help:"Organization id or organizations/ID."`
	KeyID  string        `arg:"" name:"key-id" help:"Key id of the key to replace (the last part of organizations/ORG/keys/KEY_ID)."`
	Grace  time.Duration `default:"24h" help:"How long the old key keeps working (0 to 720h)."`
	Expire string        `placeholder:"TIME" help:"When the new key stops working, RFC 3339 (default: never)."`
}

func (c *keysRotateCmd) Run(a *app) error {
	name, err := keyName(c.Org, c.KeyID)
	if err != nil {
		return err
	}
	expire, err := parseTime("expire", c.Expire)
	if err != nil {
		return err
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	key, err := knkv1.NewOrganizationServiceClient(cc).RotateApiKey(ctx, &knkv1.RotateApiKeyRequest{
		Name: name, GracePeriod: durationpb.New(c.Grace), ExpireTime: expire,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "knkctl: created %s; %s keeps working for %s\n", key.GetName(), name, c.Grace)
	_, err = fmt.Fprintln(a.stdout, key.GetSecret())
	return err
}

type keysRotateSigningCmd struct{}

func (c *keysRotateSigningCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	key, err := knkv1.NewCertificateServiceClient(cc).RotateSigningKey(ctx, &knkv1.RotateSigningKeyRequest{})
	if err != nil {
		return err
	}
	return a.print(key)
}

type keysRevokeSigningCmd struct {
	KeyID    string `arg:"" name:"key-id" help:"Id of the signing key (key_id in GET /v1/keys)."`
	From     string `required:"" placeholder:"TIME" help:"Certificates the key signed at or after this RFC 3339 time become not valid (e.g. when it may have leaked)."`
	NoResign bool   `name:"no-resign" help:"Only revoke: leave the certificates not valid until 'knkctl certificates resign KEY_ID'."`
}

func (c *keysRevokeSigningCmd) Run(a *app) error {
	from, err := parseTime("from", c.From)
	if err != nil {
		return err
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	key, err := knkv1.NewCertificateServiceClient(cc).RevokeSigningKey(ctx, &knkv1.RevokeSigningKeyRequest{
		KeyId: c.KeyID, RevokedFrom: from,
	})
	if err != nil {
		return err
	}
	if err := a.print(key); err != nil || c.NoResign {
		return err
	}
	return resign(a, c.KeyID)
}

type certificatesResignCmd struct {
	KeyID string `arg:"" name:"key-id" help:"The revoked signing key whose certificates (signed at or after its revoked_from) are signed again with the current key."`
}

func (c *certificatesResignCmd) Run(a *app) error { return resign(a, c.KeyID) }

// resign calls ResignCertificates until no certificate of the revoked key is left.
func resign(a *app, keyID string) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCertificateServiceClient(cc)
	total := 0
	for {
		ctx, cancel := a.call()
		resp, err := client.ResignCertificates(ctx, &knkv1.ResignCertificatesRequest{KeyId: keyID})
		cancel()
		if err != nil {
			return fmt.Errorf("re-signed %d certificates, then: %w", total, describe(err))
		}
		total += int(resp.GetResigned())
		fmt.Fprintf(a.stderr, "knkctl: re-signed %d certificates with key %s, %d to go\n", total, resp.GetNewKeyId(), resp.GetRemaining())
		if resp.GetRemaining() == 0 {
			break
		}
		if resp.GetResigned() == 0 {
			return fmt.Errorf("re-signed %d certificates; %d remain but none could be re-signed", total, resp.GetRemaining())
		}
	}
	_, err = fmt.Fprintf(a.stdout, "resigned: %d\n", total)
	return err
}
