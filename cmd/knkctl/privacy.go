package main

import (
	"context"
	"fmt"
	"os"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type cadresAccessLogCmd struct {
	ID       string `arg:"" name:"id" help:"Cadre id (01J…) or name (cadres/01J…)."`
	PageSize int32  `help:"Page size (server default 50, at most 1000)."`
	All      bool   `help:"Follow next_page_token and print every entry."`
}

func (c *cadresAccessLogCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewPrivacyServiceClient(cc)
	req := &knkv1.ListAccessLogRequest{Cadre: resourceName("cadres", c.ID), PageSize: c.PageSize}
	return pages(a, c.All, "entries", func(ctx context.Context, token string) (*knkv1.ListAccessLogResponse, error) {
		req.PageToken = token
		return client.ListAccessLog(ctx, req)
	}, (*knkv1.ListAccessLogResponse).GetEntries)
}

// cadresExportCmd writes a data-subject export to a file only the user can read:
// it holds every personal field of the cadre.
type cadresExportCmd struct {
	ID  string `arg:"" name:"id" help:"Cadre id (01J…) or name (cadres/01J…)."`
	Out string `required:"" type:"path" help:"File to write the export to (created with mode 0600; an existing file is refused)."`
}

func (c *cadresExportCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	x, err := knkv1.NewPrivacyServiceClient(cc).ExportCadre(ctx, &knkv1.ExportCadreRequest{Name: resourceName("cadres", c.ID)})
	if err != nil {
		return err
	}
	b, err := fullMarshal.Marshal(x)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(c.Out)
		return fmt.Errorf("export: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(a.stderr, "wrote %s (mode 0600): %d enrolments, %d certificates, %d memberships, %d events, %d access-log entries\n",
		c.Out, len(x.Enrollments), len(x.Certificates), len(x.Memberships), len(x.Events), len(x.AccessLog))
	return nil
}
