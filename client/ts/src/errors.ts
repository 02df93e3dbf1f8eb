/**
 * Typed errors for the status codes a Polytrial server answers on purpose.
 *
 *     PolytrialError                       (base; never thrown itself)
 *     ├── InvalidArgumentError             INVALID_ARGUMENT, with field violations
 *     ├── NotFoundError                    NOT_FOUND
 *     ├── AlreadyExistsError               ALREADY_EXISTS
 *     ├── FailedPreconditionError          FAILED_PRECONDITION
 *     │   └── SearchSpaceExhaustedError    ErrorInfo reason SEARCH_SPACE_EXHAUSTED
 *     ├── ResourceExhaustedError           RESOURCE_EXHAUSTED
 *     ├── AbortedError                     ABORTED
 *     ├── UnavailableError                 UNAVAILABLE
 *     ├── DeadlineExceededError            DEADLINE_EXCEEDED
 *     └── UnimplementedError               UNIMPLEMENTED
 *
 * `fromServiceError` reads the `google.rpc.Status` the server attaches in the
 * `grpc-status-details-bin` trailer (`ErrorInfo` for the reason, `BadRequest`
 * for field violations), so no caller parses a message. Every other code
 * (INTERNAL, UNKNOWN, CANCELLED, ...) is not ours to interpret: the client
 * rethrows the grpc-js error unchanged. A typed error keeps the grpc-js error
 * as its `cause`.
 *
 * The client also throws two of them itself, without a `cause`:
 * `InvalidArgumentError` for an argument it cannot send (its one violation
 * names the argument, see checks.ts), and `DeadlineExceededError` when
 * `waitForOrchestration` runs out of time.
 */

import { status, type ServiceError } from "@grpc/grpc-js";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/**
 * The ErrorInfo reason of an UNAVAILABLE answer when the server already has
 * as many calls in flight to the trial's runner as it allows (the runner may
 * be hung); the metadata "runner" names it.
 */
export const RUNNER_BUSY = "RUNNER_BUSY";

/** The ErrorInfo reason of an UNAVAILABLE answer when the trial's runner could not be reached. */
export const RUNNER_UNAVAILABLE = "RUNNER_UNAVAILABLE";

/** The ErrorInfo reason of a finite search space with no new arm left. */
export const SEARCH_SPACE_EXHAUSTED = "SEARCH_SPACE_EXHAUSTED";

/** One invalid request field and what is wrong with it. */
export interface FieldViolation {
  /** Path of the field in the request, e.g. `experiment.search_space.parameters[0].range.lower`. */
  readonly field: string;
  /** Why the value is refused. */
  readonly description: string;
}

/** What the server said besides the code and message. */
export interface ErrorDetails {
  /** The ErrorInfo reason (UPPER_SNAKE), or "" when none was sent. */
  readonly reason: string;
  /** The ErrorInfo metadata, for example `resource_name`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Field violations from a BadRequest detail. */
  readonly violations: readonly FieldViolation[];
}

/** Base of every error the server reports on purpose. */
export class PolytrialError extends Error {
  /** The gRPC status code. */
  readonly code: status;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly violations: readonly FieldViolation[];

  constructor(code: status, message: string, details?: Partial<ErrorDetails>, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.code = code;
    this.reason = details?.reason ?? "";
    this.metadata = { ...(details?.metadata ?? {}) };
    this.violations = [...(details?.violations ?? [])];
  }
}

type ErrorClass = new (message: string, details?: Partial<ErrorDetails>, cause?: unknown) => PolytrialError;

/** A PolytrialError subclass for one code. */
function typed(code: status): ErrorClass {
  return class extends PolytrialError {
    constructor(message: string, details?: Partial<ErrorDetails>, cause?: unknown) {
      super(code, message, details, cause);
    }
  };
}

/** A request field is malformed or breaks a rule; nothing was stored. */
export class InvalidArgumentError extends typed(status.INVALID_ARGUMENT) {}
/** The named experiment or trial does not exist. */
export class NotFoundError extends typed(status.NOT_FOUND) {}
/** A resource with that name exists already. */
export class AlreadyExistsError extends typed(status.ALREADY_EXISTS) {}
/** The request is well formed, but the resource's state forbids it. */
export class FailedPreconditionError extends typed(status.FAILED_PRECONDITION) {}
/** A finite search space has no arm left that is not already in a trial. */
export class SearchSpaceExhaustedError extends FailedPreconditionError {}
/** A documented service limit was exceeded. */
export class ResourceExhaustedError extends typed(status.RESOURCE_EXHAUSTED) {}
/** A concurrent change won a race; the call may be retried. */
export class AbortedError extends typed(status.ABORTED) {}
/** The server (or a dependency of it) cannot be reached right now. */
export class UnavailableError extends typed(status.UNAVAILABLE) {}
/** The call did not finish before its deadline. */
export class DeadlineExceededError extends typed(status.DEADLINE_EXCEEDED) {}
/** The server knows the call but does not implement it (yet). */
export class UnimplementedError extends typed(status.UNIMPLEMENTED) {}

const BY_CODE: ReadonlyMap<status, ErrorClass> = new Map<status, ErrorClass>([
  [status.INVALID_ARGUMENT, InvalidArgumentError],
  [status.NOT_FOUND, NotFoundError],
  [status.ALREADY_EXISTS, AlreadyExistsError],
  [status.FAILED_PRECONDITION, FailedPreconditionError],
  [status.RESOURCE_EXHAUSTED, ResourceExhaustedError],
  [status.ABORTED, AbortedError],
  [status.UNAVAILABLE, UnavailableError],
  [status.DEADLINE_EXCEEDED, DeadlineExceededError],
  [status.UNIMPLEMENTED, UnimplementedError],
]);

/** Whether a value is an error grpc-js reports for a failed call. */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

/**
 * Returns the typed error for a failed call, or undefined for codes the server
 * does not answer on purpose (the caller then rethrows the original).
 */
export function fromServiceError(error: ServiceError): PolytrialError | undefined {
  const details = readDetails(error);
  // A finite space that runs out is one fault, whichever code a server picks
  // for it (FAILED_PRECONDITION or RESOURCE_EXHAUSTED), so the reason decides.
  const cls = details.reason === SEARCH_SPACE_EXHAUSTED ? SearchSpaceExhaustedError : BY_CODE.get(error.code);
  if (cls === undefined) return undefined;
  return new cls(error.details ?? error.message, details, error);
}

const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

/**
 * Decodes the ErrorInfo and BadRequest of the call's rich status. The few
 * google.rpc messages are read field by field here, since protos/gen/ts holds
 * only Polytrial's own API.
 */
function readDetails(error: ServiceError): ErrorDetails {
  const result = { reason: "", metadata: {} as Record<string, string>, violations: [] as FieldViolation[] };
  const raw = error.metadata?.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Uint8Array)) return result;
  try {
    for (const [typeUrl, value] of readStatusDetails(raw)) {
      if (typeUrl === ERROR_INFO) {
        readFields(value, (field, reader) => {
          if (field === 1) result.reason = reader.string();
          else if (field === 3) {
            const [key, entry] = readMapEntry(reader.bytes());
            result.metadata[key] = entry;
          } else return false;
          return true;
        });
      } else if (typeUrl === BAD_REQUEST) {
        readFields(value, (field, reader) => {
          if (field !== 1) return false;
          const violation = { field: "", description: "" };
          readFields(reader.bytes(), (inner, innerReader) => {
            if (inner === 1) violation.field = innerReader.string();
            else if (inner === 2) violation.description = innerReader.string();
            else return false;
            return true;
          });
          result.violations.push(violation);
          return true;
        });
      }
    }
  } catch {
    // A malformed trailer leaves the code and message of the call standing.
  }
  return result;
}

/** The (type URL, value) of each `Any` in a `google.rpc.Status`. */
function readStatusDetails(bytes: Uint8Array): Array<[string, Uint8Array]> {
  const details: Array<[string, Uint8Array]> = [];
  readFields(bytes, (field, reader) => {
    if (field !== 3) return false;
    let typeUrl = "";
    let value: Uint8Array = new Uint8Array();
    readFields(reader.bytes(), (inner, innerReader) => {
      if (inner === 1) typeUrl = innerReader.string();
      else if (inner === 2) value = innerReader.bytes();
      else return false;
      return true;
    });
    details.push([typeUrl, value]);
    return true;
  });
  return details;
}

function readMapEntry(bytes: Uint8Array): [string, string] {
  let key = "";
  let value = "";
  readFields(bytes, (field, reader) => {
    if (field === 1) key = reader.string();
    else if (field === 2) value = reader.string();
    else return false;
    return true;
  });
  return [key, value];
}

/** Calls `onField` for each field; a field it does not read (false) is skipped. */
function readFields(bytes: Uint8Array, onField: (field: number, reader: BinaryReader) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (wireType === WireType.LengthDelimited && onField(field, reader)) continue;
    reader.skip(wireType);
  }
}
