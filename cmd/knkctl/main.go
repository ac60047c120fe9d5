// Command knkctl is the command-line client of the KNK service suite. Every command
// but bootstrap talks gRPC to knkd (--addr, --key or KNK_ADDR, KNK_KEY).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "knkctl:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// cli is the command line. A command is a field tagged `cmd:""` whose type has a
// method Run(*app) error; add one by adding a field here.
type cli struct {
	Globals

	Orgs   orgsCmd   `cmd:"" help:"Manage organizations (admin only)."`
	Keys   keysCmd   `cmd:"" help:"Manage the API keys of an organization (admin only)."`
	Cadres cadresCmd `cmd:"" help:"Read and withdraw cadres."`
	Import importCmd `cmd:"" help:"Import a member roster (CSV) over the ImportCadres stream."`

	Sessions sessionsCmd `cmd:"" help:"Schedule, list, cancel and complete training sessions."`
	Enroll   enrollCmd   `cmd:"" help:"Enrol a cadre into a training session."`
	Unenroll unenrollCmd `cmd:"" help:"Remove a cadre from a scheduled training session."`
	Results  resultsCmd  `cmd:"" help:"Record the attendance and scores of a training session."`
	Events   eventsCmd   `cmd:"" help:"List or watch the change log (admin only)."`

	Certificates certificatesCmd `cmd:"" help:"Issue, list, revoke and verify KNK certificates; verify needs no key."`
	Forums       forumsCmd       `cmd:"" help:"Read the provincial Forums KNK and their members."`

	Transfers transfersCmd `cmd:"" help:"Ask for, list, approve and reject transfers of cadres between federations."`

	Bootstrap    bootstrapCmd    `cmd:"" help:"Create the admin organization and its first key directly in the database; prints only the secret."`
	Stats        statsCmd        `cmd:"" help:"Check the statistics counters against the base tables."`
	Backup       backupCmd       `cmd:"" help:"Copy a SQLite store to a file while knkd keeps running (consistent, checked, 0600)."`
	Restore      restoreCmd      `cmd:"" help:"Write a backup back as a SQLite store at a path that does not exist yet."`
	Rekey        rekeyCmd        `cmd:"" help:"Encrypt the stored signing keys under a new key-encryption key (knkd stopped; then start every knkd with the new file)."`
	MigrateStore migrateStoreCmd `cmd:"" name:"migrate-store" help:"Copy a whole store (e.g. a SQLite file) into a new, empty one (e.g. PostgreSQL), and verify the counts."`
}

// Globals are the flags every command accepts.
type Globals struct {
	Addr       string        `env:"KNK_ADDR" default:"localhost:9090" help:"knkd gRPC address (${env})."`
	Key        string        `env:"KNK_KEY" hidden:"" help:"Refused on the command line: pass the API key in KNK_KEY or --key-file."`
	KeyFile    string        `name:"key-file" env:"KNK_KEY_FILE" type:"existingfile" help:"File holding the API key (or set KNK_KEY; never on the command line, where ps shows it)."`
	CA         string        `name:"ca" env:"KNK_CA" type:"existingfile" help:"PEM CA certificate(s) that knkd's TLS certificate must chain to (default: the system's roots)."`
	Insecure   bool          `name:"insecure" help:"Connect without TLS (plaintext). Without it, knkctl uses TLS except to a loopback address."`
	ClientCert string        `name:"client-cert" env:"KNK_CLIENT_CERT" type:"existingfile" help:"PEM client certificate, for a knkd started with --client-ca."`
	ClientKey  string        `name:"client-key" env:"KNK_CLIENT_KEY" type:"existingfile" help:"PEM private key of --client-cert."`
	Timeout    time.Duration `default:"30s" help:"Deadline of each call (for import: of each row sent and of the final summary); 0 = none."`
}

// app is what every command's Run receives: the I/O streams and a lazily dialled
// connection (commands that never call conn, such as bootstrap, never dial).
type app struct {
	ctx            context.Context
	g              *Globals
	stdin          io.Reader
	stdout, stderr io.Writer
	args           []string // the command line, to refuse secrets on it
	plaintext      bool     // the connection does not use TLS
	cc             *grpc.ClientConn
}

// kongExit carries kong's exit code (after --help) out of kong through a panic.
type kongExit int

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var c cli
	parser, err := kong.New(&c,
		kong.Name("knkctl"),
		kong.Description("Command-line client of the KNK labour-norms cadre registry."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			if code != 0 {
				err = fmt.Errorf("exit status %d", int(code))
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		return fmt.Errorf("%w (see knkctl --help)", err)
	}
	if err := c.Globals.secrets(args); err != nil {
		return err
	}
	a := &app{ctx: ctx, g: &c.Globals, stdin: stdin, stdout: stdout, stderr: stderr, args: args}
	defer a.close()
	err = describe(kctx.Run(a))
	if err != nil && a.plaintext && strings.Contains(err.Error(), "server preface") {
		err = fmt.Errorf("%w\n  knkd may be serving TLS: pass --ca FILE (or set KNK_CA)", err)
	}
	return err
}

// conn dials knkd once, over TLS unless the address is loopback or --insecure is
// given (see transport); the API key is sent as `authorization: Bearer <key>`
// metadata.
func (a *app) conn() (*grpc.ClientConn, error) {
	if a.cc != nil {
		return a.cc, nil
	}
	creds, err := a.g.transport()
	if err != nil {
		return nil, err
	}
	a.plaintext = creds.Info().SecurityProtocol != "tls"
	if a.g.Key != "" && !loopback(a.g.Addr) && a.plaintext {
		fmt.Fprintf(a.stderr, "knkctl: warning: sending the API key without TLS to %s\n", a.g.Addr)
	}
	cc, err := grpc.NewClient(a.g.Addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)), // large import summaries
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", a.g.Addr, err)
	}
	a.cc = cc
	return cc, nil
}

func (a *app) close() {
	if a.cc != nil {
		a.cc.Close() //nolint:errcheck // nothing left to report
	}
}

// authCtx is a.ctx carrying the API key, without a deadline.
func (a *app) authCtx() context.Context {
	if a.g.Key == "" {
		return a.ctx
	}
	return metadata.AppendToOutgoingContext(a.ctx, "authorization", "Bearer "+a.g.Key)
}

// call returns the context of one unary call: the API key and the --timeout deadline.
func (a *app) call() (context.Context, context.CancelFunc) {
	if a.g.Timeout <= 0 {
		return context.WithCancel(a.authCtx())
	}
	return context.WithTimeout(a.authCtx(), a.g.Timeout)
}

var marshal = protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}

// print writes m to stdout as multi-line protojson.
func (a *app) print(m proto.Message) error {
	b, err := marshal.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// printAll follows next_page_token from the empty token to the end and writes one
// JSON object {"<field>": [items…]} to stdout, item by item, never holding more than
// one page. fetch returns one page's items and its next_page_token.
// callPrint makes one call with the command's deadline and prints its answer.
func callPrint(a *app, call func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error)) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	resp, err := call(ctx, cc)
	if err != nil {
		return err
	}
	return a.print(resp)
}

// pageResponse is a List response.
type pageResponse interface {
	proto.Message
	GetNextPageToken() string
}

// pages prints one page of a list, or with all every page as one document.
func pages[R pageResponse, T proto.Message](a *app, all bool, field string,
	list func(ctx context.Context, token string) (R, error), items func(R) []T) error {
	page := func(token string) (R, error) {
		ctx, cancel := a.call()
		defer cancel()
		return list(ctx, token)
	}
	if !all {
		resp, err := page("")
		if err != nil {
			return err
		}
		if resp.GetNextPageToken() != "" {
			fmt.Fprintf(a.stderr, "knkctl: this is the first page of %s only; more exist: add --all to list every one\n", field)
		}
		return a.print(resp)
	}
	return printAll(a, field, func(token string) ([]T, string, error) {
		resp, err := page(token)
		return items(resp), resp.GetNextPageToken(), err
	})
}

func printAll[T proto.Message](a *app, field string, fetch func(token string) ([]T, string, error)) error {
	w := bufio.NewWriter(a.stdout)
	fmt.Fprintf(w, "{\n  %q: [", field)
	n := 0
	for token := ""; ; {
		items, next, err := fetch(token)
		if err != nil {
			w.Flush() //nolint:errcheck // the call's error matters more
			fmt.Fprintln(a.stdout)
			return err
		}
		for _, it := range items {
			b, err := marshal.Marshal(it)
			if err != nil {
				return err
			}
			if n > 0 {
				w.WriteString(",")
			}
			w.WriteString("\n    ")
			w.WriteString(strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    "))
			n++
		}
		if next == "" {
			break
		}
		if next == token {
			return errors.New("server returned the same page token twice")
		}
		token = next
	}
	if n > 0 {
		w.WriteString("\n  ")
	}
	w.WriteString("]\n}\n")
	return w.Flush()
}

// describe renders a gRPC status error as "<CODE>: <message>" followed by one
// "  field: description" line per BadRequest field violation.
func describe(err error) error {
	if err == nil {
		return nil
	}
	// Not status.FromError: on a wrapped error it folds the wrapping into the message.
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return err
	}
	st := se.GRPCStatus()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", code.Code(st.Code()), st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
			}
		}
	}
	if st.Code() == codes.Unauthenticated {
		b.WriteString("\n  hint: give your API key in the KNK_KEY environment variable (or --key-file); an admin makes one with 'knkctl keys create ORG'")
	}
	return errors.New(b.String())
}

// loopback reports whether addr (host:port, or a unix socket target) stays on this machine.
func loopback(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(strings.TrimPrefix(addr, "dns:///"))
	if err != nil {
		return false
	}
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resourceName returns id as a full resource name under collection ("cadres",
// "organizations"): "01J…" and "cadres/01J…" both give "cadres/01J…".
func resourceName(collection, id string) string {
	if strings.HasPrefix(id, collection+"/") {
		return id
	}
	return collection + "/" + id
}

// orgName is resourceName for organizations; empty stays empty.
func orgName(id string) string {
	if id == "" {
		return ""
	}
	return resourceName("organizations", id)
}
