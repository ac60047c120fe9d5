package server_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/testenv"
)

// The two attacks of issue 10, run against a real knkd with its default limits.
// Each fails the test if the attacker gets further than chance.

// attackNIK is a valid NIK of DKI Jakarta (31), Jakarta Timur (71), with the
// district, birth date, gender and serial given.
func attackNIK(district int, birth time.Time, female bool, serial int) string {
	day := birth.Day()
	if female {
		day += 40
	}
	return fmt.Sprintf("3171%02d%02d%02d%02d%04d", district, day, int(birth.Month()), birth.Year()%100, serial)
}

// attackWorld registers n cadres of province 31 with random districts (01–10),
// birth dates (1960–1999), genders and serials, from a fixed seed.
func attackWorld(t *testing.T, n int) (*testenv.Env, map[string]string) {
	t.Helper()
	e := testenv.Start(t) // default limits: 120 NIK checks a minute per key
	fed := e.Org(t, "ksbsi", knkv1.Organization_KIND_FEDERATION, "")
	rng := rand.New(rand.NewPCG(10, 2026))
	niks := map[string]string{} // full NIK -> cadre name
	for len(niks) < n {
		birth := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(40*365))
		nik := attackNIK(1+rng.IntN(10), birth, rng.IntN(2) == 1, 1+rng.IntN(9999))
		if _, dup := niks[nik]; dup {
			continue
		}
		c, err := e.Cadres.CreateCadre(testenv.Ctx(fed), &knkv1.CreateCadreRequest{Cadre: &knkv1.Cadre{
			DisplayName: fmt.Sprintf("Anggota %d", len(niks)), Nik: nik, ProvinceCode: "31", Regency: "Jakarta Timur",
			Phone: "0812-3456-7890", Employer: &knkv1.Employer{Name: "PT Maju Jaya"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		niks[nik] = c.Name
	}
	return e, niks
}

// TestAttackNIKReconstruction repeats the first attack: a key that may read a
// province's cadres lists them and, from the masked NIK and every other field it
// is shown, guesses full NIKs and confirms them with LookupCadre, for ten
// minutes of the server's time, waiting out the rate limit as it goes. It may not
// confirm more NIKs than blind guessing would in the same number of lookups (the
// search space when digits 5–12 — district, birth date, gender — are unknown).
func TestAttackNIKReconstruction(t *testing.T) {
	t.Parallel()
	e, niks := attackWorld(t, 50)
	const (
		districts = 10
		days      = 40 * 365 // the birth dates an attacker must try: 1960–1999
		window    = 10 * time.Minute
	)
	for _, attacker := range []struct{ name, key string }{
		{"inspectorate of the province", e.Org(t, "pengawas-dki", knkv1.Organization_KIND_INSPECTORATE, "31")},
		{"central training unit", e.Org(t, "kemnaker", knkv1.Organization_KIND_TRAINING_UNIT, "")},
	} {
		ctx := testenv.Ctx(attacker.key)
		list, err := e.Cadres.ListCadres(ctx, &knkv1.ListCadresRequest{ProvinceCode: "31", PageSize: 1000})
		if err != nil || len(list.Cadres) != len(niks) {
			t.Fatalf("%s lists %d cadres (%v)", attacker.name, len(list.GetCadres()), err)
		}
		start := e.Clock.Now()
		var answered, confirmed int
		leaks := map[string]int{}
	targets:
		for _, c := range list.Cadres {
			// Use everything the answer gives: a birth date or gender narrows the search.
			births := []time.Time{}
			if b, err := time.Parse(time.DateOnly, c.BirthDate); err == nil {
				births = append(births, b)
				leaks["birth_date"]++
			} else {
				for d := range days {
					births = append(births, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d))
				}
			}
			genders := []bool{false, true}
			if c.Gender != knkv1.Cadre_GENDER_UNSPECIFIED {
				genders = []bool{c.Gender == knkv1.Cadre_GENDER_FEMALE}
				leaks["gender"]++
			}
			var serial int
			if _, err := fmt.Sscanf(c.Nik[len(c.Nik)-4:], "%04d", &serial); err != nil || len(c.Nik) != 16 {
				t.Fatalf("%s: NIK shown as %q", attacker.name, c.Nik)
			}
			if shown := slices.IndexFunc([]byte(c.Nik[:12]), func(b byte) bool { return b != '*' }); shown >= 0 {
				leaks["nik digits 1-12"]++
			}
			for _, b := range births {
				for _, female := range genders {
					for district := 1; district <= districts; district++ {
						guess := attackNIK(district, b, female, serial)
						for {
							if e.Clock.Now().Sub(start) >= window {
								break targets
							}
							found, err := e.Cadres.LookupCadre(ctx, &knkv1.LookupCadreRequest{Nik: guess})
							if status.Code(err) == codes.ResourceExhausted {
								e.Clock.Advance(retryInfo(t, err))
								continue
							}
							answered++
							if err == nil {
								confirmed++
								if found.Name != niks[guess] {
									t.Fatalf("%s: lookup of a guess answered another cadre", attacker.name)
								}
								continue targets
							}
							if status.Code(err) != codes.NotFound {
								t.Fatalf("%s: lookup: %v", attacker.name, err)
							}
							break
						}
					}
				}
			}
		}
		// Blind guessing: each lookup hits one of the province's NIKs with
		// probability targets / space. Allow three standard deviations above that.
		space := float64(districts * days * 2)
		expected := float64(answered) * float64(len(niks)) / space
		allowed := int(math.Floor(expected + 3*math.Sqrt(expected)))
		budget := 120 + int(window.Minutes())*120
		t.Logf("%s: %d lookups answered in %v of server time, %d NIKs confirmed (chance: %.2f, allowed %d); fields that narrowed the search: %v",
			attacker.name, answered, window, confirmed, expected, allowed, leaks)
		if confirmed > allowed {
			t.Errorf("%s rebuilt %d full NIKs with %d lookups; blind guessing would find %.2f", attacker.name, confirmed, answered, expected)
		}
		if answered > budget {
			t.Errorf("%s got %d lookups answered in %v; the limit allows %d", attacker.name, answered, window, budget)
		}
		if len(leaks) > 0 {
			t.Errorf("%s was shown %v", attacker.name, leaks)
		}
	}
}

func retryInfo(t *testing.T, err error) time.Duration {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("RESOURCE_EXHAUSTED without a RetryInfo: %v", err)
	return 0
}

// TestAttackLookupOracle repeats the second attack: keys with no rights over
// province 31 look up NIKs registered there and NIKs registered nowhere, and try
// to tell them apart by the answer (code, message, details — over gRPC and over
// REST) and by its time. The answers must be identical, and a timing classifier
// trained on half the answers must do no better than chance on the other half.
func TestAttackLookupOracle(t *testing.T) {
	t.Parallel()
	e, niks := attackWorld(t, 50)
	registered := make([]string, 0, len(niks))
	for nik := range niks {
		registered = append(registered, nik)
	}
	sort.Strings(registered)
	rng := rand.New(rand.NewPCG(7, 31))
	var unregistered []string
	for len(unregistered) < len(registered) {
		nik := attackNIK(11+rng.IntN(20), time.Date(1961+rng.IntN(38), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC), rng.IntN(2) == 1, 1+rng.IntN(9999))
		if _, taken := niks[nik]; !taken {
			unregistered = append(unregistered, nik)
		}
	}
	type sample struct {
		registered bool
		took       time.Duration
	}
	var samples []sample
	answers := map[string]int{}
	for _, attacker := range []struct{ id string }{{"pengawas-jabar"}, {"kspsi"}, {"disnaker-jabar"}} {
		kind := map[string]knkv1.Organization_Kind{"pengawas-jabar": knkv1.Organization_KIND_INSPECTORATE,
			"kspsi": knkv1.Organization_KIND_FEDERATION, "disnaker-jabar": knkv1.Organization_KIND_TRAINING_UNIT}[attacker.id]
		province := map[bool]string{true: "32"}[kind != knkv1.Organization_KIND_FEDERATION]
		key := e.Org(t, attacker.id, kind, province)
		ctx := testenv.Ctx(key)
		order := rng.Perm(2 * len(registered))
		for _, i := range order[:100] { // within the key's burst of 120
			nik, reg := unregistered[i%len(registered)], false
			if i >= len(registered) {
				nik, reg = registered[i-len(registered)], true
			}
			began := time.Now()
			_, err := e.Cadres.LookupCadre(ctx, &knkv1.LookupCadreRequest{Nik: nik})
			samples = append(samples, sample{reg, time.Since(began)})
			st := status.Convert(err)
			details, _ := proto.Marshal(st.Proto())
			answers[fmt.Sprintf("grpc %v %x", st.Code(), details)]++
		}
		// Over REST the bodies are the same too (two of each, from the budget left).
		for _, nik := range []string{registered[0], unregistered[0], registered[1], unregistered[1]} {
			r := e.REST(t, http.MethodPost, "/v1/cadres:lookup", key, map[string]string{"nik": nik})
			answers[fmt.Sprintf("rest %d %s", r.Status, r.Raw)]++
		}
	}
	if len(answers) != 2 {
		t.Errorf("registered and unregistered NIKs get different answers: %v", answers)
	}
	for a := range answers {
		if !strings.HasPrefix(a, "grpc NotFound ") && !strings.HasPrefix(a, "rest 404 ") {
			t.Errorf("answer %s, want NOT_FOUND", a)
		}
	}
	// A timing classifier: the threshold halfway between the two medians of the
	// first half, judged on the second half.
	half := len(samples) / 2
	median := func(reg bool, s []sample) time.Duration {
		var d []time.Duration
		for _, x := range s {
			if x.registered == reg {
				d = append(d, x.took)
			}
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	mr, mu := median(true, samples[:half]), median(false, samples[:half])
	threshold := (mr + mu) / 2
	right := 0
	for _, x := range samples[half:] {
		if (x.took > threshold) == (mr > mu) == x.registered {
			right++
		}
	}
	n := len(samples) - half
	accuracy := float64(right) / float64(n)
	bound := 0.5 + 3*math.Sqrt(0.25/float64(n))
	t.Logf("timing: medians registered %v, unregistered %v; classifier right %d of %d (%.2f, chance bound %.2f)", mr, mu, right, n, accuracy, bound)
	if accuracy > bound {
		t.Errorf("the time of a lookup tells registered from unregistered NIKs: %.2f right (chance bound %.2f)", accuracy, bound)
	}
	// The rest of the oracle is the rate limit: the 121st lookup of a key waits.
	key := e.Org(t, "sarbumusi", knkv1.Organization_KIND_FEDERATION, "")
	var limited error
	for i := range 121 {
		_, err := e.Cadres.LookupCadre(testenv.Ctx(key), &knkv1.LookupCadreRequest{Nik: unregistered[i%len(unregistered)]})
		if status.Code(err) == codes.ResourceExhausted {
			limited = err
			break
		}
	}
	if limited == nil {
		t.Fatal("121 lookups in no time from one key were all answered")
	}
	retryInfo(t, limited)
}
