package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
	"github.com/knk-id/knk/services/cadre"
)

// importREST serves POST /v1/cadres:import in place of the generated handler:
// it streams the NDJSON body line by line into ImportCadres (each line at most
// MaxImportLineBytes, each arriving within StreamIdleTimeout) while it writes
// the answer's messages as NDJSON lines, so neither side is held whole.
func (s *Server) importREST(mux *runtime.ServeMux, client knkv1.CadreServiceClient) runtime.HandlerFunc {
	l := s.cfg.Limits
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		inbound, outbound := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, "/knk.v1.CadreService/ImportCadres",
			runtime.WithHTTPPathPattern(importPath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, outbound, w, r, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var header metadata.MD
		stream, err := client.ImportCadres(ctx, grpc.Header(&header))
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex() //nolint:errcheck // HTTP/2 is full duplex already
		sent := make(chan error, 1)
		go func() {
			err := sendLines(r.Body, rc, stream, inbound, l)
			if err != nil {
				cancel() // the import stops: the client's body was not what it should be
			}
			sent <- err
		}()

		wrote := false
		_, err = cadre.ReceiveImport(stream, func(resp *knkv1.ImportCadresResponse) error {
			if !wrote {
				for k, vs := range header {
					for _, v := range vs {
						w.Header().Add(runtime.MetadataHeaderPrefix+k, v)
					}
				}
				w.Header().Set("Content-Type", "application/x-ndjson")
				wrote = true
			}
			b, err := outbound.Marshal(resp)
			if err != nil {
				return err
			}
			if _, err := w.Write(append(b, '\n')); err != nil {
				return err
			}
			return rc.Flush()
		})
		var sendErr error
		select {
		case sendErr = <-sent:
		default:
			// The answer ended first (the server ended the import, or the body's
			// deadline cancelled the request): stop reading the body at once.
			rc.SetReadDeadline(time.Now()) //nolint:errcheck // best effort: the sender ends anyway when ctx does
			sendErr = <-sent
		}
		if err == nil {
			return
		}
		switch {
		case sendErr != nil && status.Code(err) == codes.Canceled:
			err = sendErr // we cancelled the call because of the body
		case status.Code(err) == codes.DeadlineExceeded:
			err = &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestTimeout, Err: err} // rows stopped coming
		}
		w.Header().Set("Connection", "close")
		if !wrote {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
			return
		}
		var hs *runtime.HTTPStatusError
		if errors.As(err, &hs) {
			err = hs.Err
		}
		if b, merr := outbound.Marshal(map[string]any{"error": status.Convert(err).Proto()}); merr == nil {
			w.Write(append(b, '\n')) //nolint:errcheck // the client may be gone
		}
	}
}

// sendLines sends each non-empty line of body as one row, then closes the sending
// side. A line longer than MaxImportLineBytes is 413, a line that does not arrive
// within StreamIdleTimeout 408, a line that is not a row 400.
func sendLines(body io.Reader, rc *http.ResponseController, stream grpc.BidiStreamingClient[knkv1.ImportCadresRequest, knkv1.ImportCadresResponse],
	dec runtime.Marshaler, l Limits) error {
	br := bufio.NewReader(body) // 4 KB; a longer line grows its own buffer up to the limit
	var long []byte
	for line := 1; ; line++ {
		rc.SetReadDeadline(time.Now().Add(l.StreamIdleTimeout)) //nolint:errcheck // unsupported only on writers we do not use
		b, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) && len(long)+len(b) <= l.MaxImportLineBytes {
			long = append(long, b...)
			b, err = br.ReadSlice('\n')
		}
		if len(long) > 0 {
			b, long = append(long, b...), long[:0]
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || len(b) > l.MaxImportLineBytes:
			return &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge, Err: status.Errorf(codes.ResourceExhausted,
				"line %d is longer than %d bytes: one line holds one row", line, l.MaxImportLineBytes)}
		case isTimeout(err):
			return tooSlow(fmt.Sprintf("line %d did not arrive within %s: send the rows without long pauses", line, l.StreamIdleTimeout))
		case err != nil && !errors.Is(err, io.EOF):
			return err
		}
		if text := trimLine(b); text != "" {
			var req knkv1.ImportCadresRequest
			if err := dec.Unmarshal([]byte(text), &req); err != nil {
				return status.Errorf(codes.InvalidArgument, "line %d is not one JSON row of the import: %v", line, err)
			}
			if err := stream.Send(&req); err != nil {
				if errors.Is(err, io.EOF) {
					return nil // the server ended the call; its answer says why
				}
				return err
			}
		}
		if err != nil { // io.EOF
			break
		}
	}
	rc.SetReadDeadline(time.Time{}) //nolint:errcheck // the body is read
	return stream.CloseSend()
}
