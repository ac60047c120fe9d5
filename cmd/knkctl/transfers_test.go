package main

import (
	"encoding/json"
	"strings"
	"testing"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// A federation asks for a member registered elsewhere with the NIK on stdin (never
// on the command line); the current federation lists, approves, and the cadre moves.
func TestTransfersRequestListApprove(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	old := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	next := e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, "")
	c, err := e.Cadres.CreateCadre(testenv.Ctx(old), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
		DisplayName: "Siti Rahayu", Nik: e2eNIK(1), ProvinceCode: "31"}})
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--addr", e.Server.GRPCAddr(), "--key-file", testKeyFile(t, next), "transfers", "request"}
	out, stderr, err := e2eRun(t, e2eNIK(1)+"\n", args...)
	if err != nil {
		t.Fatalf("transfers request: %v\n%s", err, stderr)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(out), &req); err != nil || req["state"] != "STATE_PENDING" {
		t.Fatalf("transfers request printed %q (%v)", out, err)
	}
	if strings.Contains(out, "ksbsi") || strings.Contains(out, c.Name) || strings.Contains(out+stderr, e2eNIK(1)) {
		t.Errorf("the requester is told the cadre, its federation or the NIK: %s %s", out, stderr)
	}
	out, _ = e2eCtl(t, e, old, "transfers", "list", "--state", "pending")
	if !strings.Contains(out, req["name"].(string)) || !strings.Contains(out, c.Name) {
		t.Errorf("the current federation lists %s", out)
	}
	id := strings.TrimPrefix(req["name"].(string), "transferRequests/")
	out, _ = e2eCtl(t, e, old, "transfers", "approve", id)
	if !strings.Contains(out, "STATE_APPROVED") {
		t.Errorf("approve printed %s", out)
	}
	got, err := e.Cadres.GetCadre(testenv.Ctx(next), &knkv1.GetCadreRequest{Name: c.Name})
	if err != nil || got.Federation != "organizations/kspsi" {
		t.Errorf("after approval: %v %v", got, err)
	}
	if _, _, err := e2eRun(t, "", append(args[:4], "transfers", "reject", id)...); err == nil {
		t.Error("reject without --reason was accepted")
	}
}
