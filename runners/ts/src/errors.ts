/**
 * Errors a runner throws to refuse or fail a call, and the gRPC code each
 * becomes. The server marks a trial FAILED after INVALID_ARGUMENT or
 * FAILED_PRECONDITION (with the message as reason) and retries with the same
 * deployment key after UNAVAILABLE. Anything else thrown becomes INTERNAL.
 *
 *     RunnerError
 *     ├── InvalidTrial   -> INVALID_ARGUMENT
 *     ├── TrialRefused   -> FAILED_PRECONDITION
 *     ├── TrialNotFound  -> NOT_FOUND
 *     ├── Unavailable    -> UNAVAILABLE
 *     └── NotSupported   -> UNIMPLEMENTED
 */

import { status } from "@grpc/grpc-js";

/** Base of the errors a runner throws on purpose; the message reaches the server. */
export class RunnerError extends Error {
  /** The gRPC status code the error becomes. */
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The trial cannot be run as given, for example a parameter is missing. */
export class InvalidTrial extends RunnerError {
  constructor(message: string) {
    super(status.INVALID_ARGUMENT, message);
  }
}

/** The external system refuses the trial in its current state. */
export class TrialRefused extends RunnerError {
  constructor(message: string) {
    super(status.FAILED_PRECONDITION, message);
  }
}

/** The runner knows no job for the trial (for example after a restart). */
export class TrialNotFound extends RunnerError {
  constructor(message: string) {
    super(status.NOT_FOUND, message);
  }
}

/** The external system cannot be reached right now; the caller may retry. */
export class Unavailable extends RunnerError {
  constructor(message: string) {
    super(status.UNAVAILABLE, message);
  }
}

/** The runner does not offer this optional method. */
export class NotSupported extends RunnerError {
  constructor(message: string) {
    super(status.UNIMPLEMENTED, message);
  }
}
