package main

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// resultsFormat documents the results CSV read by `knkctl results import`; it is
// shown by `knkctl results import --help`.
const resultsFormat = `Results CSV format:

  UTF-8 (a byte-order mark is allowed), LF or CRLF line endings, RFC 4180 quoting.
  A header row is required; column names are case-insensitive and in any order.
  An unknown or repeated column is an error. Cells are trimmed. One row per cadre.

  cadre            the cadre, cadres/ID or ID   } exactly one of cadre and nik
  nik              the cadre's 16-digit NIK     } (a NIK is looked up, never shown)
  attended         true/false, yes/no, ya/tidak or 1/0 (required)
  k3               score for TOPIC_K3
  pkwt             score for TOPIC_PKWT
  wage_scale       score for TOPIC_WAGE_SCALE
  social_security  score for TOPIC_SOCIAL_SECURITY

  Score columns are optional; a score is a whole number from 0 to 100 and an empty
  cell means no score. wage-scale, TOPIC_WAGE_SCALE, … name the same columns.

  Rows are numbered from 1 = the first record after the header; blank lines are
  skipped. A row with a bad attended word, a score that is not a whole number from
  0 to 100, a score for a topic the session does not cover, or a NIK that finds no
  cadre is rejected and not sent. Results go in RecordResults calls of at most 500;
  a row the server refuses is rejected and the rest of its call re-sent. For a cadre
  and topic the last write wins, so re-running a corrected file is safe.
  Rejections are written as CSV: row,field,reason (never quoting a NIK).`

// Results column names (colNIK is the roster's "nik").
const (
	colCadre    = "cadre"
	colAttended = "attended"
)

// scoreColumns maps each topic column to its topic.
var scoreColumns = map[string]knkv1.Topic{
	"k3":              knkv1.Topic_TOPIC_K3,
	"pkwt":            knkv1.Topic_TOPIC_PKWT,
	"wage_scale":      knkv1.Topic_TOPIC_WAGE_SCALE,
	"social_security": knkv1.Topic_TOPIC_SOCIAL_SECURITY,
}

// resultsColumns lists every known column, in the order used in messages.
var resultsColumns = []string{colCadre, colNIK, colAttended, "k3", "pkwt", "wage_scale", "social_security"}

var attendedWords = map[string]bool{
	"true": true, "yes": true, "ya": true, "1": true,
	"false": false, "no": false, "tidak": false, "0": false,
}

const attendedHelp = "must be true, false, yes, no, ya, tidak, 1 or 0"

// resultColumn normalizes a header cell: "Wage-Scale", "TOPIC_WAGE_SCALE" and
// " wage_scale " all give "wage_scale".
func resultColumn(h string) string {
	name := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(h)), "-", "_")
	if t, ok := strings.CutPrefix(name, "topic_"); ok {
		if _, ok := scoreColumns[t]; ok {
			return t
		}
	}
	return name
}

// topicColumn is the CSV column of a topic ("TOPIC_WAGE_SCALE" → "wage_scale").
func topicColumn(t knkv1.Topic) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "TOPIC_"))
}

// resultRow is one CSV data row: a result to send or a rejection, never both.
type resultRow struct {
	Row int // 1 = the first record after the header
	// Result has Cadre set from the cadre column; with a nik column Cadre is empty
	// and NIK holds the cell, for the command to resolve.
	Result *knkv1.SessionResult
	NIK    string
	Rej    *knkv1.ImportRejection
}

// resultsReader turns a results CSV into SessionResults, one row at a time.
type resultsReader struct {
	csv   *csv.Reader
	cols  []string
	byNIK bool // the file names cadres by NIK, not by id
	row   int
}

// newResultsReader reads and checks the header of a results CSV.
func newResultsReader(r io.Reader) (*resultsReader, error) {
	cr, cols, err := openCSV(r, "results", resultsColumns, resultColumn)
	if err != nil {
		return nil, err
	}
	rr := &resultsReader{csv: cr, cols: cols}
	hasCadre, hasNIK := slices.Contains(rr.cols, colCadre), slices.Contains(rr.cols, colNIK)
	switch {
	case hasCadre && hasNIK:
		return nil, errors.New("results header: give either a cadre or a nik column, not both")
	case !hasCadre && !hasNIK:
		return nil, errors.New("results header: a cadre column (cadres/ID or ID) or a nik column is required")
	case !slices.Contains(rr.cols, colAttended):
		return nil, errors.New("results header: missing required column attended")
	}
	rr.byNIK = hasNIK
	return rr, nil
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// Next returns the next data row as a result or a client-side rejection. Cells are
// never quoted in a rejection. It returns io.EOF after the last row, and any other
// error only when the input cannot be read at all.
func (rr *resultsReader) Next() (resultRow, error) {
	rec, err := rr.csv.Read()
	if errors.Is(err, io.EOF) {
		return resultRow{}, io.EOF
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		return resultRow{}, err
	}
	rr.row++
	reject := func(field, reason string) (resultRow, error) {
		return resultRow{Row: rr.row, Rej: &knkv1.ImportRejection{Row: int64(rr.row), Field: field, Reason: reason}}, nil
	}
	if pe != nil {
		return reject("", fmt.Sprintf("malformed CSV at line %d, column %d: %v", pe.Line, pe.Column, pe.Err))
	}
	if len(rec) != len(rr.cols) {
		return reject("", fmt.Sprintf("row has %d cells, the header has %d", len(rec), len(rr.cols)))
	}
	out := resultRow{Row: rr.row, Result: &knkv1.SessionResult{}}
	for i, cell := range rec {
		col := rr.cols[i]
		v := strings.TrimSpace(cell)
		switch {
		case !utf8.ValidString(v):
			return reject(col, "not valid UTF-8 (save the file as CSV UTF-8)")
		case len(v) > maxCell:
			return reject(col, fmt.Sprintf("longer than %d bytes", maxCell))
		}
		switch col {
		case colCadre:
			id := strings.TrimPrefix(v, "cadres/")
			if id == "" || strings.ContainsAny(id, "/ \t\r\n") {
				return reject(col, "must be a cadre id (01J…) or cadres/ID")
			}
			out.Result.Cadre = "cadres/" + id
		case colNIK:
			if len(v) != 16 || !digits.MatchString(v) {
				return reject(col, "must be a NIK of exactly 16 digits")
			}
			out.NIK = v
		case colAttended:
			att, ok := attendedWords[strings.ToLower(v)]
			if !ok {
				return reject(col, attendedHelp)
			}
			out.Result.Attended = att
		default: // a topic column
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if !digits.MatchString(v) || err != nil || n > 100 {
				return reject(col, "score must be a whole number from 0 to 100")
			}
			if out.Result.Scores == nil {
				out.Result.Scores = map[string]int32{}
			}
			out.Result.Scores[scoreColumns[col].String()] = int32(n)
		}
	}
	return out, nil
}

type resultsCmd struct {
	Import resultsImportCmd `cmd:"" help:"Record attendance and scores of a session from a CSV file (one row per cadre)."`
}

// maxResultsBatch is the most results in one RecordResults call.
const maxResultsBatch = 500

type resultsImportCmd struct {
	Session    string `arg:"" help:"Session id (01J…) or name (sessions/01J…)."`
	File       string `arg:"" type:"existingfile" help:"Results CSV file."`
	Rejections string `type:"path" help:"Where to write the rejections (row,field,reason) if there are any; default FILE.rejections.csv."`
	BatchSize  int    `default:"500" help:"Results per RecordResults call, 1 to 500; each call is recorded atomically."`
}

// Help is the detailed help of `knkctl results import --help`.
func (c *resultsImportCmd) Help() string { return resultsFormat }

// pending is a result waiting to be sent, with its CSV data row.
type pending struct {
	row int
	res *knkv1.SessionResult
}

func (c *resultsImportCmd) Run(a *app) error {
	if c.BatchSize < 1 || c.BatchSize > maxResultsBatch {
		return fmt.Errorf("--batch-size must be between 1 and %d, not %d", maxResultsBatch, c.BatchSize)
	}
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	rr, err := newResultsReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	training := knkv1.NewTrainingServiceClient(cc)
	cadres := knkv1.NewCadreServiceClient(cc)
	name := resourceName("sessions", c.Session)

	// Fail early, before any NIK lookup, on an unknown or closed session, and
	// reject scores for topics the session does not cover.
	sess, err := func() (*knkv1.Session, error) {
		ctx, cancel := a.call()
		defer cancel()
		return training.GetSession(ctx, &knkv1.GetSessionRequest{Name: name})
	}()
	if err != nil {
		return err
	}
	if st := sess.GetState(); st != knkv1.Session_STATE_SCHEDULED {
		return fmt.Errorf("%s is %s: results can be recorded only while it is scheduled", name, st)
	}
	offered := map[string]bool{}
	for _, t := range sess.GetTopics() {
		offered[t.String()] = true
	}

	var (
		start    = time.Now()
		rejs     []*knkv1.ImportRejection
		batch    []pending
		read     int
		sent     int
		resolved = map[string][2]string{} // NIK → {cadre name, or "" and why not}; never printed
	)
	reject := func(row int, field, reason string) {
		rejs = append(rejs, &knkv1.ImportRejection{Row: int64(row), Field: field, Reason: reason})
	}
	progress := func(what string) {
		fmt.Fprintf(a.stderr, "knkctl: results %s: %d rows read, %d sent, %d rejected, %s\n",
			what, read, sent, len(rejs), time.Since(start).Round(time.Millisecond))
	}
	idField := colCadre
	if rr.byNIK {
		idField = colNIK
	}
	// flush sends the batch; rows the server refuses become rejections and the rest
	// of the call is sent again (each call is atomic, so nothing of a refused call
	// was recorded).
	flush := func() error {
		for len(batch) > 0 {
			req := &knkv1.RecordResultsRequest{Name: name, Results: make([]*knkv1.SessionResult, len(batch))}
			for i, p := range batch {
				req.Results[i] = p.res
			}
			ctx, cancel := a.call()
			_, err := training.RecordResults(ctx, req)
			cancel()
			if err == nil {
				sent += len(batch)
				batch = batch[:0]
				progress("progress")
				return nil
			}
			bad := refusedResults(err, len(batch), idField)
			if len(bad) == 0 {
				fmt.Fprintf(a.stderr, "knkctl: results import stopped at CSV rows %d to %d; %d earlier rows were recorded; re-running the file is safe (the last write wins)\n",
					batch[0].row, batch[len(batch)-1].row, sent)
				return err
			}
			kept := batch[:0]
			for i, p := range batch {
				if v, ok := bad[i]; ok {
					reject(p.row, v.field, v.reason)
				} else {
					kept = append(kept, p)
				}
			}
			batch = kept
		}
		return nil
	}

	for {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.File, err)
		}
		read = row.Row
		if row.Rej != nil {
			rejs = append(rejs, row.Rej)
			continue
		}
		if t := firstUnoffered(row.Result, offered); t != "" {
			reject(row.Row, topicColumn(knkv1.Topic(knkv1.Topic_value[t])), "the session does not cover this topic")
			continue
		}
		if rr.byNIK {
			r, ok := resolved[row.NIK]
			if !ok {
				cadre, reason, err := lookupNIK(a, cadres, row.NIK)
				if err != nil {
					return err
				}
				r = [2]string{cadre, reason}
				resolved[row.NIK] = r
			}
			if r[0] == "" {
				reject(row.Row, colNIK, r[1])
				continue
			}
			row.Result.Cadre = r[0]
		}
		batch = append(batch, pending{row.Row, row.Result})
		if len(batch) >= c.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	progress("done")

	slices.SortStableFunc(rejs, func(x, y *knkv1.ImportRejection) int { return cmp.Compare(x.Row, y.Row) })
	fmt.Fprintf(a.stdout, "sent: %d\nrejected: %d\n", sent, len(rejs))
	if len(rejs) == 0 {
		return nil
	}
	path := c.Rejections
	if path == "" {
		path = c.File + ".rejections.csv"
	}
	if err := writeRejections(path, rejs); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "rejections: %s\n", path)
	return err
}

// firstUnoffered returns the first topic name (in enum order) res scores that the
// session does not offer, or "".
func firstUnoffered(res *knkv1.SessionResult, offered map[string]bool) string {
	for t := knkv1.Topic_TOPIC_K3; t <= knkv1.Topic_TOPIC_SOCIAL_SECURITY; t++ {
		if _, ok := res.GetScores()[t.String()]; ok && !offered[t.String()] {
			return t.String()
		}
	}
	return ""
}

// lookupNIK resolves a NIK to a cadre name. A NIK that finds no visible cadre gives
// cadre "" and the reason, which never quotes the NIK; err is for failures that stop
// the import (unreachable server, bad key, …).
func lookupNIK(a *app, client knkv1.CadreServiceClient, nik string) (cadre, reason string, err error) {
	var c *knkv1.Cadre
	err = waitRetryInfo(a, func() (err error) {
		ctx, cancel := a.call()
		defer cancel()
		c, err = client.LookupCadre(ctx, &knkv1.LookupCadreRequest{Nik: nik})
		return err
	})
	if err == nil {
		return c.GetName(), "", nil
	}
	st, _ := status.FromError(err)
	msg := strings.ReplaceAll(st.Message(), nik, "…")
	switch st.Code() {
	case codes.NotFound:
		return "", "no cadre is registered with this NIK", nil
	case codes.InvalidArgument, codes.PermissionDenied:
		return "", msg, nil
	}
	return "", "", err
}

// waitRetryInfo runs call again after the delay of a RESOURCE_EXHAUSTED answer
// that carries a RetryInfo (the server's per-key limit on NIK lookups), saying so
// on stderr, until it gets another answer or the command is interrupted.
func waitRetryInfo(a *app, call func() error) error {
	for {
		err := call()
		st, _ := status.FromError(err)
		if st.Code() != codes.ResourceExhausted {
			return err
		}
		var delay time.Duration
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				delay = ri.GetRetryDelay().AsDuration()
			}
		}
		if delay <= 0 {
			return err
		}
		fmt.Fprintf(a.stderr, "the server limits NIK lookups per key: waiting %s\n", delay)
		select {
		case <-a.ctx.Done():
			return a.ctx.Err()
		case <-time.After(delay):
		}
	}
}

// refusal is why the server refused one result of a RecordResults call.
type refusal struct{ field, reason string }

var resultViolation = regexp.MustCompile(`^results\[(\d+)\](?:\.(cadre|attended|scores\[(\w+)\]))?`)

// refusedResults maps the BadRequest field violations of a refused RecordResults
// call ("results[3].cadre", "results[0].scores[TOPIC_K3]") to the indexes of the
// refused results, naming the CSV column (idField for the cadre, the topic column
// for a score). It is empty when err is not such a refusal, or names no result in
// [0, n).
func refusedResults(err error, n int, idField string) map[int]refusal {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return nil
	}
	out := map[int]refusal{}
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			m := resultViolation.FindStringSubmatch(v.GetField())
			if m == nil {
				continue
			}
			i, err := strconv.Atoi(m[1])
			if err != nil || i < 0 || i >= n {
				continue
			}
			if _, seen := out[i]; seen {
				continue // one rejection per row: the first reason
			}
			field := ""
			switch {
			case m[2] == colCadre:
				field = idField
			case m[2] == colAttended:
				field = colAttended
			case m[3] != "":
				field = m[3]
				if t, ok := knkv1.Topic_value[m[3]]; ok && t != 0 {
					field = topicColumn(knkv1.Topic(t))
				}
			}
			out[i] = refusal{field, v.GetDescription()}
		}
	}
	return out
}

// writeRejections writes row,field,reason with a header; rows are CSV data rows.
func writeRejections(path string, rejs []*knkv1.ImportRejection) error {
	f, err := createPrivate(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"row", "field", "reason"}) //nolint:errcheck // checked by w.Error
	for _, r := range rejs {
		w.Write([]string{strconv.FormatInt(r.GetRow(), 10), r.GetField(), r.GetReason()}) //nolint:errcheck // checked by w.Error
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
