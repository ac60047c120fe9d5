package cadre

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/internal/idn"
)

// A transfer request lets a federation take over a cadre registered by another
// one without learning anything about the cadre or its federation before the
// current federation (or admin) agrees.

// presentTransfer is the request as p may see it: the federation asked (and
// admin) see everything, the requester what the disclosure table grants.
func presentTransfer(p auth.Principal, t *knkv1.TransferRequest) *knkv1.TransferRequest {
	a := disclosure.Admin
	switch {
	case p.Kind == auth.Admin:
	case p.OrgName() == t.FromFederation:
		a = disclosure.OwnFederation
	default:
		a = disclosure.OtherFederation
	}
	disclosure.Apply(t, a)
	return t
}

// RequestTransfer asks for the cadre registered with a NIK by another federation.
func (s *Service) RequestTransfer(ctx context.Context, req *knkv1.RequestTransferRequest) (*knkv1.TransferRequest, error) {
	p, _ := auth.FromContext(ctx)
	var v api.Violations
	nik := idn.CleanNIK(req.GetNik())
	if _, err := idn.ParseNIK(nik, s.Now()); err != nil {
		v.Add("nik", err.Error())
	}
	to, err := s.federation(ctx, p, req.GetFederation(), &v)
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.Guard.Spend(p); err != nil {
		return nil, err
	}
	now := s.now()
	out := &knkv1.TransferRequest{Name: "transferRequests/" + ulid.Make().String(), ToFederation: to,
		State: knkv1.TransferRequest_STATE_PENDING, CreateTime: timestamppb.New(now)}
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		c, err := getByNIK(ctx, tx, nik)
		if err = tx.Translate(err); errors.Is(err, db.ErrNotFound) {
			return api.Error(codes.NotFound, "NOT_FOUND", "no cadre is registered with this NIK: register it with CreateCadre")
		}
		if err != nil {
			return err
		}
		if c.Federation == to {
			return api.Error(codes.FailedPrecondition, "ALREADY_YOURS", "the cadre with this NIK is already registered with "+to)
		}
		out.Cadre, out.FromFederation = c.Name, c.Federation
		ok, err := insertTransfer(ctx, tx, out)
		if err != nil {
			return err
		}
		if !ok {
			return api.Error(codes.AlreadyExists, "TRANSFER_PENDING", "a transfer of this cadre to "+to+" is already pending")
		}
		return tx.Event(ctx, "transfer.requested", out.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, err
	}
	return presentTransfer(p, out), nil
}

// ListTransferRequests lists the transfer requests the caller may see, oldest first.
func (s *Service) ListTransferRequests(ctx context.Context, req *knkv1.ListTransferRequestsRequest) (*knkv1.ListTransferRequestsResponse, error) {
	p, _ := auth.FromContext(ctx)
	state := req.GetState()
	if _, ok := knkv1.TransferRequest_State_name[int32(state)]; !ok {
		return nil, api.Invalid("state", "must be STATE_PENDING, STATE_APPROVED or STATE_REJECTED")
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := api.DecodePageToken(req.GetPageToken(), "transferRequests", state)
	if err != nil {
		return nil, err
	}
	list, err := listTransfers(ctx, s.DB, p, state, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListTransferRequestsResponse{TransferRequests: list}
	if len(list) > size {
		resp.TransferRequests = list[:size]
		resp.NextPageToken = api.EncodePageToken(strings.TrimPrefix(list[size-1].Name, "transferRequests/"), "transferRequests", state)
	}
	for _, t := range resp.TransferRequests {
		presentTransfer(p, t)
	}
	return resp, nil
}

// ApproveTransfer moves the cadre to the requesting federation and rejects any
// other request pending for it.
func (s *Service) ApproveTransfer(ctx context.Context, req *knkv1.ApproveTransferRequest) (*knkv1.TransferRequest, error) {
	return s.decide(ctx, req.GetName(), knkv1.TransferRequest_STATE_APPROVED, "")
}

// RejectTransfer refuses a pending request: the cadre's federation or admin
// decline it, the requester withdraws it.
func (s *Service) RejectTransfer(ctx context.Context, req *knkv1.RejectTransferRequest) (*knkv1.TransferRequest, error) {
	reason, err := api.Reason(req.GetReason())
	if err != nil {
		return nil, err
	}
	return s.decide(ctx, req.GetName(), knkv1.TransferRequest_STATE_REJECTED, reason)
}

// decide approves or rejects the pending request name for the caller.
func (s *Service) decide(ctx context.Context, name string, to knkv1.TransferRequest_State, reason string) (*knkv1.TransferRequest, error) {
	p, _ := auth.FromContext(ctx)
	tid, ok := strings.CutPrefix(name, "transferRequests/")
	if _, err := ulid.ParseStrict(tid); !ok || err != nil {
		return nil, api.Invalid("name", "must be transferRequests/{id}")
	}
	now := s.now()
	var out *knkv1.TransferRequest
	err := s.DB.Write(ctx, func(tx *db.Tx) error {
		t, err := getTransferForUpdate(ctx, tx, p, tid)
		if err != nil {
			return api.StoreError(name, tx.Translate(err))
		}
		if to == knkv1.TransferRequest_STATE_APPROVED && p.Kind != auth.Admin && p.OrgName() != t.FromFederation {
			return api.Denied("only the cadre's federation or admin approves a transfer")
		}
		if t.State != knkv1.TransferRequest_STATE_PENDING {
			return api.Error(codes.FailedPrecondition, "TRANSFER_DECIDED", name+" is "+
				strings.ToLower(strings.TrimPrefix(t.State.String(), "STATE_"))+" already")
		}
		typ := "transfer.rejected"
		if to == knkv1.TransferRequest_STATE_APPROVED {
			typ = "transfer.approved"
			if err := s.transfer(ctx, tx, t, p.OrgName(), now); err != nil {
				return err
			}
		}
		if err := decideTransfer(ctx, tx, tid, to, reason, now); err != nil {
			return err
		}
		t.State, t.RejectReason, t.DecideTime = to, reason, timestamppb.New(now)
		out = t
		return tx.Event(ctx, typ, name, p.OrgName(), now)
	})
	if err != nil {
		return nil, err
	}
	return presentTransfer(p, out), nil
}

// transfer moves the cadre of t to t's requester, with a cadre.transferred
// event, and rejects the other requests pending for the cadre.
func (s *Service) transfer(ctx context.Context, tx *db.Tx, t *knkv1.TransferRequest, actor string, now time.Time) error {
	c, err := getForUpdate(ctx, tx, id(t.Cadre))
	if err != nil {
		return tx.Translate(err)
	}
	if c.Federation != t.FromFederation {
		return api.Error(codes.FailedPrecondition, "CADRE_MOVED", "the cadre is no longer with "+t.FromFederation+": reject this request")
	}
	if err := setFederation(ctx, tx, id(c.Name), t.ToFederation, now); err != nil {
		return err
	}
	if err := tx.Event(ctx, "cadre.transferred", c.Name, actor, now); err != nil {
		return err
	}
	others, err := pendingTransfers(ctx, tx, id(c.Name))
	if err != nil {
		return err
	}
	for _, o := range others {
		if "transferRequests/"+o == t.Name {
			continue
		}
		if err := decideTransfer(ctx, tx, o, knkv1.TransferRequest_STATE_REJECTED, "the cadre moved to another federation", now); err != nil {
			return err
		}
		if err := tx.Event(ctx, "transfer.rejected", "transferRequests/"+o, actor, now); err != nil {
			return err
		}
	}
	return nil
}
