package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	_ "github.com/mattn/go-sqlite3" // the driver the store uses
	"github.com/oklog/ulid/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/internal/db"
)

// The echo baseline is a bare grpc-go unary service registered by hand (no
// proto file): StringValue in, the same StringValue out, no interceptors.
const echoMethod = "/knkbench.Echo/Echo"

type echoService interface{}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "knkbench.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		},
	}},
	Metadata: "knkbench",
}

// echoServers are the two baselines: the bare gRPC echo server, and a bare
// grpc-gateway mux that serves GET /v1/echo/{value} by calling it over a
// loopback gRPC connection, as knkd's gateway does.
type echoServers struct {
	grpcAddr, httpAddr string
	grpc               *grpc.Server
	http               *http.Server
	gwConn             *grpc.ClientConn
	proc               *exec.Cmd // the process serving them, when they run in their own
}

func startEcho() (_ *echoServers, err error) {
	e := &echoServers{grpc: grpc.NewServer()}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.grpc.RegisterService(&echoDesc, struct{}{})
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.grpcAddr = gl.Addr().String()
	go e.grpc.Serve(gl)

	if e.gwConn, err = grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, err
	}
	// The same marshaler options as knkd's gateway.
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
	}))
	const pattern = "/v1/echo/{value}"
	err = mux.HandlePath(http.MethodGet, pattern, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		// What a generated gateway handler does for a GET with a path parameter.
		_, outbound := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, echoMethod, runtime.WithHTTPPathPattern(pattern))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, outbound, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp := new(wrapperspb.StringValue)
		err = e.gwConn.Invoke(ctx, echoMethod, wrapperspb.String(params["value"]), resp,
			grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, outbound, w, r, resp)
	})
	if err != nil {
		return nil, err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.httpAddr = hl.Addr().String()
	e.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go e.http.Serve(hl)
	return e, nil
}

func (e *echoServers) close() {
	if e.proc != nil {
		e.proc.Process.Signal(syscall.SIGTERM)
		e.proc.Wait()
		return
	}
	if e.http != nil {
		e.http.Close()
	}
	if e.gwConn != nil {
		e.gwConn.Close()
	}
	e.grpc.Stop()
}

// serveEcho runs the echo servers until ctx ends or stdin does, after printing
// their addresses ("grpc-addr http-addr") on a line of stdout: knkbench
// --serve-echo, the baselines' own process when knkd runs in its own
// (--server-bin). Its parent holds stdin open, so it ends with its parent.
func serveEcho(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	e, err := startEcho()
	if err != nil {
		return err
	}
	defer e.close()
	fmt.Fprintln(stdout, e.grpcAddr, e.httpAddr)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		io.Copy(io.Discard, stdin)
		cancel()
	}()
	<-ctx.Done()
	return nil
}

// startEchoProcess runs the echo servers in a child process (knkbench
// --serve-echo), so that they pay for a process of their own as knkd does.
func startEchoProcess() (*echoServers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "--serve-echo")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if _, err := cmd.StdinPipe(); err != nil { // closed when this process ends
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e := &echoServers{proc: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, scanErr := fmt.Sscan(line, &e.grpcAddr, &e.httpAddr); err != nil || scanErr != nil {
		e.close()
		return nil, fmt.Errorf("%s --serve-echo printed %q: %w", self, line, errors.Join(err, scanErr))
	}
	return e, nil
}

// echoGRPC is one baseline gRPC call.
func echoGRPC(conn *grpc.ClientConn) func(context.Context) error {
	return func(ctx context.Context) error {
		return conn.Invoke(ctx, echoMethod, wrapperspb.String("ping"), new(wrapperspb.StringValue))
	}
}

// getOK is one REST GET that must answer 200; 501 is errNotImplemented. The
// body is read to the end so the connection is reused.
func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode == http.StatusNotImplemented:
		return fmt.Errorf("%w: GET %s: %s", errNotImplemented, url, body)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// sqliteBaseline inserts rows cadre rows into a fresh SQLite file at path with
// the real schema (applied by db.Open), as fast as plain database/sql allows:
// the store's pragmas, one connection, transactions of 1000 rows and a
// prepared statement. It returns rows per second.
func sqliteBaseline(ctx context.Context, path string, rows int) (float64, error) {
	store, err := db.Open(ctx, path)
	if err != nil {
		return 0, err
	}
	if err := store.Close(); err != nil {
		return 0, err
	}
	conn, err := sql.Open("sqlite3", "file:"+path+
		"?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	if _, err := conn.ExecContext(ctx, insertFederation, int32(knkv1.Organization_KIND_FEDERATION)); err != nil {
		return 0, err
	}
	stmt, err := conn.PrepareContext(ctx, insertCadre)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	const batch = 1000
	start := time.Now()
	for done := 0; done < rows; {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		txStmt := tx.StmtContext(ctx, stmt)
		for end := min(done+batch, rows); done < end; done++ {
			_, err = txStmt.ExecContext(ctx, cadreRow(int64(done))...)
			if err != nil {
				break
			}
		}
		if err != nil {
			return 0, errors.Join(err, tx.Rollback())
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}

// insertFederation makes the federation "ksbsi" whose members the raw inserts
// write; its argument is the federation kind.
const insertFederation = `INSERT INTO organizations (id, kind, display_name, province_code, create_time)
	VALUES ('ksbsi', ?, 'KSBSI', '', 0)`

// insertCadre is the cadre row's INSERT, with the columns CreateCadre sets.
const insertCadre = `INSERT INTO cadres (id, nik, display_name, birth_date, gender,
	phone, email, province_code, regency, employer_name, employer_nib, federation, union_member_number,
	bpjs_kpj, state, withdraw_reason, passed_topics, certificate, forum, create_time, update_time, version)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, '', '', ?, ?, 1)`

// cadreRow is the arguments of insertCadre for roster row i of the federation
// "ksbsi"; the id comes first.
func cadreRow(i int64) []any {
	c, p := cadreAt(i), personAt(i)
	now := time.Now().UnixMicro()
	gender := knkv1.Cadre_GENDER_MALE
	if p.female {
		gender = knkv1.Cadre_GENDER_FEMALE
	}
	return []any{ulid.Make().String(), c.Nik, c.DisplayName, p.birthDate, int32(gender),
		"+6281234567890", c.Email, c.ProvinceCode, c.Regency, c.Employer.Name, c.Employer.Nib, "ksbsi",
		c.UnionMemberNumber, c.BpjsKpj, int32(knkv1.Cadre_STATE_ACTIVE), now, now}
}

// storeWrites measures the store alone as CreateCadre uses it, without gRPC:
// concurrent callers of db.Write, each writing one cadre row and its event and
// answered once the write is durable, on a fresh SQLite file with the real
// schema. It is the ceiling of create_cadre_rps on this machine.
func (b *bench) storeWrites(ctx context.Context) {
	const name = "store_write_rps"
	if db.IsPostgres(b.dsn) {
		b.record(name, fmt.Errorf("%w: measured for the SQLite store only", errNothingToDo))
		return
	}
	store, err := db.Open(ctx, filepath.Join(b.dir, "store.db"))
	if err != nil {
		b.record(name, err)
		return
	}
	defer store.Close()
	err = store.Write(ctx, func(tx *db.Tx) error {
		_, err := tx.ExecContext(ctx, insertFederation, int32(knkv1.Organization_KIND_FEDERATION))
		return err
	})
	if !b.record(name, err) {
		return
	}
	var next atomic.Int64
	b.rate(ctx, name, func(ctx context.Context) error {
		row := cadreRow(next.Add(1) - 1)
		return store.Write(ctx, func(tx *db.Tx) error {
			if _, err := tx.ExecContext(ctx, insertCadre, row...); err != nil {
				return err
			}
			return tx.Event(ctx, "cadre.created", "cadres/"+row[0].(string), "organizations/ksbsi", time.Now())
		})
	})
}
