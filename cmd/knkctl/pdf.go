package main

import (
	"archive/zip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type certificatesPdfCmd struct {
	Number   string `arg:"" optional:"" help:"Certificate number (KNK-31-2026-000001) or name (certificates/KNK-…): write its printable PDF."`
	Session  string `help:"Instead of NUMBER: every valid certificate held by a cadre who attended this session (id or sessions/ID), in one ZIP." xor:"batch"`
	Province string `help:"Instead of NUMBER: every valid certificate of this province (two-digit code), in one ZIP." xor:"batch"`
	Output   string `short:"o" required:"" type:"path" placeholder:"FILE" help:"Where to write: FILE.pdf for one certificate, FILE.zip with --session or --province. Written only when complete, readable by you alone (0600)."`
}

func (c *certificatesPdfCmd) Run(a *app) error {
	batch := c.Session != "" || c.Province != ""
	switch {
	case c.Number == "" && !batch:
		return errors.New("give a certificate NUMBER, or --session or --province for a ZIP of many")
	case c.Number != "" && batch:
		return errors.New("give either a certificate NUMBER or --session/--province, not both")
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCertificateServiceClient(cc)
	pdf := func(name string) ([]byte, error) {
		ctx, cancel := a.call()
		defer cancel()
		body, err := client.GetCertificatePdf(ctx, &knkv1.GetCertificatePdfRequest{Name: name})
		if err != nil {
			return nil, err
		}
		return body.GetData(), nil
	}
	if !batch {
		b, err := pdf(certificateName(c.Number))
		if err != nil {
			return err
		}
		if err := writeFileAtomic(c.Output, func(f *os.File) error { _, err := f.Write(b); return err }); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "wrote %s (%d bytes)\n", c.Output, len(b))
		return nil
	}

	names, what, err := c.certificates(a)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no valid certificate %s: nothing written", what)
	}
	written, skipped := 0, 0
	err = writeFileAtomic(c.Output, func(f *os.File) error {
		z := zip.NewWriter(f)
		for i, name := range names {
			number := strings.TrimPrefix(name, "certificates/")
			b, err := pdf(name)
			if status.Code(err) == codes.FailedPrecondition { // revoked since it was listed
				fmt.Fprintf(a.stderr, "[%d/%d] %s skipped: %v\n", i+1, len(names), number, describe(err))
				skipped++
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", number, describe(err))
			}
			w, err := z.CreateHeader(&zip.FileHeader{Name: number + ".pdf", Method: zip.Deflate, Modified: time.Now()})
			if err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			written++
			fmt.Fprintf(a.stderr, "[%d/%d] %s\n", i+1, len(names), number)
		}
		if written == 0 {
			return fmt.Errorf("no valid certificate %s is left to print", what)
		}
		return z.Close()
	})
	if err != nil {
		return err
	}
	plural := "s"
	if written == 1 {
		plural = ""
	}
	fmt.Fprintf(a.stderr, "wrote %s: %d certificate%s", c.Output, written, plural)
	if skipped > 0 {
		fmt.Fprintf(a.stderr, " (%d skipped)", skipped)
	}
	fmt.Fprintln(a.stderr)
	return nil
}

// certificates lists the names of the valid certificates to print, and says
// whose they are for messages.
func (c *certificatesPdfCmd) certificates(a *app) ([]string, string, error) {
	cc, err := a.conn()
	if err != nil {
		return nil, "", err
	}
	certs := knkv1.NewCertificateServiceClient(cc)
	valid := func(req *knkv1.ListCertificatesRequest) ([]string, error) {
		req.State, req.PageSize = knkv1.Certificate_STATE_VALID, 1000
		var names []string
		for {
			ctx, cancel := a.call()
			resp, err := certs.ListCertificates(ctx, req)
			cancel()
			if err != nil {
				return nil, err
			}
			for _, c := range resp.GetCertificates() {
				names = append(names, c.GetName())
			}
			if resp.GetNextPageToken() == "" || resp.GetNextPageToken() == req.PageToken {
				return names, nil
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	if c.Province != "" {
		names, err := valid(&knkv1.ListCertificatesRequest{ProvinceCode: c.Province})
		return names, "in province " + c.Province, err
	}
	session := resourceName("sessions", c.Session)
	training := knkv1.NewTrainingServiceClient(cc)
	req := &knkv1.ListEnrollmentsRequest{Parent: session, PageSize: 1000}
	var names []string
	for {
		ctx, cancel := a.call()
		resp, err := training.ListEnrollments(ctx, req)
		cancel()
		if err != nil {
			return nil, "", err
		}
		for _, e := range resp.GetEnrollments() {
			if !e.GetAttended() {
				continue
			}
			held, err := valid(&knkv1.ListCertificatesRequest{Cadre: e.GetCadre()})
			if err != nil {
				return nil, "", err
			}
			names = append(names, held...)
		}
		if resp.GetNextPageToken() == "" || resp.GetNextPageToken() == req.PageToken {
			return names, "held by a cadre who attended " + session, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// writeFileAtomic writes path through fill: into a new 0600 file beside it,
// synced and renamed over path only when fill succeeded, so that path never holds
// half a file and a failed run leaves nothing behind.
func writeFileAtomic(path string, fill func(*os.File) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
