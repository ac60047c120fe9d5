package main

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// cadresUpdateCmd corrects a cadre's registration (rectification under UU PDP).
// Only the flags given are changed; an empty value clears an optional field. The
// NIK cannot be changed here (nor ever given on the command line).
type cadresUpdateCmd struct {
	ID                string  `arg:"" name:"id" help:"Cadre id (01J…) or name (cadres/01J…)."`
	Name              *string `help:"Full name."`
	Phone             *string `help:"Phone number (08…, +628…); empty clears it."`
	Email             *string `help:"E-mail address; empty clears it."`
	Province          *string `help:"Two-digit workplace province code."`
	Regency           *string `help:"Regency or city; empty clears it."`
	EmployerName      *string `name:"employer-name" help:"Employer's name; empty clears it."`
	EmployerNib       *string `name:"employer-nib" help:"Employer's 13-digit NIB; empty clears it."`
	UnionMemberNumber *string `name:"union-member-number" help:"Union membership number; empty clears it."`
	BpjsKpj           *string `name:"bpjs-kpj" help:"11-digit BPJS Ketenagakerjaan number (KPJ); empty clears it."`
}

func (c *cadresUpdateCmd) Run(a *app) error {
	want := &knkv1.Cadre{Name: resourceName("cadres", c.ID), Employer: &knkv1.Employer{}}
	var paths []string
	for _, f := range []struct {
		path string
		val  *string
		dst  *string
	}{
		{"display_name", c.Name, &want.DisplayName}, {"phone", c.Phone, &want.Phone},
		{"email", c.Email, &want.Email}, {"province_code", c.Province, &want.ProvinceCode},
		{"regency", c.Regency, &want.Regency}, {"employer.name", c.EmployerName, &want.Employer.Name},
		{"employer.nib", c.EmployerNib, &want.Employer.Nib},
		{"union_member_number", c.UnionMemberNumber, &want.UnionMemberNumber}, {"bpjs_kpj", c.BpjsKpj, &want.BpjsKpj},
	} {
		if f.val != nil {
			*f.dst, paths = *f.val, append(paths, f.path)
		}
	}
	if len(paths) == 0 {
		return errors.New("nothing to update: give at least one of --name, --phone, --email, --province, --regency, " +
			"--employer-name, --employer-nib, --union-member-number, --bpjs-kpj")
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCadreServiceClient(cc)
	ctx, cancel := a.call()
	defer cancel()
	// The etag makes the update refuse to overwrite a change made by someone else
	// after we read the cadre.
	cur, err := client.GetCadre(ctx, &knkv1.GetCadreRequest{Name: want.Name})
	if err != nil {
		return err
	}
	want.Etag = cur.Etag
	updated, err := client.UpdateCadre(ctx, &knkv1.UpdateCadreRequest{Cadre: want, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
	if status.Code(err) == codes.Aborted {
		return status.Error(codes.Aborted, want.Name+" was changed by someone else while this update ran; nothing was changed: run the command again")
	}
	if err != nil {
		return err
	}
	return a.print(updated)
}
