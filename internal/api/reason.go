package api

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

// InvalidReason is INVALID_ARGUMENT for one field, with an ErrorInfo naming
// reason as well as the BadRequest, for input a client must tell apart (a
// mistyped code from a malformed one).
func InvalidReason(reason, field, description string) error {
	return withDetails(codes.InvalidArgument, "invalid "+field+": "+description,
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}},
		&errdetails.ErrorInfo{Reason: reason, Domain: Domain})
}
