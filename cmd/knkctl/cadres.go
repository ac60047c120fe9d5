package main

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"io"
	"os"
	"slices"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type cadresCmd struct {
	Get       cadresGetCmd       `cmd:"" help:"Show a cadre."`
	List      cadresListCmd      `cmd:"" help:"List the cadres visible to the caller, oldest first."`
	Lookup    cadresLookupCmd    `cmd:"" help:"Find a cadre by NIK, read from stdin or --nik-file (never from the command line)."`
	Update    cadresUpdateCmd    `cmd:"" help:"Correct a cadre's registration: only the fields given change (the NIK never does)."`
	Withdraw  cadresWithdrawCmd  `cmd:"" help:"Withdraw a cadre from the programme; ends any forum membership."`
	AccessLog cadresAccessLogCmd `cmd:"" name:"access-log" help:"Who read the cadre's personal data (admin and the cadre's federation)."`
	Export    cadresExportCmd    `cmd:"" help:"Write everything held about the cadre, with its access log, to a 0600 file (data-subject request)."`
}

type cadresGetCmd struct {
	ID string `arg:"" name:"id" help:"Cadre id (01J…) or name (cadres/01J…)."`
}

func (c *cadresGetCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCadreServiceClient(cc).GetCadre(ctx, &knkv1.GetCadreRequest{Name: resourceName("cadres", c.ID)})
	})
}

var cadreStates = map[string]knkv1.Cadre_State{
	"active":    knkv1.Cadre_STATE_ACTIVE,
	"certified": knkv1.Cadre_STATE_CERTIFIED,
	"withdrawn": knkv1.Cadre_STATE_WITHDRAWN,
}

var topics = map[string]knkv1.Topic{
	"k3":              knkv1.Topic_TOPIC_K3,
	"pkwt":            knkv1.Topic_TOPIC_PKWT,
	"wage-scale":      knkv1.Topic_TOPIC_WAGE_SCALE,
	"social-security": knkv1.Topic_TOPIC_SOCIAL_SECURITY,
}

type cadresListCmd struct {
	Province    string `help:"Only cadres whose workplace is in this province (two-digit code)."`
	Federation  string `help:"Only cadres enrolled by this federation (ID or organizations/ID)."`
	State       string `help:"Only cadres in this state: active, certified or withdrawn."`
	TopicPassed string `help:"Only cadres who passed this topic: k3, pkwt, wage-scale or social-security."`
	PageSize    int32  `help:"Page size (server default 50, at most 1000)."`
	All         bool   `help:"Follow next_page_token and print every matching cadre."`
}

func (c *cadresListCmd) Run(a *app) error {
	req := &knkv1.ListCadresRequest{
		PageSize:     c.PageSize,
		ProvinceCode: c.Province,
		Federation:   orgName(c.Federation),
	}
	if c.State != "" {
		s, ok := cadreStates[c.State]
		if !ok {
			return fmt.Errorf("--state must be one of %s, not %q", keys(cadreStates), c.State)
		}
		req.State = s
	}
	if c.TopicPassed != "" {
		t, ok := topics[c.TopicPassed]
		if !ok {
			return fmt.Errorf("--topic-passed must be one of %s, not %q", keys(topics), c.TopicPassed)
		}
		req.TopicPassed = t
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCadreServiceClient(cc)
	return pages(a, c.All, "cadres", func(ctx context.Context, token string) (*knkv1.ListCadresResponse, error) {
		req.PageToken = token
		return client.ListCadres(ctx, req)
	}, (*knkv1.ListCadresResponse).GetCadres)
}

// cadresLookupCmd never takes the NIK as an argument: argv is visible to every user
// of the machine (ps, /proc), and a NIK is personal data.
type cadresLookupCmd struct {
	NikFile string `type:"path" help:"Read the NIK from this file instead of stdin."`
}

func (c *cadresLookupCmd) Run(a *app) error {
	nik, err := nikInput(a, c.NikFile)
	if err != nil {
		return err
	}
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCadreServiceClient(cc).LookupCadre(ctx, &knkv1.LookupCadreRequest{Nik: nik})
	})
}

// nikInput reads a NIK from the file path, or else from stdin (prompting on a
// terminal).
func nikInput(a *app, path string) (string, error) {
	in := a.stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		in = f
	} else if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(a.stderr, "NIK: ")
		}
	}
	return readNIK(in)
}

// readNIK reads one NIK (the first line, trimmed) without ever quoting it in an error.
func readNIK(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1024))
	if err != nil {
		return "", fmt.Errorf("read NIK: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	nik := strings.TrimSpace(line)
	if nik == "" {
		return "", errors.New("no NIK given: write it to stdin or use --nik-file")
	}
	return nik, nil
}

type cadresWithdrawCmd struct {
	ID     string `arg:"" name:"id" help:"Cadre id (01J…) or name (cadres/01J…)."`
	Reason string `required:"" help:"Why the cadre leaves the programme."`
}

func (c *cadresWithdrawCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCadreServiceClient(cc).WithdrawCadre(ctx, &knkv1.WithdrawCadreRequest{
			Name:   resourceName("cadres", c.ID),
			Reason: c.Reason,
		})
	})
}

// keys lists a map's keys, sorted and comma-separated, for error messages.
func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}
