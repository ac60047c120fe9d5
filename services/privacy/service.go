// Package privacy implements PrivacyService — the access trail of a cadre and the
// data-subject export — and the sweep that enforces the retention settings:
// access-log entries older than AccessLogRetention are deleted, and withdrawn
// cadres are erased EraseAfter their withdrawal.
package privacy

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/access"
	"github.com/knk-id/knk/services/cadre"
	"github.com/knk-id/knk/services/certificate"
	"github.com/knk-id/knk/services/event"
	"github.com/knk-id/knk/services/forum"
	"github.com/knk-id/knk/services/training"
)

// Defaults of the retention settings.
const (
	DefaultAccessLogRetention = 2 * 365 * 24 * time.Hour
	DefaultEraseAfter         = 5 * 365 * 24 * time.Hour
)

// Service implements knkv1.PrivacyServiceServer.
type Service struct {
	knkv1.UnimplementedPrivacyServiceServer
	DB       *db.DB
	Cadres   *cadre.Service
	Training *training.Service
	Certs    *certificate.Service
	Events   *event.Service
	Access   *access.Log
	Now      func() time.Time
	// AccessLogRetention is how long access-log entries are kept.
	AccessLogRetention time.Duration
	// EraseAfter is how long after withdrawal a cadre's personal fields are kept.
	EraseAfter time.Duration
}

var _ knkv1.PrivacyServiceServer = (*Service)(nil)

// subject returns the cadre (unmasked) if p may see its trail: admin, or the
// federation that enrolled it. Any other caller gets the same NOT_FOUND as for a
// cadre that does not exist.
func (s *Service) subject(ctx context.Context, name string) (*knkv1.Cadre, error) {
	p, _ := auth.FromContext(ctx)
	c, err := s.Cadres.Get(ctx, s.DB, name)
	if err != nil {
		return nil, err
	}
	if p.Kind != auth.Admin && c.Federation != p.OrgName() {
		return nil, api.NotFound(name)
	}
	return c, nil
}

// ListAccessLog lists the reads of a cadre's personal data, oldest first.
func (s *Service) ListAccessLog(ctx context.Context, req *knkv1.ListAccessLogRequest) (*knkv1.ListAccessLogResponse, error) {
	size, err := api.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	c, err := s.subject(ctx, req.GetCadre())
	if err != nil {
		return nil, err
	}
	after, err := api.DecodePageToken(req.GetPageToken(), c.Name)
	if err != nil {
		return nil, err
	}
	if err := s.Access.Sync(ctx); err != nil { // every read answered before this one is listed
		return nil, err
	}
	entries, err := access.List(ctx, s.DB, c.Name, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &knkv1.ListAccessLogResponse{Entries: entries}
	if len(entries) > size {
		resp.Entries = entries[:size]
		resp.NextPageToken = api.EncodePageToken(entries[size-1].Id, c.Name)
	}
	return resp, nil
}

// ExportCadre returns everything held about a cadre and its access trail. The
// export is recorded in the trail first, so the document shows it too.
func (s *Service) ExportCadre(ctx context.Context, req *knkv1.ExportCadreRequest) (*knkv1.CadreExport, error) {
	c, err := s.subject(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.Access.Record(ctx, "ExportCadre", access.Full, c.Name); err != nil {
		return nil, err
	}
	if err := s.Access.Sync(ctx); err != nil { // the trail below includes this export
		return nil, err
	}
	out := &knkv1.CadreExport{ExportTime: timestamppb.New(s.Now().UTC()), Cadre: c}
	if out.Enrollments, err = s.Training.ForCadre(ctx, c.Name); err != nil {
		return nil, err
	}
	if out.Certificates, err = s.Certs.ForCadre(ctx, c.Name); err != nil {
		return nil, err
	}
	if out.Memberships, err = forum.ForCadre(ctx, s.DB, c.Name); err != nil {
		return nil, err
	}
	about := []string{c.Name}
	for _, e := range out.Enrollments {
		e.CadreDisplayName = c.DisplayName
		about = append(about, e.Name)
	}
	for _, x := range out.Certificates {
		about = append(about, x.Name)
	}
	for _, m := range out.Memberships {
		m.CadreDisplayName = c.DisplayName
		about = append(about, m.Name)
	}
	if out.Events, err = s.Events.About(ctx, about); err != nil {
		return nil, err
	}
	if out.AccessLog, err = access.List(ctx, s.DB, c.Name, "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// Swept is what one sweep did.
type Swept struct {
	AccessEntries int64 // access-log entries deleted
	Erased        int   // withdrawn cadres erased
}

// sweepBatch bounds the rows one sweep transaction deletes or erases, so that
// the sweep never holds the single writer long.
const (
	accessBatch = 5000
	eraseBatch  = 100
)

// Sweep enforces the retention settings once: access-log entries older than
// AccessLogRetention are deleted, and cadres withdrawn more than EraseAfter ago
// are erased (cadre.Service.Erase, certificate.Service.EraseHolder), each with a
// cadre.erased event. Without a NIK hash key nothing is erased.
func (s *Service) Sweep(ctx context.Context) (Swept, error) {
	var out Swept
	now := s.Now().UTC().Truncate(time.Microsecond)
	for {
		var n int64
		err := s.DB.Write(ctx, func(tx *db.Tx) error {
			var err error
			n, err = access.DeleteBefore(ctx, tx, now.Add(-s.AccessLogRetention), accessBatch)
			return err
		})
		if err != nil {
			return out, err
		}
		if out.AccessEntries += n; n == 0 {
			break
		}
	}
	if len(s.Cadres.NIKKey) == 0 {
		return out, nil
	}
	for {
		due, err := s.Cadres.Erasable(ctx, now.Add(-s.EraseAfter), eraseBatch)
		if err != nil || len(due) == 0 {
			return out, err
		}
		err = s.DB.Write(ctx, func(tx *db.Tx) error {
			for _, name := range due {
				if err := s.Certs.EraseHolder(ctx, tx, name, now); err != nil {
					return err
				}
				ok, err := s.Cadres.Erase(ctx, tx, name, now)
				if err != nil {
					return err
				}
				if ok {
					out.Erased++
				}
			}
			return nil
		})
		if err != nil {
			return out, err
		}
	}
}

// RunSweep sweeps every interval until ctx is done.
func (s *Service) RunSweep(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			log.Error("retention sweep failed", "cause", err.Error())
		} else if n.AccessEntries > 0 || n.Erased > 0 {
			log.Info("retention sweep", "access_log_deleted", n.AccessEntries, "cadres_erased", n.Erased)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
