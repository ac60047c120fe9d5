package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	if e.http != nil {
		e.http.Close()
	}
	if e.gwConn != nil {
		e.gwConn.Close()
	}
	e.grpc.Stop()
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
	if _, err := conn.ExecContext(ctx, `INSERT INTO organizations (id, kind, display_name, province_code, create_time)
		VALUES ('ksbsi', ?, 'KSBSI', '', 0)`, int32(knkv1.Organization_KIND_FEDERATION)); err != nil {
		return 0, err
	}
	stmt, err := conn.PrepareContext(ctx, `INSERT INTO cadres (id, nik, display_name, birth_date, gender,
		phone, email, province_code, regency, employer_name, employer_nib, federation, union_member_number,
		bpjs_kpj, state, withdraw_reason, passed_topics, certificate, forum, create_time, update_time, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, '', '', ?, ?, 1)`)
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
			c, p := cadreAt(int64(done)), personAt(int64(done))
			now := time.Now().UnixMicro()
			gender := knkv1.Cadre_GENDER_MALE
			if p.female {
				gender = knkv1.Cadre_GENDER_FEMALE
			}
			_, err = txStmt.ExecContext(ctx, ulid.Make().String(), c.Nik, c.DisplayName, p.birthDate, int32(gender),
				"+6281234567890", c.Email, c.ProvinceCode, c.Regency, c.Employer.Name, c.Employer.Nib, "ksbsi",
				c.UnionMemberNumber, c.BpjsKpj, int32(knkv1.Cadre_STATE_ACTIVE), now, now)
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
