package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type transfersCmd struct {
	Request transfersRequestCmd `cmd:"" help:"Ask for the cadre registered with a NIK by another federation; the NIK is read from stdin or --nik-file."`
	List    transfersListCmd    `cmd:"" help:"List transfer requests: those asking for your cadres and those you made."`
	Approve transfersApproveCmd `cmd:"" help:"Approve a transfer request: the cadre moves to the requesting federation."`
	Reject  transfersRejectCmd  `cmd:"" help:"Reject a transfer request (or withdraw your own)."`
}

// transfersRequestCmd never takes the NIK as an argument (see cadresLookupCmd).
type transfersRequestCmd struct {
	NikFile    string `type:"path" help:"Read the NIK from this file instead of stdin."`
	Federation string `help:"Admin only: the federation asking (ID or organizations/ID)."`
}

func (c *transfersRequestCmd) Run(a *app) error {
	nik, err := nikInput(a, c.NikFile)
	if err != nil {
		return err
	}
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCadreServiceClient(cc).RequestTransfer(ctx, &knkv1.RequestTransferRequest{Nik: nik, Federation: orgName(c.Federation)})
	})
}

var transferStates = map[string]knkv1.TransferRequest_State{
	"pending":  knkv1.TransferRequest_STATE_PENDING,
	"approved": knkv1.TransferRequest_STATE_APPROVED,
	"rejected": knkv1.TransferRequest_STATE_REJECTED,
}

type transfersListCmd struct {
	State    string `help:"Only requests in this state: pending, approved or rejected."`
	PageSize int32  `help:"Page size (server default 50, at most 1000)."`
	All      bool   `help:"Follow next_page_token and print every matching request."`
}

func (c *transfersListCmd) Run(a *app) error {
	req := &knkv1.ListTransferRequestsRequest{PageSize: c.PageSize}
	if c.State != "" {
		s, ok := transferStates[c.State]
		if !ok {
			return fmt.Errorf("--state must be one of %s, not %q", keys(transferStates), c.State)
		}
		req.State = s
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewCadreServiceClient(cc)
	return pages(a, c.All, "transfer_requests", func(ctx context.Context, token string) (*knkv1.ListTransferRequestsResponse, error) {
		req.PageToken = token
		return client.ListTransferRequests(ctx, req)
	}, (*knkv1.ListTransferRequestsResponse).GetTransferRequests)
}

type transfersApproveCmd struct {
	ID string `arg:"" name:"id" help:"Transfer request id or name (transferRequests/…)."`
}

func (c *transfersApproveCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCadreServiceClient(cc).ApproveTransfer(ctx, &knkv1.ApproveTransferRequest{Name: resourceName("transferRequests", c.ID)})
	})
}

type transfersRejectCmd struct {
	ID     string `arg:"" name:"id" help:"Transfer request id or name (transferRequests/…)."`
	Reason string `required:"" help:"Why (kept with the request)."`
}

func (c *transfersRejectCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewCadreServiceClient(cc).RejectTransfer(ctx, &knkv1.RejectTransferRequest{Name: resourceName("transferRequests", c.ID), Reason: c.Reason})
	})
}
