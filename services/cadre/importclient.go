package cadre

import (
	"errors"
	"io"

	"google.golang.org/grpc"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

// ImportStream is the client side of ImportCadres.
type ImportStream = grpc.BidiStreamingClient[knkv1.ImportCadresRequest, knkv1.ImportCadresResponse]

// ReceiveImport reads an import's answer until its last message, calling page for
// each message, and returns the last one (its counts are the totals). A client
// that sends many rows must run it while it sends: the server pauses the import
// while its answer is not read.
func ReceiveImport(stream ImportStream, page func(*knkv1.ImportCadresResponse) error) (*knkv1.ImportCadresResponse, error) {
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the server ended the import without its summary")
		}
		if err != nil {
			return nil, err
		}
		if err := page(resp); err != nil {
			return nil, err
		}
		if resp.GetDone() {
			return resp, nil
		}
	}
}

// CloseImport ends the sending side of an import and gathers its answer into one
// message holding every rejection and warning. It suits callers that send few bad rows; others
// use ReceiveImport while they send.
func CloseImport(stream ImportStream) (*knkv1.ImportCadresResponse, error) {
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	var rejections, warnings []*knkv1.ImportRejection
	last, err := ReceiveImport(stream, func(r *knkv1.ImportCadresResponse) error {
		rejections = append(rejections, r.GetRejections()...)
		warnings = append(warnings, r.GetWarnings()...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	last.Rejections, last.Warnings = rejections, warnings
	return last, nil
}
