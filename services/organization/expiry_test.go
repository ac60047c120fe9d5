package organization_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// expired asserts err is the refusal of an expired key, over gRPC.
func expired(t *testing.T, what string, err error) {
	t.Helper()
	if info := errorInfo(err); status.Code(err) != codes.Unauthenticated || info.GetReason() != "KEY_EXPIRED" ||
		!strings.Contains(status.Convert(err).Message(), "expired at") {
		t.Errorf("%s: %v (%v), want UNAUTHENTICATED saying the key expired", what, err, info)
	}
}

func TestApiKeyExpiry(t *testing.T) {
	t.Parallel()
	w := setup(t)
	now := w.Clock.Now()
	for _, bad := range []*timestamppb.Timestamp{timestamppb.New(now), timestamppb.New(now.Add(-time.Hour)), {Seconds: -1 << 60}} {
		_, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi",
			ApiKey: &knkv1.ApiKey{ExpireTime: bad}})
		if f := violations(t, err); !slices.Equal(f, []string{"api_key.expire_time"}) {
			t.Errorf("expire_time %v: fields %v", bad, f)
		}
	}
	at := now.Add(time.Hour)
	key, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi",
		ApiKey: &knkv1.ApiKey{ExpireTime: timestamppb.New(at)}})
	if err != nil || !key.ExpireTime.AsTime().Equal(at) {
		t.Fatalf("create with expiry: %v %v", key, err)
	}
	listed, err := w.Orgs.ListApiKeys(admin(w), &knkv1.ListApiKeysRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range listed.ApiKeys {
		if k.Name == key.Name && !k.ExpireTime.AsTime().Equal(at) {
			t.Errorf("listed with expire_time %v, want %v", k.ExpireTime, at)
		}
	}
	if err := works(w, key.Secret); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	w.Clock.Advance(time.Hour - time.Microsecond)
	if err := works(w, key.Secret); err != nil {
		t.Fatalf("a microsecond before expiry: %v", err)
	}
	w.Clock.Advance(time.Microsecond)
	expired(t, "at the expiry time", works(w, key.Secret))
	r := w.REST(t, http.MethodGet, "/v1/cadres", key.Secret, nil)
	if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Raw), "expired at "+at.Format(time.RFC3339)) {
		t.Errorf("expired key over REST: %d %s", r.Status, r.Raw)
	}
	if err := works(w, w.fed); err != nil {
		t.Errorf("a key without expiry: %v", err)
	}
}

func TestRotateApiKeyKeepsTheOldOneForTheGracePeriod(t *testing.T) {
	t.Parallel()
	w := setup(t)
	old, err := w.Orgs.CreateApiKey(admin(w), &knkv1.CreateApiKeyRequest{Parent: "organizations/ksbsi"})
	if err != nil {
		t.Fatal(err)
	}
	if err := works(w, old.Secret); err != nil { // cached on SQLite from here on
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		req   *knkv1.RotateApiKeyRequest
		code  codes.Code
		field string
	}{
		{"negative grace", &knkv1.RotateApiKeyRequest{Name: old.Name, GracePeriod: durationpb.New(-time.Second)}, codes.InvalidArgument, "grace_period"},
		{"grace over 30 days", &knkv1.RotateApiKeyRequest{Name: old.Name, GracePeriod: durationpb.New(721 * time.Hour)}, codes.InvalidArgument, "grace_period"},
		{"expiry in the past", &knkv1.RotateApiKeyRequest{Name: old.Name, ExpireTime: timestamppb.New(w.Clock.Now())}, codes.InvalidArgument, "expire_time"},
		{"bad name", &knkv1.RotateApiKeyRequest{Name: "keys/x"}, codes.InvalidArgument, "name"},
		{"another organization's key", &knkv1.RotateApiKeyRequest{Name: strings.Replace(old.Name, "ksbsi", "disnaker-dki", 1)}, codes.NotFound, ""},
	} {
		_, err := w.Orgs.RotateApiKey(admin(w), tt.req)
		if status.Code(err) != tt.code || (tt.field != "" && !slices.Contains(violations(t, err), tt.field)) {
			t.Errorf("%s: %v, want %s on %q", tt.name, err, tt.code, tt.field)
		}
	}
	if _, err := w.Orgs.RotateApiKey(testenv.Ctx(w.fed), &knkv1.RotateApiKeyRequest{Name: old.Name}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a federation rotates its own key: %v, want PERMISSION_DENIED", err)
	}

	fresh, err := w.Orgs.RotateApiKey(admin(w), &knkv1.RotateApiKeyRequest{Name: old.Name, GracePeriod: durationpb.New(24 * time.Hour)})
	if err != nil || fresh.Secret == "" || fresh.Name == old.Name || !strings.HasPrefix(fresh.Name, "organizations/ksbsi/keys/") {
		t.Fatalf("rotate: %v %v", fresh, err)
	}
	for _, key := range []string{old.Secret, fresh.Secret} {
		if err := works(w, key); err != nil {
			t.Errorf("right after rotation: %v", err)
		}
	}
	w.Clock.Advance(24*time.Hour - time.Second)
	if err := works(w, old.Secret); err != nil {
		t.Errorf("old key within the grace period: %v", err)
	}
	w.Clock.Advance(time.Second)
	expired(t, "old key after the grace period", works(w, old.Secret))
	if err := works(w, fresh.Secret); err != nil {
		t.Errorf("new key after the grace period: %v", err)
	}
	if _, err := w.Orgs.RotateApiKey(admin(w), &knkv1.RotateApiKeyRequest{Name: old.Name}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("rotating an expired key: %v, want FAILED_PRECONDITION", err)
	}

	// Without a grace period the old key stops at once.
	next, err := w.Orgs.RotateApiKey(admin(w), &knkv1.RotateApiKeyRequest{Name: fresh.Name})
	if err != nil {
		t.Fatal(err)
	}
	expired(t, "old key rotated with no grace", works(w, fresh.Secret))
	if err := works(w, next.Secret); err != nil {
		t.Errorf("the newest key: %v", err)
	}
}
