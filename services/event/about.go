package event

import (
	"context"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

// About returns every event about the named resources, in sequence order (for
// a data-subject export). It reads the whole change log: it is meant for rare
// requests, not for a hot path.
func (s *Service) About(ctx context.Context, resources []string) ([]*knkv1.Event, error) {
	if len(resources) == 0 {
		return nil, nil
	}
	args := make([]any, len(resources))
	for i, r := range resources {
		args[i] = r
	}
	return db.All(ctx, s.DB, scan, `SELECT sequence, type, resource, actor, create_time FROM events WHERE resource IN (?`+
		strings.Repeat(", ?", len(resources)-1)+`) ORDER BY sequence`, args...)
}
