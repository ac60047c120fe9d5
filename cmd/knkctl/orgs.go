package main

import (
	"context"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type orgsCmd struct {
	Create orgsCreateCmd `cmd:"" help:"Create an organization."`
	Get    orgsGetCmd    `cmd:"" help:"Show an organization."`
	List   orgsListCmd   `cmd:"" help:"List organizations."`
}

var orgKinds = map[string]knkv1.Organization_Kind{
	"federation":    knkv1.Organization_KIND_FEDERATION,
	"training-unit": knkv1.Organization_KIND_TRAINING_UNIT,
	"inspectorate":  knkv1.Organization_KIND_INSPECTORATE,
	"admin":         knkv1.Organization_KIND_ADMIN,
}

type orgsCreateCmd struct {
	ID          string `arg:"" name:"id" help:"Organization id: lower-case letters, digits and '-', starting with a letter (e.g. ksbsi)."`
	Kind        string `required:"" enum:"federation,training-unit,inspectorate,admin" help:"One of ${enum}; the role of its keys."`
	DisplayName string `required:"" help:"Display name, e.g. KSBSI."`
	Province    string `help:"Two-digit province code (e.g. 61); empty = national scope."`
}

func (c *orgsCreateCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewOrganizationServiceClient(cc).CreateOrganization(ctx, &knkv1.CreateOrganizationRequest{
			OrganizationId: strings.TrimPrefix(c.ID, "organizations/"),
			Organization: &knkv1.Organization{
				Kind:         orgKinds[c.Kind],
				DisplayName:  c.DisplayName,
				ProvinceCode: c.Province,
			},
		})
	})
}

type orgsGetCmd struct {
	ID string `arg:"" name:"id" help:"Organization id or organizations/ID."`
}

func (c *orgsGetCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewOrganizationServiceClient(cc).GetOrganization(ctx, &knkv1.GetOrganizationRequest{Name: orgName(c.ID)})
	})
}

type orgsListCmd struct {
	PageSize int32 `help:"Page size (server default 50, at most 1000)."`
	All      bool  `help:"Follow next_page_token and print every organization."`
}

func (c *orgsListCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewOrganizationServiceClient(cc)
	return pages(a, c.All, "organizations", func(ctx context.Context, token string) (*knkv1.ListOrganizationsResponse, error) {
		return client.ListOrganizations(ctx, &knkv1.ListOrganizationsRequest{PageSize: c.PageSize, PageToken: token})
	}, (*knkv1.ListOrganizationsResponse).GetOrganizations)
}

type keysCmd struct {
	Create        keysCreateCmd        `cmd:"" help:"Create an API key; prints only its secret, which is shown this once."`
	List          keysListCmd          `cmd:"" help:"List an organization's keys (never their secrets)."`
	Revoke        keysRevokeCmd        `cmd:"" help:"Revoke a key; it stops working at once."`
	Rotate        keysRotateCmd        `cmd:"" help:"Replace a key: prints the new secret; the old key keeps working for --grace, then expires."`
	RotateSigning keysRotateSigningCmd `cmd:"" name:"rotate-signing" help:"Make a new certificate signing key the one that signs; earlier keys stay published."`
	RevokeSigning keysRevokeSigningCmd `cmd:"" name:"revoke-signing" help:"Revoke a compromised signing key from a time on, then re-sign the certificates it signed since with the current key."`
}

type keysCreateCmd struct {
	Org    string `arg:"" help:"Organization id or organizations/ID."`
	Expire string `placeholder:"TIME" help:"When the key stops working, RFC 3339 (default: never)."`
}

func (c *keysCreateCmd) Run(a *app) error {
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
	key, err := knkv1.NewOrganizationServiceClient(cc).CreateApiKey(ctx, &knkv1.CreateApiKeyRequest{
		Parent: orgName(c.Org),
		ApiKey: &knkv1.ApiKey{ExpireTime: expire},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "knkctl: created %s\n", key.GetName())
	_, err = fmt.Fprintln(a.stdout, key.GetSecret())
	return err
}

type keysListCmd struct {
	Org string `arg:"" help:"Organization id or organizations/ID."`
}

func (c *keysListCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewOrganizationServiceClient(cc)
	return printAll(a, "api_keys", func(token string) ([]*knkv1.ApiKey, string, error) {
		ctx, cancel := a.call()
		defer cancel()
		resp, err := client.ListApiKeys(ctx, &knkv1.ListApiKeysRequest{Parent: orgName(c.Org), PageToken: token})
		return resp.GetApiKeys(), resp.GetNextPageToken(), err
	})
}

// keyName is the resource name of an organization's key given by id or name.
func keyName(org, keyID string) (string, error) {
	prefix := orgName(org) + "/keys/"
	if strings.HasPrefix(keyID, prefix) {
		return keyID, nil
	}
	if strings.Contains(keyID, "/") {
		return "", fmt.Errorf("%s is not a key of %s", keyID, orgName(org))
	}
	return prefix + keyID, nil
}

type keysRevokeCmd struct {
	Org   string `arg:"" help:"Organization id or organizations/ID."`
	KeyID string `arg:"" name:"key-id" help:"Key id (the last part of organizations/ORG/keys/KEY_ID)."`
}

func (c *keysRevokeCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	name, err := keyName(c.Org, c.KeyID)
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	if _, err := knkv1.NewOrganizationServiceClient(cc).DeleteApiKey(ctx, &knkv1.DeleteApiKeyRequest{Name: name}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "revoked %s: it no longer works\n", name)
	return err
}
