package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// readResults parses a whole results file; each row is a result (with the NIK, if
// any, for the command to resolve) or a rejection.
func readResults(t *testing.T, in string) ([]resultRow, error) {
	t.Helper()
	rr, err := newResultsReader(strings.NewReader(in))
	if err != nil {
		return nil, err
	}
	var out []resultRow
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if r.Row != len(out)+1 {
			t.Fatalf("row = %d, want %d", r.Row, len(out)+1)
		}
		if (r.Result == nil) == (r.Rej == nil) {
			t.Fatalf("row %d: result = %v, rejection = %v; want exactly one", r.Row, r.Result, r.Rej)
		}
		out = append(out, r)
	}
}

func res(cadre string, attended bool, scores map[string]int32) resultRow {
	return resultRow{Result: &knkv1.SessionResult{Cadre: cadre, Attended: attended, Scores: scores}}
}

func resNIK(nik string, attended bool, scores map[string]int32) resultRow {
	r := res("", attended, scores)
	r.NIK = nik
	return r
}

func resRej(row int64, field, reason string) resultRow {
	return resultRow{Rej: rej(row, field, reason)}
}

const scoreReason = "score must be a whole number from 0 to 100"

func TestResultsReader(t *testing.T) {
	const c1, c2 = "01JD0000000000000000000001", "01JD0000000000000000000002"
	tests := []struct {
		name    string
		in      string
		want    []resultRow
		wantErr string
	}{{
		name: "cadre ids and names, all topics",
		in:   "cadre,attended,k3,pkwt,wage_scale,social_security\n" + c1 + ",true,85,70,0,100\ncadres/" + c2 + ",false,,,,\n",
		want: []resultRow{
			res("cadres/"+c1, true, map[string]int32{"TOPIC_K3": 85, "TOPIC_PKWT": 70, "TOPIC_WAGE_SCALE": 0, "TOPIC_SOCIAL_SECURITY": 100}),
			res("cadres/"+c2, false, nil),
		},
	}, {
		name: "header variants: case, order, spacing, hyphens and enum names",
		in:   " Attended ,K3, Wage-Scale ,TOPIC_SOCIAL_SECURITY,CADRE\n yes , 90 ,65,,cadres/" + c1 + "\n",
		want: []resultRow{res("cadres/"+c1, true, map[string]int32{"TOPIC_K3": 90, "TOPIC_WAGE_SCALE": 65})},
	}, {
		name: "nik column: the NIK is kept for the command, no cadre",
		in:   "NIK,attended,pkwt\n" + nik + ",ya,77\n",
		want: []resultRow{resNIK(nik, true, map[string]int32{"TOPIC_PKWT": 77})},
	}, {
		name: "BOM and CRLF",
		in:   "\uFEFFcadre,attended,k3\r\n" + c1 + ",1,80\r\n" + c2 + ",0,\r\n",
		want: []resultRow{
			res("cadres/"+c1, true, map[string]int32{"TOPIC_K3": 80}),
			res("cadres/"+c2, false, nil),
		},
	}, {
		name: "attended words",
		in:   "cadre,attended\na,TRUE\nb,Yes\nc,ya\nd,1\ne,false\nf,NO\ng,Tidak\nh,0\n",
		want: []resultRow{
			res("cadres/a", true, nil), res("cadres/b", true, nil), res("cadres/c", true, nil), res("cadres/d", true, nil),
			res("cadres/e", false, nil), res("cadres/f", false, nil), res("cadres/g", false, nil), res("cadres/h", false, nil),
		},
	}, {
		name: "bad attended is a rejection, next row still read",
		in:   "cadre,attended\na,hadir\nb,\nc,yes\n",
		want: []resultRow{
			resRej(1, "attended", attendedHelp),
			resRej(2, "attended", attendedHelp),
			res("cadres/c", true, nil),
		},
	}, {
		name: "scores out of range or not integers",
		in:   "cadre,attended,k3,pkwt\na,yes,101,\nb,yes,-1,\nc,yes,7a,\nd,yes,50,85.0\ne,yes,+5,\nf,yes,99999999999999999999999,\ng,yes,0100,\nh,yes,100,0\n",
		want: []resultRow{
			resRej(1, "k3", scoreReason),
			resRej(2, "k3", scoreReason),
			resRej(3, "k3", scoreReason),
			resRej(4, "pkwt", scoreReason),
			resRej(5, "k3", scoreReason),
			resRej(6, "k3", scoreReason),
			res("cadres/g", true, map[string]int32{"TOPIC_K3": 100}), // leading zeros are fine
			res("cadres/h", true, map[string]int32{"TOPIC_K3": 100, "TOPIC_PKWT": 0}),
		},
	}, {
		name: "empty score cells mean no score",
		in:   "cadre,attended,k3,pkwt,wage_scale\na,yes,, ,\"\"\n",
		want: []resultRow{res("cadres/a", true, nil)},
	}, {
		name: "bad cadre and NIK cells",
		in:   "cadre,attended\n,yes\ncadres/,yes\nsessions/x,yes\na b,yes\n",
		want: []resultRow{
			resRej(1, "cadre", "must be a cadre id (01J…) or cadres/ID"),
			resRej(2, "cadre", "must be a cadre id (01J…) or cadres/ID"),
			resRej(3, "cadre", "must be a cadre id (01J…) or cadres/ID"),
			resRej(4, "cadre", "must be a cadre id (01J…) or cadres/ID"),
		},
	}, {
		name: "bad NIKs",
		in:   "nik,attended\n,yes\n123,yes\n617101120390000X,yes\n" + nik + "0,yes\n",
		want: []resultRow{
			resRej(1, "nik", "must be a NIK of exactly 16 digits"),
			resRej(2, "nik", "must be a NIK of exactly 16 digits"),
			resRej(3, "nik", "must be a NIK of exactly 16 digits"),
			resRej(4, "nik", "must be a NIK of exactly 16 digits"),
		},
	}, {
		name: "short, long and malformed rows; blank lines skipped",
		in:   "cadre,attended,k3\na,yes\n\nb,yes,1,2\nc \"d\",yes,1\n\r\ne,no,3\n",
		want: []resultRow{
			resRej(1, "", "row has 2 cells, the header has 3"),
			resRej(2, "", "row has 4 cells, the header has 3"),
			resRej(3, "", `malformed CSV at line 5, column 3: bare " in non-quoted-field`),
			res("cadres/e", false, map[string]int32{"TOPIC_K3": 3}),
		},
	}, {
		name: "invalid UTF-8 and overlong cells",
		in:   "cadre,attended\na\xff,yes\n" + strings.Repeat("a", maxCell+1) + ",yes\n",
		want: []resultRow{
			resRej(1, "cadre", "not valid UTF-8 (save the file as CSV UTF-8)"),
			resRej(2, "cadre", "longer than 4096 bytes"),
		},
	}, {
		name: "header only",
		in:   "cadre,attended\n",
	}, {
		name:    "both cadre and nik",
		in:      "cadre,nik,attended\n",
		wantErr: "either a cadre or a nik column, not both",
	}, {
		name:    "neither cadre nor nik",
		in:      "attended,k3\n",
		wantErr: "a cadre column (cadres/ID or ID) or a nik column is required",
	}, {
		name:    "attended missing",
		in:      "cadre,k3\n",
		wantErr: "missing required column attended",
	}, {
		name:    "unknown column",
		in:      "cadre,attended,nilai,topic_x\n",
		wantErr: `unknown column(s) "nilai", "topic_x"`,
	}, {
		name:    "repeated column, also through another spelling",
		in:      "cadre,attended,wage_scale,TOPIC_WAGE_SCALE\n",
		wantErr: "repeated column(s) wage_scale",
	}, {
		name:    "empty file",
		in:      "",
		wantErr: "header row is required",
	}, {
		name:    "BOM only",
		in:      "\uFEFF",
		wantErr: "header row is required",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readResults(t, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %v", len(got), len(tt.want), got)
			}
			for i, g := range got {
				w := tt.want[i]
				if g.NIK != w.NIK || !proto.Equal(g.Result, w.Result) || !proto.Equal(g.Rej, w.Rej) {
					t.Errorf("row %d:\n got %q %s %s\nwant %q %s %s", i+1,
						g.NIK, prototext.Format(g.Result), prototext.Format(g.Rej),
						w.NIK, prototext.Format(w.Result), prototext.Format(w.Rej))
				}
			}
		})
	}
}

func TestResultsRejectionsNeverQuoteCells(t *testing.T) {
	got, err := readResults(t, "cadre,attended,k3\na,"+nik+",1\nb,yes,"+nik+"\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Rej == nil || strings.Contains(r.Rej.Reason, nik) {
			t.Errorf("row %d: %v; want a rejection that does not quote the cell", r.Row, r.Rej)
		}
	}
}

func TestResultsParseEnum(t *testing.T) {
	for in, want := range map[string]knkv1.Topic{
		"k3": knkv1.Topic_TOPIC_K3, "K3": knkv1.Topic_TOPIC_K3, "wage-scale": knkv1.Topic_TOPIC_WAGE_SCALE,
		"wage_scale": knkv1.Topic_TOPIC_WAGE_SCALE, "TOPIC_SOCIAL_SECURITY": knkv1.Topic_TOPIC_SOCIAL_SECURITY,
		"topic_pkwt": knkv1.Topic_TOPIC_PKWT, " social-security ": knkv1.Topic_TOPIC_SOCIAL_SECURITY,
	} {
		if got, err := parseEnum("topic", in, topics, knkv1.Topic_value); err != nil || got != want {
			t.Errorf("parseEnum(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "TOPIC_UNSPECIFIED", "k4", "0", "1"} {
		_, err := parseEnum("topic", in, topics, knkv1.Topic_value)
		const list = "--topic must be one of k3, pkwt, social-security, wage-scale (or TOPIC_K3, TOPIC_PKWT, TOPIC_WAGE_SCALE, TOPIC_SOCIAL_SECURITY)"
		if err == nil || !strings.HasPrefix(err.Error(), list) {
			t.Errorf("parseEnum(%q) err = %v, want it to list the words", in, err)
		}
	}
	if m, err := parseEnum("mode", "in_person", sessionModes, knkv1.Session_Mode_value); err != nil || m != knkv1.Session_MODE_IN_PERSON {
		t.Errorf("mode in_person = %v, %v", m, err)
	}
	if s, err := parseEnum("state", "STATE_CANCELLED", sessionStates, knkv1.Session_State_value); err != nil || s != knkv1.Session_STATE_CANCELLED {
		t.Errorf("state STATE_CANCELLED = %v, %v", s, err)
	}
}

func TestResultsEnrollmentName(t *testing.T) {
	for _, tc := range [][3]string{
		{"S1", "C1", "sessions/S1/enrollments/C1"},
		{"sessions/S1", "cadres/C1", "sessions/S1/enrollments/C1"},
	} {
		if got := enrollmentName(tc[0], tc[1]); got != tc[2] {
			t.Errorf("enrollmentName(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func badRequest(t *testing.T, fields ...string) error {
	t.Helper()
	br := &errdetails.BadRequest{}
	for _, f := range fields {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f, Description: "bad " + f})
	}
	st, err := status.New(codes.InvalidArgument, "invalid").WithDetails(br)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestResultsRefused(t *testing.T) {
	err := badRequest(t, "results[2].cadre", "results[0].scores[TOPIC_WAGE_SCALE]", "results[2].scores[TOPIC_K3]",
		"results[9].cadre", "results[-1].cadre", "name", "results[1]")
	got := refusedResults(err, 5, "nik")
	want := map[int]refusal{
		0: {"wage_scale", "bad results[0].scores[TOPIC_WAGE_SCALE]"},
		1: {"", "bad results[1]"},
		2: {"nik", "bad results[2].cadre"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("refusedResults = %v, want %v", got, want)
	}
	if got := refusedResults(status.Error(codes.FailedPrecondition, "completed"), 5, "cadre"); len(got) != 0 {
		t.Errorf("FAILED_PRECONDITION gave %v", got)
	}
	if got := refusedResults(badRequest(t, "name"), 5, "cadre"); len(got) != 0 {
		t.Errorf("a violation of no result gave %v", got)
	}
}

// fakeTraining answers GetSession, LookupCadre and RecordResults like knkd would:
// a call naming a cadre that is not enrolled is refused as a whole.
type fakeTraining struct {
	knkv1.UnimplementedTrainingServiceServer
	knkv1.UnimplementedCadreServiceServer
	session  *knkv1.Session
	enrolled map[string]bool
	niks     map[string]string // NIK → cadre name

	mu       sync.Mutex
	calls    []int                           // results per RecordResults call, refused ones included
	recorded map[string]*knkv1.SessionResult // cadre → last result
	lookups  int
}

func (f *fakeTraining) GetSession(_ context.Context, req *knkv1.GetSessionRequest) (*knkv1.Session, error) {
	if req.GetName() != f.session.GetName() {
		return nil, status.Error(codes.NotFound, req.GetName()+" not found")
	}
	return f.session, nil
}

func (f *fakeTraining) LookupCadre(_ context.Context, req *knkv1.LookupCadreRequest) (*knkv1.Cadre, error) {
	f.mu.Lock()
	f.lookups++
	f.mu.Unlock()
	if name, ok := f.niks[req.GetNik()]; ok {
		return &knkv1.Cadre{Name: name}, nil
	}
	return nil, status.Error(codes.NotFound, "no cadre is registered with this NIK")
}

func (f *fakeTraining) RecordResults(_ context.Context, req *knkv1.RecordResultsRequest) (*knkv1.RecordResultsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, len(req.GetResults()))
	if len(req.GetResults()) > maxResultsBatch {
		return nil, status.Error(codes.InvalidArgument, "too many results")
	}
	br := &errdetails.BadRequest{}
	for i, r := range req.GetResults() {
		if !f.enrolled[r.GetCadre()] {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: fmt.Sprintf("results[%d].cadre", i), Description: "is not enrolled in " + f.session.GetName()})
		}
	}
	if len(br.FieldViolations) > 0 {
		st, _ := status.New(codes.InvalidArgument, "invalid").WithDetails(br)
		return nil, st.Err()
	}
	for _, r := range req.GetResults() {
		f.recorded[r.GetCadre()] = r
	}
	return &knkv1.RecordResultsResponse{}, nil
}

func startFake(t *testing.T, f *fakeTraining) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	knkv1.RegisterTrainingServiceServer(srv, f)
	knkv1.RegisterCadreServiceServer(srv, f)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestResultsImportCommand(t *testing.T) {
	const sid = "sessions/01JD00000000000000000000SS"
	f := &fakeTraining{
		session: &knkv1.Session{Name: sid, State: knkv1.Session_STATE_SCHEDULED,
			Topics: []knkv1.Topic{knkv1.Topic_TOPIC_K3, knkv1.Topic_TOPIC_PKWT}},
		enrolled: map[string]bool{},
		niks:     map[string]string{},
		recorded: map[string]*knkv1.SessionResult{},
	}
	// 1203 rows by NIK: row 5 is not enrolled, row 700 has an unknown NIK, row 900
	// scores a topic the session lacks, row 1000 has a bad score, row 1203 repeats
	// row 1's NIK (last write wins).
	var b strings.Builder
	b.WriteString("nik,attended,k3,pkwt,wage_scale\n")
	nikOf := func(i int) string { return fmt.Sprintf("61710112039%05d", i) }
	for i := 1; i <= 1202; i++ {
		cadre := fmt.Sprintf("cadres/C%05d", i)
		if i != 700 {
			f.niks[nikOf(i)] = cadre
		}
		if i != 5 {
			f.enrolled[cadre] = true
		}
		switch i {
		case 900:
			fmt.Fprintf(&b, "%s,yes,80,80,80\n", nikOf(i))
		case 1000:
			fmt.Fprintf(&b, "%s,yes,800,,\n", nikOf(i))
		default:
			fmt.Fprintf(&b, "%s,%s,%d,,\n", nikOf(i), []string{"tidak", "ya"}[i%2], i%101)
		}
	}
	fmt.Fprintf(&b, "%s,yes,99,98,\n", nikOf(1))
	dir := t.TempDir()
	file := filepath.Join(dir, "results.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// A world-readable rejections file left from before is made private.
	if err := os.WriteFile(file+".rejections.csv", []byte("old\n"), 0o644); err != nil || os.Chmod(file+".rejections.csv", 0o644) != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"--addr", startFake(t, f), "results", "import", "01JD00000000000000000000SS", file},
		strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	if want := "sent: 1199\nrejected: 4\nrejections: " + file + ".rejections.csv\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	// Rows 1-500 (refused for row 5, re-sent as 499), rows 501-1003 less the three
	// rejected locally, rows 1004-1203.
	for i, n := range f.calls {
		if n > maxResultsBatch {
			t.Errorf("call %d sent %d results", i, n)
		}
	}
	if want := fmt.Sprint([]int{500, 499, 500, 200}); fmt.Sprint(f.calls) != want {
		t.Errorf("RecordResults calls = %v, want %s", f.calls, want)
	}
	if f.lookups != 1200 {
		t.Errorf("%d lookups, want 1200 (a repeated NIK is looked up once; rows rejected locally never)", f.lookups)
	}
	if r := f.recorded["cadres/C00001"]; !r.GetAttended() || r.GetScores()["TOPIC_K3"] != 99 || r.GetScores()["TOPIC_PKWT"] != 98 {
		t.Errorf("C00001 = %v; want the last row's result", r)
	}
	if len(f.recorded) != 1198 {
		t.Errorf("%d cadres recorded, want 1198", len(f.recorded))
	}
	if st, err := os.Stat(file + ".rejections.csv"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("rejections file mode %v (%v), want 0600: it holds NIKs", st.Mode().Perm(), err)
	}
	rejections, err := os.ReadFile(file + ".rejections.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := "row,field,reason\n" +
		"5,nik,is not enrolled in " + sid + "\n" +
		"700,nik,no cadre is registered with this NIK\n" +
		"900,wage_scale,the session does not cover this topic\n" +
		"1000,k3," + scoreReason + "\n"
	if string(rejections) != want {
		t.Errorf("rejections:\n%s\nwant:\n%s", rejections, want)
	}
	all := stdout.String() + stderr.String() + string(rejections)
	for i := 1; i <= 1202; i++ {
		if strings.Contains(all, nikOf(i)) {
			t.Fatalf("output quotes a NIK:\n%s", all)
		}
	}
	if !strings.Contains(stderr.String(), "knkctl: results done: 1203 rows read, 1199 sent, 4 rejected") {
		t.Errorf("stderr lacks the final progress line:\n%s", stderr.String())
	}
}

func TestResultsImportStopsOnClosedSession(t *testing.T) {
	f := &fakeTraining{session: &knkv1.Session{Name: "sessions/S", State: knkv1.Session_STATE_COMPLETED}}
	file := filepath.Join(t.TempDir(), "r.csv")
	if err := os.WriteFile(file, []byte("cadre,attended\na,yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"--addr", startFake(t, f), "results", "import", "S", file},
		strings.NewReader(""), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "sessions/S is STATE_COMPLETED") {
		t.Errorf("err = %v, want a refusal naming the state", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("RecordResults called %d times", len(f.calls))
	}
}
