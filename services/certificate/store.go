package certificate

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/api"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/services/cadre"
)

// scope is the condition over the certificates table that keeps those p may
// read: certificates of cadres in p's scope and, for a training unit, those it
// issued.
func scope(p auth.Principal) (string, []any) {
	cond, args := cadre.ScopeSQL(p, "cadre_id")
	if p.Kind == auth.TrainingUnit && cond != "1 = 1" {
		return "(" + cond + " OR issuer = ?)", append(args, p.OrgName())
	}
	return cond, args
}

// getVisible reads the certificate name if p may read it. One outside p's scope
// is NOT_FOUND exactly like one that does not exist, from the same query.
func getVisible(ctx context.Context, q db.Querier, p auth.Principal, name string) (*knkv1.Certificate, error) {
	n, ok := strings.CutPrefix(name, "certificates/")
	if !ok || n == "" {
		return nil, api.Invalid("name", "must be certificates/{number}, e.g. certificates/KNK-31-2026-000001")
	}
	cond, args := scope(p)
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM certificates WHERE number = ? AND `+cond,
		append([]any{n}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound(name)
	}
	return c, err
}
