package cadre_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/auth"
	"github.com/knk-id/knk/internal/db/dbtest"
	"github.com/knk-id/knk/internal/testenv"
	"github.com/knk-id/knk/services/cadre"
)

// retryDelay returns the RetryInfo delay of a RESOURCE_EXHAUSTED error.
func retryDelay(t *testing.T, err error) time.Duration {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("got %v, want RESOURCE_EXHAUSTED", err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("RESOURCE_EXHAUSTED without RetryInfo: %v", err)
	return 0
}

// unregistered is the i-th NIK nobody registers in these tests.
func unregistered(i int) string { return fmt.Sprintf("3271%02d150890%04d", 1+i/9999, 1+i%9999) }

func TestLookupsAreLimitedPerKeyAndMissesLogged(t *testing.T) {
	t.Parallel()
	const budget = 12
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { c.NIKChecksPerMinute = budget })
	prober := e.Org(t, "pengawas-jabar", knkv1.Organization_KIND_INSPECTORATE, "32")
	other := e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31")
	for i := range budget {
		_, err := e.Cadres.LookupCadre(testenv.Ctx(prober), &knkv1.LookupCadreRequest{Nik: unregistered(i)})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("lookup %d: %v", i, err)
		}
	}
	_, err := e.Cadres.LookupCadre(testenv.Ctx(prober), &knkv1.LookupCadreRequest{Nik: unregistered(budget)})
	if d := retryDelay(t, err); d <= 0 || d > time.Minute {
		t.Errorf("retry delay %v", d)
	}
	if _, err := e.Cadres.LookupCadre(testenv.Ctx(other), &knkv1.LookupCadreRequest{Nik: unregistered(0)}); status.Code(err) != codes.NotFound {
		t.Errorf("another key is limited too: %v", err)
	}
	keyID, _ := auth.KeyID(prober)
	logs := e.Logs()
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, `"key_id":"`+keyID+`"`) {
		t.Errorf("no warning naming key %s after a burst of misses:\n%s", keyID, logs)
	}
	for i := range budget + 1 {
		if strings.Contains(logs, unregistered(i)) || strings.Contains(logs, unregistered(i)[4:]) {
			t.Fatalf("the log holds a NIK:\n%s", logs)
		}
	}
	e.Clock.Advance(time.Minute)
	if _, err := e.Cadres.LookupCadre(testenv.Ctx(prober), &knkv1.LookupCadreRequest{Nik: unregistered(0)}); status.Code(err) != codes.NotFound {
		t.Errorf("a minute later: %v", err)
	}
}

// Creates and import rows that find a NIK registered spend the same budget; once
// it is empty, every create of the key waits, so that a create that succeeds
// cannot tell that a NIK was free either.
func TestAlreadyExistsSpendsTheSameBudget(t *testing.T) {
	t.Parallel()
	const budget = 10
	e := testenv.StartWith(t, dbtest.DSN(t, dbtest.Engine()), func(c *testenv.Config) { c.NIKChecksPerMinute = budget })
	owner := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	prober := e.Org(t, "kspsi", knkv1.Organization_KIND_FEDERATION, "")
	for i := range 2 * budget {
		if _, err := e.Cadres.CreateCadre(testenv.Ctx(owner), &knkv1.CreateCadreRequest{Cadre: newCadre(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Half the budget through creates, half through an import.
	for i := range budget / 2 {
		if _, err := e.Cadres.CreateCadre(testenv.Ctx(prober), &knkv1.CreateCadreRequest{Cadre: newCadre(i)}); status.Code(err) != codes.AlreadyExists {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	stream, err := e.Cadres.ImportCadres(testenv.Ctx(prober))
	if err != nil {
		t.Fatal(err)
	}
	for i := budget / 2; i < 2*budget; i++ {
		if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(i)}); err != nil {
			break
		}
	}
	_, err = cadre.CloseImport(stream)
	retryDelay(t, err)
	// Blocked: a free NIK waits too, and so do lookups and transfer requests.
	_, err = e.Cadres.CreateCadre(testenv.Ctx(prober), &knkv1.CreateCadreRequest{Cadre: newCadre(9000)})
	retryDelay(t, err)
	_, err = e.Cadres.LookupCadre(testenv.Ctx(prober), &knkv1.LookupCadreRequest{Nik: nik(9001)})
	retryDelay(t, err)
	_, err = e.Cadres.RequestTransfer(testenv.Ctx(prober), &knkv1.RequestTransferRequest{Nik: nik(1)})
	retryDelay(t, err)
	// The owner's own creates are not affected.
	if _, err := e.Cadres.CreateCadre(testenv.Ctx(owner), &knkv1.CreateCadreRequest{Cadre: newCadre(9002)}); err != nil {
		t.Errorf("another key: %v", err)
	}
	e.Clock.Advance(time.Minute)
	if _, err := e.Cadres.CreateCadre(testenv.Ctx(prober), &knkv1.CreateCadreRequest{Cadre: newCadre(9000)}); err != nil {
		t.Errorf("a minute later: %v", err)
	}
	// Rows of the federation's own cadres (a re-run of its import) spend nothing.
	stream, err = e.Cadres.ImportCadres(testenv.Ctx(owner))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * budget {
		if err := stream.Send(&knkv1.ImportCadresRequest{Cadre: newCadre(i % (2 * budget))}); err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := cadre.CloseImport(stream); err != nil || resp.Unchanged != 3*budget {
		t.Errorf("re-run of the owner's import: %v %v", resp, err)
	}
}
