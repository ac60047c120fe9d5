// Package forum implements ForumService: the 38 provincial Forums KNK and their
// memberships, which follow certificates (see membership.go).
package forum

import (
	"context"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/services/organization"
)

// Service implements knkv1.ForumServiceServer.
type Service struct {
	knkv1.UnimplementedForumServiceServer
	DB   *db.DB
	Orgs *organization.Service
	// Scope is the condition, over a column of cadre ids, that keeps the cadres
	// a principal may read (cadre.ScopeSQL; the cadre service imports this one).
	Scope func(p auth.Principal, column string) (string, []any)
	// Names maps cadre names to display names (cadre.Service.DisplayNames).
	Names func(ctx context.Context, cadres []string) (map[string]string, error)
}

var _ knkv1.ForumServiceServer = (*Service)(nil)

func (s *Service) forums(ctx context.Context) ([]*knkv1.Forum, int64, error) {
	counts, err := ActiveByProvince(ctx, s.DB)
	if err != nil {
		return nil, 0, err
	}
	guides, err := s.Orgs.Inspectorates(ctx)
	if err != nil {
		return nil, 0, err
	}
	var (
		out   []*knkv1.Forum
		total int64
	)
	for _, p := range idn.Provinces() {
		out = append(out, &knkv1.Forum{
			Name: "forums/" + p.Code, ProvinceCode: p.Code, DisplayName: "Forum KNK " + p.Name,
			Inspectorate: guides[p.Code], ActiveMembers: counts[p.Code],
		})
		total += counts[p.Code]
	}
	return out, total, nil
}

// ListForums lists the provincial forums with their active member counts and the
// national total.
func (s *Service) ListForums(ctx context.Context, req *knkv1.ListForumsRequest) (*knkv1.ListForumsResponse, error) {
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := api.DecodePageToken(req.GetPageToken(), "forums")
	if err != nil {
		return nil, err
	}
	all, total, err := s.forums(ctx)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListForumsResponse{NationalActiveMembers: total}
	for _, f := range all {
		if f.ProvinceCode <= after {
			continue
		}
		if len(resp.Forums) == size {
			resp.NextPageToken = api.EncodePageToken(resp.Forums[size-1].ProvinceCode, "forums")
			break
		}
		resp.Forums = append(resp.Forums, f)
	}
	return resp, nil
}

func parseForum(field, name string) (string, error) {
	p, ok := strings.CutPrefix(name, "forums/")
	if !ok || !idn.ValidProvince(p) {
		return "", api.Invalid(field, "must be forums/{province_code} with one of the 38 province codes")
	}
	return p, nil
}

// GetForum returns one provincial forum.
func (s *Service) GetForum(ctx context.Context, req *knkv1.GetForumRequest) (*knkv1.Forum, error) {
	p, err := parseForum("name", req.GetName())
	if err != nil {
		return nil, err
	}
	all, _, err := s.forums(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range all {
		if f.ProvinceCode == p {
			return f, nil
		}
	}
	return nil, api.NotFound(req.GetName())
}

// ListForumMembers lists a forum's memberships of cadres in the caller's scope,
// oldest first.
func (s *Service) ListForumMembers(ctx context.Context, req *knkv1.ListForumMembersRequest) (*knkv1.ListForumMembersResponse, error) {
	caller, _ := auth.FromContext(ctx)
	p, err := parseForum("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	state := req.GetState()
	if _, ok := knkv1.ForumMembership_State_name[int32(state)]; !ok {
		return nil, api.Invalid("state", "must be STATE_ACTIVE or STATE_ENDED")
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	token, err := api.DecodePageToken(req.GetPageToken(), p, state)
	if err != nil {
		return nil, err
	}
	after := int64(0)
	if token != "" {
		if after, err = strconv.ParseInt(token, 10, 64); err != nil {
			return nil, api.Invalid("page_token", "is not a token this API returned")
		}
	}
	// A unit or inspectorate whose province the forum is in (or national) reads
	// all its members; everyone else the members among the cadres in its scope.
	cond, scopeArgs := "1 = 1", []any(nil)
	if caller.Kind == auth.Federation || !caller.InProvince(p) {
		cond, scopeArgs = s.Scope(caller, "cadre_id")
	}
	query, args := `SELECT id, cadre_id, certificate, state, join_time, end_time, end_reason
		FROM forum_memberships WHERE province_code = ? AND id > ? AND `+cond, append([]any{p, after}, scopeArgs...)
	if state != knkv1.ForumMembership_STATE_UNSPECIFIED {
		query, args = query+` AND state = ?`, append(args, int32(state))
	}
	rows, err := s.DB.QueryContext(ctx, query+` ORDER BY id LIMIT ?`, append(args, size+1)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	resp := &knkv1.ListForumMembersResponse{}
	var lastID int64
	for rows.Next() {
		var (
			id, join, end int64
			cadre, cert   string
			st, reason    int32
		)
		if err := rows.Scan(&id, &cadre, &cert, &st, &join, &end, &reason); err != nil {
			return nil, err
		}
		if len(resp.Members) == size {
			resp.NextPageToken = api.EncodePageToken(strconv.FormatInt(lastID, 10), p, state)
			break
		}
		m := &knkv1.ForumMembership{
			Name: memberName(p, cadre), Cadre: "cadres/" + cadre, Certificate: cert,
			State: knkv1.ForumMembership_State(st), JoinTime: timestamppb.New(time.UnixMicro(join)),
			EndReason: knkv1.ForumMembership_EndReason(reason),
		}
		if end != 0 {
			m.EndTime = timestamppb.New(time.UnixMicro(end))
		}
		resp.Members, lastID = append(resp.Members, m), id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	cadres := make([]string, len(resp.Members))
	for i, m := range resp.Members {
		cadres[i] = m.Cadre
	}
	names, err := s.Names(ctx, cadres)
	if err != nil {
		return nil, err
	}
	for _, m := range resp.Members {
		m.CadreDisplayName = names[m.Cadre]
		disclosure.Apply(m, disclosure.InScope(caller, ""))
	}
	return resp, nil
}
