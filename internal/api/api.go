// Package api holds what every service shares at the API edge: precise
// INVALID_ARGUMENT errors with BadRequest field violations, the status of store
// errors, and opaque keyset page tokens (AIP-158).
package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/knk-id/knk/internal/db"
	"github.com/knk-id/knk/internal/text"
)

// Domain is the ErrorInfo domain of every error of this API.
const Domain = "knk"

// Violations collects bad fields of one request, so that one INVALID_ARGUMENT
// lists every problem at once.
type Violations []*errdetails.BadRequest_FieldViolation

// Add records that field is bad for reason.
func (v *Violations) Add(field, reason string) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: reason})
}

// Err is nil when nothing was added, otherwise INVALID_ARGUMENT with a BadRequest.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	msg := fmt.Sprintf("invalid %s: %s", v[0].Field, v[0].Description)
	if len(v) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(v)-1)
	}
	return withDetails(codes.InvalidArgument, msg, &errdetails.BadRequest{FieldViolations: v})
}

// Invalid is INVALID_ARGUMENT for one field.
func Invalid(field, reason string) error {
	var v Violations
	v.Add(field, reason)
	return v.Err()
}

// Reason checks the free-text reason of a state change (withdrawal, cancellation,
// revocation) with text.Reason: required, at most 500 characters, no control,
// bidirectional or zero-width characters; it returns it trimmed and NFC.
func Reason(reason string) (string, error) {
	var v Violations
	out := v.Text("reason", reason, text.Reason)
	return out, v.Err()
}

// Error returns a status with an ErrorInfo naming reason (UPPER_SNAKE_CASE).
func Error(code codes.Code, reason, msg string) error {
	return withDetails(code, msg, &errdetails.ErrorInfo{Reason: reason, Domain: Domain})
}

// NotFound is NOT_FOUND for the resource name.
func NotFound(name string) error {
	return withDetails(codes.NotFound, name+" not found",
		&errdetails.ErrorInfo{Reason: "NOT_FOUND", Domain: Domain, Metadata: map[string]string{"resource": name}})
}

// Denied is PERMISSION_DENIED: the caller's key does not cover what it asked for.
func Denied(msg string) error {
	return Error(codes.PermissionDenied, "OUT_OF_SCOPE", msg)
}

// StaleEtag is ABORTED for an update whose etag no longer matches.
func StaleEtag(name string) error {
	return Error(codes.Aborted, "STALE_ETAG", name+" was changed by someone else: read it again and retry with the new etag")
}

// Updated is the error of a conditional update of name that reported whether it
// matched (ok) and failed with err: err itself when there is one (a real database
// or cancellation error is never hidden behind a status), ABORTED when the etag
// no longer matched, nil otherwise.
func Updated(name string, ok bool, err error) error {
	switch {
	case err != nil:
		return err
	case !ok:
		return StaleEtag(name)
	}
	return nil
}

// StoreError maps a store error about the resource name to a status: ErrNotFound
// to NOT_FOUND, ErrConflict to ALREADY_EXISTS, status errors unchanged, anything
// else unchanged too (the recovery interceptor turns it into INTERNAL).
func StoreError(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, db.ErrNotFound):
		return NotFound(name)
	case errors.Is(err, db.ErrConflict):
		return Error(codes.AlreadyExists, "ALREADY_EXISTS", name+" already exists")
	}
	return err
}

func withDetails(code codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		return status.Error(code, msg)
	}
	return st.Err()
}

// Page sizes (AIP-158).
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// PageSize validates and defaults a requested page size.
func PageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, Invalid("page_size", "must not be negative")
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(n), nil
}

type pageToken struct {
	Key    string `json:"k"`
	Filter string `json:"f"`
}

// EncodePageToken returns an opaque token for the page after lastKey, bound to the
// filter that produced it.
func EncodePageToken(lastKey string, filter ...any) string {
	b, _ := json.Marshal(pageToken{Key: lastKey, Filter: filterSum(filter)})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodePageToken returns the key after which the next page starts ("" for the
// first page). A token that is malformed or was made with another filter is
// INVALID_ARGUMENT.
func DecodePageToken(token string, filter ...any) (string, error) {
	if token == "" {
		return "", nil
	}
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Key == "" {
		return "", Invalid("page_token", "is not a token this API returned")
	}
	if t.Filter != filterSum(filter) {
		return "", Invalid("page_token", "was returned for a different filter: repeat the same filter or start without a token")
	}
	return t.Key, nil
}

func filterSum(filter []any) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%v", filter))
	return base64.RawURLEncoding.EncodeToString(h[:8])
}
