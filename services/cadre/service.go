// Package cadre implements CadreService: the registry of labour-norms cadres,
// their registration rules, and roster import.
package cadre

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/disclosure"
	"github.com/knk-id/knk/internal/idn"
	"github.com/knk-id/knk/internal/metrics"
	"github.com/knk-id/knk/internal/topic"
	"github.com/knk-id/knk/services/access"
	"github.com/knk-id/knk/services/forum"
	"github.com/knk-id/knk/services/organization"
)

// Service implements knkv1.CadreServiceServer.
type Service struct {
	knkv1.UnimplementedCadreServiceServer
	DB   *db.DB
	Orgs *organization.Service
	Now  func() time.Time
	// MinAge is the minimum age at registration (a programme rule; default 18).
	MinAge int
	// ImportBatch is how many roster rows are received and checked before they
	// are written, with db.WriteBulk, while the next ones arrive (default 1000).
	ImportBatch int
	// Guard limits each key's NIK checks (nil: no limit).
	Guard *Guard
	// Access is the access trail every read of personal data is recorded in.
	Access *access.Log
	// NIKKey keys the hash that replaces the NIK of an erased cadre; without it
	// nothing is erased and re-registration is not checked.
	NIKKey []byte
}

var _ knkv1.CadreServiceServer = (*Service)(nil)

var errNIKTaken = errors.New("nik taken")

// statusOf maps errors of this service to gRPC status.
func statusOf(name string, err error) error {
	if errors.Is(err, errNIKTaken) {
		return api.Error(codes.AlreadyExists, "NIK_REGISTERED",
			"a cadre with this NIK is already registered; if the person has joined your federation, ask for a transfer (POST /v1/cadres:requestTransfer)")
	}
	return api.StoreError(name, err)
}

// errNoSuchNIK is the one answer of LookupCadre for a NIK that is not registered
// and for one registered outside the caller's scope.
func errNoSuchNIK() error {
	return api.Error(codes.NotFound, "NOT_FOUND", "no cadre with this NIK is registered within the scope of your key")
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// CreateCadre registers one cadre.
func (s *Service) CreateCadre(ctx context.Context, req *knkv1.CreateCadreRequest) (*knkv1.Cadre, error) {
	p, _ := auth.FromContext(ctx)
	now := s.now()
	c, v := normalize(req.GetCadre(), now, s.MinAge)
	fed, err := s.federation(ctx, p, req.GetCadre().GetFederation(), &v)
	if err != nil {
		return nil, err
	}
	rid := req.GetRequestId()
	if len(rid) > 128 {
		v.Add("request_id", "must be at most 128 characters")
	}
	if err := prefixed("cadre.", v, "request_id").Err(); err != nil {
		return nil, err
	}
	if err := s.Guard.Wait(p); err != nil {
		return nil, err
	}
	c.Name = "cadres/" + ulid.Make().String()
	c.Federation = fed
	c.State = knkv1.Cadre_STATE_ACTIVE
	c.CreateTime, c.UpdateTime, c.Etag = timestamppb.New(now), timestamppb.New(now), "1"
	out := c
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		if rid != "" {
			first, err := tx.ClaimRequestID(ctx, p.Org, "CreateCadre", rid, c.Name, now)
			if err != nil || first != "" {
				if err == nil {
					out, err = get(ctx, tx, id(first))
				}
				return err
			}
		}
		ok, err := insert(ctx, tx, c, p.OrgName(), s.nikHash(c.Nik))
		if err != nil {
			return err
		}
		if !ok {
			return errNIKTaken
		}
		return nil
	})
	if errors.Is(err, errNIKTaken) {
		if err := s.Guard.Taken(p); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, statusOf(c.Name, err)
	}
	return present(p, out), nil
}

// federation resolves the enrolling federation of a new cadre: the caller itself
// for a federation, a registered federation named in the request for an admin.
// Bad input is added to v; a federation naming another is PERMISSION_DENIED.
func (s *Service) federation(ctx context.Context, p auth.Principal, requested string, v *api.Violations) (string, error) {
	requested = strings.TrimSpace(requested)
	if p.Kind == auth.Federation {
		if requested != "" && requested != p.OrgName() && requested != p.Org {
			return "", api.Denied("a federation registers only its own members: leave federation empty or set it to " + p.OrgName())
		}
		return p.OrgName(), nil
	}
	if requested == "" {
		v.Add("federation", "is required when an admin registers a cadre: organizations/{federation_id}")
		return "", nil
	}
	org, err := s.Orgs.Get(ctx, fedID(requested))
	if errors.Is(err, db.ErrNotFound) || (err == nil && org.Kind != auth.Federation) {
		v.Add("federation", "is not a registered federation")
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return org.Name, nil
}

// prefixed puts prefix before every field of v except those listed as top-level.
func prefixed(prefix string, v api.Violations, topLevel ...string) api.Violations {
	for _, fv := range v {
		if !slices.Contains(topLevel, fv.Field) {
			fv.Field = prefix + fv.Field
		}
	}
	return v
}

// present is the cadre as p may see it, by the disclosure table.
func present(p auth.Principal, c *knkv1.Cadre) *knkv1.Cadre {
	disclosure.Apply(c, disclosure.Of(p, c.Federation, ""))
	return c
}

func parseName(field, name string) (string, error) {
	cid, ok := strings.CutPrefix(name, "cadres/")
	if _, err := ulid.ParseStrict(cid); !ok || err != nil {
		return "", api.Invalid(field, "must be cadres/{cadre_id}")
	}
	return cid, nil
}

// Get returns a cadre with its NIK unmasked, for other services.
func (s *Service) Get(ctx context.Context, q db.Querier, name string) (*knkv1.Cadre, error) {
	cid, err := parseName("cadre", name)
	if err != nil {
		return nil, err
	}
	c, err := get(ctx, q, cid)
	return c, statusOf(name, s.DB.Translate(err))
}

// GetForUpdate returns a cadre with its NIK unmasked and locks it until tx ends,
// for other services whose rules depend on it.
func (s *Service) GetForUpdate(ctx context.Context, tx *db.Tx, name string) (*knkv1.Cadre, error) {
	cid, err := parseName("cadre", name)
	if err != nil {
		return nil, err
	}
	c, err := getForUpdate(ctx, tx, cid)
	return c, statusOf(name, tx.Translate(err))
}

// GetVisible returns the cadre name, unmasked, for other services acting for p:
// a cadre outside p's scope is NOT_FOUND exactly like one that does not exist.
func (s *Service) GetVisible(ctx context.Context, q db.Querier, p auth.Principal, name string) (*knkv1.Cadre, error) {
	cid, err := parseName("cadre", name)
	if err != nil {
		return nil, err
	}
	c, err := getVisible(ctx, q, p, "id", cid, "")
	return c, statusOf(name, s.DB.Translate(err))
}

// GetVisibleForUpdate is GetVisible in a write transaction; it locks the row
// until tx ends.
func (s *Service) GetVisibleForUpdate(ctx context.Context, tx *db.Tx, p auth.Principal, name string) (*knkv1.Cadre, error) {
	cid, err := parseName("cadre", name)
	if err != nil {
		return nil, err
	}
	c, err := getVisible(ctx, tx, p, "id", cid, tx.ForUpdate())
	return c, statusOf(name, tx.Translate(err))
}

// GetCadre returns one cadre in the caller's scope.
func (s *Service) GetCadre(ctx context.Context, req *knkv1.GetCadreRequest) (*knkv1.Cadre, error) {
	p, _ := auth.FromContext(ctx)
	c, err := s.GetVisible(ctx, s.DB, p, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.trail(ctx, "GetCadre", p, c); err != nil {
		return nil, err
	}
	return present(p, c), nil
}

// LookupCadre finds a cadre by NIK within the caller's scope. A NIK that is not
// registered and one registered outside the scope get the same NOT_FOUND from
// the same single query; every call spends one of the key's NIK checks.
func (s *Service) LookupCadre(ctx context.Context, req *knkv1.LookupCadreRequest) (*knkv1.Cadre, error) {
	p, _ := auth.FromContext(ctx)
	nik := idn.CleanNIK(req.GetNik())
	if _, err := idn.ParseNIK(nik, s.Now()); err != nil {
		return nil, api.Invalid("nik", err.Error())
	}
	if err := s.Guard.Spend(p); err != nil {
		return nil, err
	}
	c, err := getVisible(ctx, s.DB, p, "nik", nik, "")
	if err = s.DB.Translate(err); errors.Is(err, db.ErrNotFound) {
		s.Guard.Miss(ctx, p)
		return nil, errNoSuchNIK()
	}
	if err != nil {
		return nil, err
	}
	if err := s.trail(ctx, "LookupCadre", p, c); err != nil {
		return nil, err
	}
	return present(p, c), nil
}

// ListCadres lists the cadres in the caller's scope, oldest first.
func (s *Service) ListCadres(ctx context.Context, req *knkv1.ListCadresRequest) (*knkv1.ListCadresResponse, error) {
	p, _ := auth.FromContext(ctx)
	f := filter{province: req.GetProvinceCode(), federation: req.GetFederation(), state: req.GetState(), topic: req.GetTopicPassed()}
	var v api.Violations
	if f.province != "" && !idn.ValidProvince(f.province) {
		v.Add("province_code", "is not one of the 38 province codes")
	}
	if f.federation != "" && !strings.HasPrefix(f.federation, "organizations/") {
		f.federation = "organizations/" + f.federation
	}
	if _, ok := knkv1.Cadre_State_name[int32(f.state)]; !ok {
		v.Add("state", "is not a cadre state")
	}
	if _, ok := knkv1.Topic_name[int32(f.topic)]; !ok {
		v.Add("topic_passed", "is not a topic")
	}
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	switch {
	case p.Kind == auth.Federation && f.federation != "" && f.federation != p.OrgName():
		return nil, api.Denied("a federation lists only its own members")
	case p.Kind == auth.Federation:
		f.federation = p.OrgName()
	case p.Kind != auth.Admin && p.Province != "" && f.province != "" && f.province != p.Province:
		return nil, api.Denied("your key covers province " + p.Province + " only")
	case p.Kind != auth.Admin && p.Province != "":
		f.province = p.Province
	}
	if req.GetFederation() != "" && !disclosure.Visible("knk.v1.Cadre", "federation", disclosure.Of(p, f.federation, "")) {
		return nil, api.Denied("your key's role does not see cadres' federations, so it cannot list by federation")
	}
	after, err := api.DecodePageToken(req.GetPageToken(), f.province, f.federation, f.state, f.topic)
	if err != nil {
		return nil, err
	}
	cadres, err := list(ctx, s.DB, f, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListCadresResponse{Cadres: cadres}
	if len(cadres) > size {
		resp.Cadres = cadres[:size]
		resp.NextPageToken = api.EncodePageToken(id(cadres[size-1].Name), f.province, f.federation, f.state, f.topic)
	}
	if err := s.trailPage(ctx, "ListCadres", p, resp.Cadres); err != nil {
		return nil, err
	}
	for _, c := range resp.Cadres {
		present(p, c)
	}
	return resp, nil
}

// UpdateCadre changes the registration fields named in update_mask.
func (s *Service) UpdateCadre(ctx context.Context, req *knkv1.UpdateCadreRequest) (*knkv1.Cadre, error) {
	p, _ := auth.FromContext(ctx)
	name := req.GetCadre().GetName()
	cid, err := parseName("cadre.name", name)
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = populated(req.GetCadre())
	}
	var v api.Violations
	for _, path := range paths {
		if !updatable[path] {
			v.Add("update_mask", fmt.Sprintf("%q cannot be updated; updatable fields are display_name, phone, email, "+
				"province_code, regency, employer, employer.name, employer.nib, union_member_number, bpjs_kpj", path))
		}
	}
	if len(paths) == 0 {
		v.Add("update_mask", "names no field to update")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	var out *knkv1.Cadre
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		cur, err := s.writable(ctx, tx, p, cid, req.GetCadre().GetEtag())
		if err != nil {
			return err
		}
		out, err = applyUpdate(ctx, tx, p, cur, req.GetCadre(), paths, now)
		return err
	})
	if err != nil {
		return nil, statusOf(name, err)
	}
	return present(p, out), nil
}

// applyUpdate writes the fields paths of src over cur (locked in tx), moves the
// forum membership with the province, and records the event.
func applyUpdate(ctx context.Context, tx *db.Tx, p auth.Principal, cur, src *knkv1.Cadre, paths []string,
	now time.Time) (*knkv1.Cadre, error) {
	next := proto.Clone(cur).(*knkv1.Cadre)
	applyMask(next, src, paths)
	norm, v := normalize(next, now, 0) // the minimum age applies at registration only
	if err := prefixed("cadre.", v).Err(); err != nil {
		return nil, err
	}
	next.DisplayName, next.Phone, next.Email = norm.DisplayName, norm.Phone, norm.Email
	next.ProvinceCode, next.Regency, next.Employer = norm.ProvinceCode, norm.Regency, norm.Employer
	next.UnionMemberNumber, next.BpjsKpj = norm.UnionMemberNumber, norm.BpjsKpj
	if next.ProvinceCode != cur.ProvinceCode {
		var err error
		if next.Forum, err = forum.Move(ctx, tx, id(cur.Name), next.ProvinceCode, p.OrgName(), now); err != nil {
			return nil, err
		}
	}
	ok, err := update(ctx, tx, next, now)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, api.StaleEtag(cur.Name)
	}
	return next, tx.Event(ctx, "cadre.updated", cur.Name, p.OrgName(), now)
}

// writable loads a cadre for a change by p: in p's scope, with a matching etag
// if one is given, and not withdrawn.
func (s *Service) writable(ctx context.Context, tx *db.Tx, p auth.Principal, cid, etag string) (*knkv1.Cadre, error) {
	cur, err := getVisible(ctx, tx, p, "id", cid, tx.ForUpdate())
	if err != nil {
		return nil, tx.Translate(err)
	}
	if etag != "" && etag != cur.Etag {
		return nil, api.StaleEtag(cur.Name)
	}
	if cur.State == knkv1.Cadre_STATE_WITHDRAWN {
		return nil, api.Error(codes.FailedPrecondition, "CADRE_WITHDRAWN", cur.Name+" is withdrawn and can no longer change")
	}
	return cur, nil
}

// WithdrawCadre withdraws a cadre from the programme.
func (s *Service) WithdrawCadre(ctx context.Context, req *knkv1.WithdrawCadreRequest) (*knkv1.Cadre, error) {
	p, _ := auth.FromContext(ctx)
	cid, err := parseName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	reason, err := api.Reason(req.GetReason())
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out *knkv1.Cadre
	err = s.DB.Write(ctx, func(tx *db.Tx) error {
		cur, err := s.writable(ctx, tx, p, cid, req.GetEtag())
		if err != nil {
			return err
		}
		cur.State, cur.WithdrawReason, cur.Forum = knkv1.Cadre_STATE_WITHDRAWN, reason, ""
		if _, _, err := forum.Leave(ctx, tx, cid, knkv1.ForumMembership_END_REASON_WITHDRAWN, p.OrgName(), now); err != nil {
			return err
		}
		if err := markWithdrawn(ctx, tx, cid, now); err != nil {
			return err
		}
		ok, err := update(ctx, tx, cur, now)
		if err := api.Updated(cur.Name, ok, err); err != nil {
			return err
		}
		out = cur
		return tx.Event(ctx, "cadre.withdrawn", cur.Name, p.OrgName(), now)
	})
	if err != nil {
		return nil, statusOf(req.GetName(), err)
	}
	return present(p, out), nil
}

type outcome int

const (
	created outcome = iota
	unchanged
	otherFederation
	changed
	updated
	withdrawn
)

type pending struct {
	row    int64
	cadre  *knkv1.Cadre
	update bool // apply the row's values to a cadre registered with other data
}

// RejectionsPerMessage is the most details (rejections and warnings) one
// ImportCadresResponse holds.
const RejectionsPerMessage = 1000

// ImportCadres registers a roster streamed row by row. Rows are written in
// batches, each batch in one transaction, while the next batch is being received
// and checked; bad rows are rejected with their row number, and a row whose NIK is
// already registered with the same data by the same federation counts as
// unchanged, so a re-run creates nothing twice.
func (s *Service) ImportCadres(stream knkv1.CadreService_ImportCadresServer) error {
	ctx := stream.Context()
	p, _ := auth.FromContext(ctx)
	if err := s.Guard.Wait(p); err != nil {
		return err
	}
	batchSize := s.ImportBatch
	if batchSize <= 0 {
		batchSize = 1000
	}
	var (
		resp     = &knkv1.ImportCadresResponse{}
		batch    = make([]pending, 0, batchSize)
		feds     = map[string]string{} // requested federation -> resolved name, "" if invalid
		done     = make(chan written, 1)
		inFlight bool
	)
	// send answers the details (rejections and warnings) gathered so far with the
	// running counts. A full message goes out at once, so that none holds more
	// than RejectionsPerMessage details and the server never holds more than one
	// message. Send blocks while the client does not read (flow control), which
	// pauses the import.
	send := func(done bool) error {
		byRow := func(a, b *knkv1.ImportRejection) int { return cmp.Compare(a.Row, b.Row) }
		slices.SortStableFunc(resp.Rejections, byRow)
		slices.SortStableFunc(resp.Warnings, byRow)
		resp.Done = done
		if err := stream.Send(resp); err != nil {
			return err
		}
		resp = &knkv1.ImportCadresResponse{Created: resp.Created, Unchanged: resp.Unchanged, Rejected: resp.Rejected,
			Warned: resp.Warned, Changed: resp.Changed, Updated: resp.Updated}
		return nil
	}
	// note adds details to the answer, sending it each time it is full.
	note := func(warn bool, details ...*knkv1.ImportRejection) error {
		for _, d := range details {
			if warn {
				resp.Warnings = append(resp.Warnings, d)
			} else {
				resp.Rejections = append(resp.Rejections, d)
			}
			if len(resp.Rejections)+len(resp.Warnings) >= RejectionsPerMessage {
				if err := send(false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	reject := func(row int64, field, reason string) error {
		resp.Rejected++
		return note(false, &knkv1.ImportRejection{Row: row, Field: field, Reason: reason})
	}
	// problems lists every bad field of a row, with its value as received.
	problems := func(row int64, in *knkv1.Cadre, v api.Violations) []*knkv1.ImportRejection {
		out := make([]*knkv1.ImportRejection, len(v))
		for i, fv := range v {
			value := field(in, fv.Field)
			if fv.Field == "nik" {
				value = idn.LastFour(value)
			}
			out[i] = &knkv1.ImportRejection{Row: row, Field: fv.Field, Reason: fv.Description, Value: value}
		}
		return out
	}
	// settle waits for the batch being written, if any, and counts its outcomes.
	settle := func() error {
		if !inFlight {
			return nil
		}
		w := <-done
		inFlight = false
		if w.err != nil {
			return w.err
		}
		countImported(w.outcomes)
		for i, o := range w.outcomes {
			var err error
			switch o {
			case created:
				resp.Created++
			case unchanged:
				resp.Unchanged++
			case otherFederation:
				if err := s.Guard.Taken(p); err != nil {
					return err
				}
				err = reject(w.batch[i].row, "nik", "this NIK is already registered with another federation: ask for a transfer (knkctl transfers request)")
			case changed:
				resp.Changed++
			case updated:
				resp.Updated++
			case withdrawn:
				err = reject(w.batch[i].row, "nik", "this NIK belongs to a cadre withdrawn from the programme; its data can no longer change")
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	flush := func() error {
		if err := settle(); err != nil || len(batch) == 0 {
			return err
		}
		b := batch
		batch, inFlight = make([]pending, 0, batchSize), true
		go func() {
			outcomes, err := s.writeBatch(ctx, p, b)
			done <- written{batch: b, outcomes: outcomes, err: err}
		}()
		return nil
	}
	for row := int64(1); ; row++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cmp.Or(settle(), err)
		}
		now := s.now()
		c, v, warnings := lenient(req.GetCadre(), now, s.MinAge)
		requested := req.GetCadre().GetFederation()
		fed, seen := feds[requested]
		if !seen {
			var fv api.Violations
			fed, err = s.federation(ctx, p, requested, &fv)
			if err != nil && status.Code(err) != codes.PermissionDenied {
				return cmp.Or(settle(), err)
			}
			feds[requested] = fed
		}
		if fed == "" {
			v.Add("federation", "is not a registered federation, or not yours to import into")
		}
		if len(v) > 0 {
			resp.Rejected++
			if err := note(false, problems(row, req.GetCadre(), v)...); err != nil {
				return cmp.Or(settle(), err)
			}
			continue
		}
		if len(warnings) > 0 {
			resp.Warned++
			if err := note(true, problems(row, req.GetCadre(), warnings)...); err != nil {
				return cmp.Or(settle(), err)
			}
		}
		c.Name = "cadres/" + ulid.Make().String()
		c.Federation = fed
		c.CreateTime, c.UpdateTime = timestamppb.New(now), timestamppb.New(now)
		batch = append(batch, pending{row: row, cadre: c, update: req.GetUpdate()})
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := settle(); err != nil {
		return err
	}
	metrics.ImportRows.WithLabelValues("rejected").Add(float64(resp.Rejected))
	return send(true)
}

// written is the result of writing one import batch.
type written struct {
	batch    []pending
	outcomes []outcome
	err      error
}

// writeBatch inserts a batch of checked rows as a bulk job (in transactions that
// let single writes through) and tells, for each, whether it was created or why not.
func (s *Service) writeBatch(ctx context.Context, p auth.Principal, batch []pending) ([]outcome, error) {
	outcomes := make([]outcome, len(batch))
	err := s.DB.WriteBulk(ctx, len(batch), func(tx *db.Tx, lo, hi int) error {
		cadres, hashes := make([]*knkv1.Cadre, 0, hi-lo), make([]string, 0, hi-lo)
		for _, b := range batch[lo:hi] {
			cadres, hashes = append(cadres, b.cadre), append(hashes, s.nikHash(b.cadre.Nik))
		}
		stored, err := insertMany(ctx, tx, cadres, hashes, p.OrgName())
		if err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			b := batch[i]
			if stored[i-lo] {
				outcomes[i] = created
				continue
			}
			prev, err := getByNIK(ctx, tx, b.cadre.Nik)
			if err != nil {
				return err
			}
			switch {
			case prev.Federation != b.cadre.Federation:
				outcomes[i] = otherFederation
			case !differs(prev, b.cadre):
				outcomes[i] = unchanged
			case prev.State == knkv1.Cadre_STATE_WITHDRAWN:
				outcomes[i] = withdrawn
			case !b.update:
				outcomes[i] = changed
			default:
				cur, err := getForUpdate(ctx, tx, id(prev.Name))
				if err != nil {
					return err
				}
				if _, err := applyUpdate(ctx, tx, p, cur, b.cadre, given(b.cadre), b.cadre.UpdateTime.AsTime()); err != nil {
					return err
				}
				outcomes[i] = updated
			}
		}
		return nil
	})
	return outcomes, err
}

// DisplayNames maps cadre names (cadres/{id}) to the cadres' display names, for
// other services' lists of people (enrolments, forum members). The caller has
// already limited the list to cadres it may read.
func (s *Service) DisplayNames(ctx context.Context, names []string) (map[string]string, error) {
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = id(n)
	}
	byID, err := displayNames(ctx, s.DB, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(byID))
	for i, n := range names {
		out[n] = byID[ids[i]]
	}
	return out, nil
}

// CreditTopics adds passed topics (bit sets by cadre name) to cadres in tx. A
// withdrawn cadre is not credited.
func (s *Service) CreditTopics(ctx context.Context, tx *db.Tx, credits map[string]int64, now time.Time) error {
	for name, bits := range credits {
		_, err := tx.ExecContext(ctx, `UPDATE cadres SET passed_topics = passed_topics | ?, update_time = ?,
			version = version + 1 WHERE id = ? AND state <> ?`,
			bits, now.UnixMicro(), id(name), int32(knkv1.Cadre_STATE_WITHDRAWN))
		if err != nil {
			return err
		}
	}
	return nil
}

// SetCertificate records in tx that the cadre (as read in tx) holds certificate
// and is a member of forumName, or, with both empty, that it no longer does.
// The cadre's state follows: CERTIFIED while it holds one, ACTIVE after, and a
// withdrawn cadre stays withdrawn.
func (s *Service) SetCertificate(ctx context.Context, tx *db.Tx, c *knkv1.Cadre, certificate, forumName string, now time.Time) error {
	c.Certificate, c.Forum = certificate, forumName
	switch {
	case c.State == knkv1.Cadre_STATE_WITHDRAWN:
	case certificate != "":
		c.State = knkv1.Cadre_STATE_CERTIFIED
	default:
		c.State = knkv1.Cadre_STATE_ACTIVE
	}
	ok, err := update(ctx, tx, c, now)
	if err == nil && !ok {
		err = fmt.Errorf("%s changed within its own transaction", c.Name)
	}
	return err
}

// ProvinceCount is the registry's coverage in one province.
type ProvinceCount struct {
	Cadres, Certified int64
	TopicPasses       map[string]int64 // by topic name
}

// CountByProvince counts cadres, certified cadres and topic passes per province.
func (s *Service) CountByProvince(ctx context.Context) (map[string]*ProvinceCount, error) {
	query := `SELECT province_code, COUNT(*), SUM(CASE WHEN state = ? THEN 1 ELSE 0 END)`
	args := []any{int32(knkv1.Cadre_STATE_CERTIFIED)}
	all := topic.List(topic.All)
	for _, t := range all {
		query += `, SUM(CASE WHEN (passed_topics & ?) <> 0 THEN 1 ELSE 0 END)`
		args = append(args, int64(1)<<t)
	}
	rows, err := s.DB.QueryContext(ctx, query+` FROM cadres GROUP BY province_code`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*ProvinceCount{}
	for rows.Next() {
		var (
			province string
			pc       = &ProvinceCount{TopicPasses: map[string]int64{}}
			passes   = make([]int64, len(all))
			dest     = []any{&province, &pc.Cadres, &pc.Certified}
		)
		for i := range passes {
			dest = append(dest, &passes[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		for i, t := range all {
			pc.TopicPasses[t.String()] = passes[i]
		}
		out[province] = pc
	}
	return out, rows.Err()
}
