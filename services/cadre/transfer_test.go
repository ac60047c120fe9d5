package cadre_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// A NIK registered with another federation is ALREADY_EXISTS without a word
// about whom; a transfer request is the way forward, and the requester learns
// neither the cadre nor its federation until the current one approves.
func TestTransferRequest(t *testing.T) {
	t.Parallel()
	w := setup(t)
	third := w.Org(t, "kspi", knkv1.Organization_KIND_FEDERATION, "")
	c := w.create(t, w.fed, newCadre(1))

	_, err := w.Cadres.CreateCadre(testenv.Ctx(w.otherFed), &knkv1.CreateCadreRequest{Cadre: newCadre(1)})
	if status.Code(err) != codes.AlreadyExists || strings.Contains(err.Error(), "ksbsi") || strings.Contains(err.Error(), c.Name) {
		t.Errorf("create of a NIK registered elsewhere: %v; want ALREADY_EXISTS naming nobody", err)
	}

	// Over REST, the NIK in the body.
	r := w.REST(t, http.MethodPost, "/v1/cadres:requestTransfer", w.otherFed, map[string]string{"nik": nik(1)})
	if r.Status != http.StatusOK || r.Body["state"] != "STATE_PENDING" || r.Body["to_federation"] != "organizations/kspsi" {
		t.Fatalf("request: %d %s", r.Status, r.Raw)
	}
	if r.Body["cadre"] != "" || r.Body["from_federation"] != "" || strings.Contains(string(r.Raw), "ksbsi") {
		t.Errorf("the requester learns the cadre or its federation: %s", r.Raw)
	}
	name := r.Body["name"].(string)
	if strings.Contains(r.Header.Get("Location")+name, nik(1)) {
		t.Errorf("the NIK appears in the request's name: %s", name)
	}
	rivalReq, err := w.Cadres.RequestTransfer(testenv.Ctx(third), &knkv1.RequestTransferRequest{Nik: nik(1)})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		what, key, nik string
		want           codes.Code
	}{
		{"the same request again", w.otherFed, nik(1), codes.AlreadyExists},
		{"a NIK nobody registered", w.otherFed, nik(2), codes.NotFound},
		{"its own cadre", w.fed, nik(1), codes.FailedPrecondition},
		{"a malformed NIK", w.otherFed, "123", codes.InvalidArgument},
		{"a training unit", w.provincial, nik(1), codes.PermissionDenied},
		{"an inspectorate", w.inspector, nik(1), codes.PermissionDenied},
	} {
		_, err := w.Cadres.RequestTransfer(testenv.Ctx(tc.key), &knkv1.RequestTransferRequest{Nik: tc.nik})
		if status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.nik) && tc.nik != "123" {
			t.Errorf("%s: the answer quotes the NIK: %v", tc.what, err)
		}
	}

	// The current federation sees both requests, with the cadre and the requester.
	pending, err := w.Cadres.ListTransferRequests(testenv.Ctx(w.fed), &knkv1.ListTransferRequestsRequest{State: knkv1.TransferRequest_STATE_PENDING})
	if err != nil || len(pending.TransferRequests) != 2 {
		t.Fatalf("pending for ksbsi: %v %v", pending, err)
	}
	for _, p := range pending.TransferRequests {
		if p.Cadre != c.Name || p.FromFederation != "organizations/ksbsi" {
			t.Errorf("the federation asked sees %v", p)
		}
	}
	// Each requester sees its own request only, without the cadre.
	mine, err := w.Cadres.ListTransferRequests(testenv.Ctx(third), &knkv1.ListTransferRequestsRequest{})
	if err != nil || len(mine.TransferRequests) != 1 || mine.TransferRequests[0].Cadre != "" || mine.TransferRequests[0].FromFederation != "" {
		t.Errorf("the rival requester lists %v (%v)", mine, err)
	}

	// Only the current federation or admin approves; a stranger sees nothing.
	if _, err := w.Cadres.ApproveTransfer(testenv.Ctx(w.otherFed), &knkv1.ApproveTransferRequest{Name: name}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the requester approving its own request: %v", err)
	}
	stranger := w.Org(t, "sarbumusi", knkv1.Organization_KIND_FEDERATION, "")
	if _, err := w.Cadres.ApproveTransfer(testenv.Ctx(stranger), &knkv1.ApproveTransferRequest{Name: name}); status.Code(err) != codes.NotFound {
		t.Errorf("an unrelated federation approving: %v", err)
	}
	approved, err := w.Cadres.ApproveTransfer(testenv.Ctx(w.fed), &knkv1.ApproveTransferRequest{Name: name})
	if err != nil || approved.State != knkv1.TransferRequest_STATE_APPROVED || approved.DecideTime == nil {
		t.Fatalf("approve: %v %v", approved, err)
	}
	if _, err := w.Cadres.ApproveTransfer(testenv.Ctx(w.AdminKey), &knkv1.ApproveTransferRequest{Name: name}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("approving twice: %v", err)
	}

	// The cadre is the new federation's now, with its NIK; the old one no longer reads it.
	got, err := w.Cadres.GetCadre(testenv.Ctx(w.otherFed), &knkv1.GetCadreRequest{Name: c.Name})
	if err != nil || got.Federation != "organizations/kspsi" || got.Nik != nik(1) {
		t.Errorf("the new federation reads %v (%v)", got, err)
	}
	if _, err := w.Cadres.GetCadre(testenv.Ctx(w.fed), &knkv1.GetCadreRequest{Name: c.Name}); status.Code(err) != codes.NotFound {
		t.Errorf("the old federation still reads the cadre: %v", err)
	}
	after, err := w.Cadres.ListTransferRequests(testenv.Ctx(w.otherFed), &knkv1.ListTransferRequestsRequest{})
	if err != nil || len(after.TransferRequests) != 1 || after.TransferRequests[0].Cadre != "" {
		t.Errorf("after approval the requester lists %v (%v)", after, err)
	}
	rival, err := w.Cadres.ListTransferRequests(testenv.Ctx(third), &knkv1.ListTransferRequestsRequest{})
	if err != nil || len(rival.TransferRequests) != 1 || rival.TransferRequests[0].Name != rivalReq.Name ||
		rival.TransferRequests[0].State != knkv1.TransferRequest_STATE_REJECTED {
		t.Errorf("the rival request after the transfer: %v (%v)", rival, err)
	}

	events, err := w.Events.ListEvents(testenv.Ctx(w.AdminKey), &knkv1.ListEventsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events.Events {
		if e.Resource == c.Name || strings.HasPrefix(e.Resource, "transferRequests/") {
			types = append(types, e.Type)
		}
	}
	want := "cadre.created transfer.requested transfer.requested cadre.transferred transfer.rejected transfer.approved"
	if strings.Join(types, " ") != want {
		t.Errorf("events %v, want %s", types, want)
	}

	// A requester may withdraw its request; a reason is required.
	w.create(t, w.fed, newCadre(3))
	req, err := w.Cadres.RequestTransfer(testenv.Ctx(w.otherFed), &knkv1.RequestTransferRequest{Nik: nik(3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cadres.RejectTransfer(testenv.Ctx(w.otherFed), &knkv1.RejectTransferRequest{Name: req.Name}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("reject without a reason: %v", err)
	}
	if out, err := w.Cadres.RejectTransfer(testenv.Ctx(w.otherFed), &knkv1.RejectTransferRequest{Name: req.Name, Reason: "salah orang"}); err != nil ||
		out.State != knkv1.TransferRequest_STATE_REJECTED || out.RejectReason != "salah orang" {
		t.Errorf("withdraw: %v %v", out, err)
	}
}

// A list filter on a field the caller does not see would tell the field: an
// inspectorate (which does not see cadres' federations) cannot list by federation.
func TestFilterOnAHiddenFieldIsRefused(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(t, w.fed, newCadre(1))
	_, err := w.Cadres.ListCadres(testenv.Ctx(w.inspector), &knkv1.ListCadresRequest{Federation: "organizations/ksbsi"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("inspectorate listing by federation: %v, want PERMISSION_DENIED", err)
	}
	list, err := w.Cadres.ListCadres(testenv.Ctx(w.provincial), &knkv1.ListCadresRequest{Federation: "organizations/ksbsi"})
	if err != nil || len(list.Cadres) != 1 || list.Cadres[0].Federation != "organizations/ksbsi" {
		t.Errorf("a unit (which sees federations) listing by federation: %v %v", list, err)
	}
}
