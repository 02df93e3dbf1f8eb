package polytrial

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// ReasonSearchSpaceExhausted is the ErrorInfo reason of a finite search space
// that has no arm left that is not already in a trial.
const ReasonSearchSpaceExhausted = "SEARCH_SPACE_EXHAUSTED"

// ReasonRunnerBusy is the ErrorInfo reason of an Unavailable error when the
// server already has as many calls in flight to the trial's runner as it
// allows (the runner may be hung); the metadata "runner" names it.
const ReasonRunnerBusy = "RUNNER_BUSY"

// ReasonRunnerUnavailable is the ErrorInfo reason of an Unavailable error
// when the trial's runner could not be reached.
const ReasonRunnerUnavailable = "RUNNER_UNAVAILABLE"

// FieldViolation is one invalid request field and what is wrong with it.
type FieldViolation struct {
	// Field is the field's path in the request, for example
	// "experiment.search_space.parameters[0].range.lower".
	Field string
	// Description says why the value is refused.
	Description string
}

// Error is an error the server reported on purpose: one of the codes listed
// in typedCodes, with the google.rpc ErrorInfo and BadRequest details read
// out so that no caller parses a message. Every other code (Internal,
// Unknown, Canceled, ...) is returned unchanged as the gRPC status error.
//
// Use errors.As to read it, or IsNotFound and its siblings to test the code.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the server's message, a sentence naming the field or resource.
	Message string
	// Reason is the ErrorInfo reason (UPPER_SNAKE), or "" when none was sent.
	Reason string
	// Metadata is the ErrorInfo metadata, for example "resource_name".
	Metadata map[string]string
	// FieldViolations come from a BadRequest detail (InvalidArgument).
	FieldViolations []FieldViolation

	status *status.Status
}

// Error returns the code and the server's message.
func (e *Error) Error() string {
	return fmt.Sprintf("polytrial: %s: %s", e.Code, e.Message)
}

// GRPCStatus returns the status the server sent, so status.FromError and
// status.Code see through an *Error. An *Error the client made itself (a
// request it refused to send) gets a status with the same details a server
// would have attached.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	st := status.New(e.Code, e.Message)
	details := []protoadapt.MessageV1{}
	if e.Reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: e.Reason, Domain: errorDomain, Metadata: e.Metadata})
	}
	if len(e.FieldViolations) > 0 {
		request := &errdetails.BadRequest{}
		for _, v := range e.FieldViolations {
			request.FieldViolations = append(request.FieldViolations,
				&errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		details = append(details, request)
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		return withDetails
	}
	return st
}

// Unwrap returns the gRPC status error the Error was made from.
func (e *Error) Unwrap() error {
	if e.status == nil {
		return nil
	}
	return e.status.Err()
}

// errorDomain is the ErrorInfo domain of the errors the client makes itself.
const errorDomain = "polytrial.client"

// invalidArgument returns the error of a request the client refuses before
// sending it: the same *Error (code InvalidArgument, reason
// INVALID_ARGUMENT, one FieldViolation) the server answers for a bad field,
// so a caller handles both alike. The message starts with the field.
func invalidArgument(field, format string, args ...any) *Error {
	description := fmt.Sprintf(format, args...)
	return &Error{
		Code:            codes.InvalidArgument,
		Message:         field + ": " + description,
		Reason:          "INVALID_ARGUMENT",
		Metadata:        map[string]string{},
		FieldViolations: []FieldViolation{{Field: field, Description: description}},
	}
}

// typedCodes are the codes a Polytrial server answers on purpose.
var typedCodes = map[codes.Code]bool{
	codes.InvalidArgument:    true,
	codes.NotFound:           true,
	codes.AlreadyExists:      true,
	codes.FailedPrecondition: true,
	codes.ResourceExhausted:  true,
	codes.Aborted:            true,
	codes.Unavailable:        true,
	codes.DeadlineExceeded:   true,
	codes.Unimplemented:      true,
}

// fromRPCError returns the *Error for a failed call, or err itself when its
// code is not one the server answers on purpose (or it is no gRPC error).
func fromRPCError(err error) error {
	st, ok := status.FromError(err)
	if !ok || !typedCodes[st.Code()] {
		return err
	}
	typed := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			typed.Reason = d.GetReason()
			for key, value := range d.GetMetadata() {
				typed.Metadata[key] = value
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				typed.FieldViolations = append(typed.FieldViolations, FieldViolation{
					Field: v.GetField(), Description: v.GetDescription(),
				})
			}
		}
	}
	return typed
}

// CodeOf returns the gRPC code of err: the *Error's code, the code of a gRPC
// status error, codes.OK for nil and codes.Unknown for anything else.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var typed *Error
	if errors.As(err, &typed) {
		return typed.Code
	}
	return status.Code(err)
}

func hasCode(err error, code codes.Code) bool {
	var typed *Error
	return errors.As(err, &typed) && typed.Code == code
}

// IsInvalidArgument reports whether a request field was refused; nothing was
// stored. The *Error's FieldViolations name the fields.
func IsInvalidArgument(err error) bool { return hasCode(err, codes.InvalidArgument) }

// IsNotFound reports whether the named experiment or trial does not exist.
func IsNotFound(err error) bool { return hasCode(err, codes.NotFound) }

// IsAlreadyExists reports whether a resource with that name exists already.
func IsAlreadyExists(err error) bool { return hasCode(err, codes.AlreadyExists) }

// IsFailedPrecondition reports whether the resource's state forbids the call,
// for example completing a trial that is completed already.
func IsFailedPrecondition(err error) bool { return hasCode(err, codes.FailedPrecondition) }

// IsResourceExhausted reports whether a documented service limit was exceeded.
func IsResourceExhausted(err error) bool { return hasCode(err, codes.ResourceExhausted) }

// IsAborted reports whether a concurrent change won a race; the call may be
// retried.
func IsAborted(err error) bool { return hasCode(err, codes.Aborted) }

// IsUnavailable reports whether the server could not be reached.
func IsUnavailable(err error) bool { return hasCode(err, codes.Unavailable) }

// IsDeadlineExceeded reports whether the call did not finish in time.
func IsDeadlineExceeded(err error) bool { return hasCode(err, codes.DeadlineExceeded) }

// IsUnimplemented reports whether the server does not implement the call.
func IsUnimplemented(err error) bool { return hasCode(err, codes.Unimplemented) }

// IsSearchSpaceExhausted reports whether a finite search space has no new arm
// left. The reason decides, whichever code the server chose for it.
func IsSearchSpaceExhausted(err error) bool {
	var typed *Error
	return errors.As(err, &typed) && typed.Reason == ReasonSearchSpaceExhausted
}
