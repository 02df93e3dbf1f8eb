/**
 * Checks of arguments the client cannot send as they are.
 *
 * Plain-JavaScript and JSON callers have no type checker, and protobuf's
 * encoder fails on a fractional or out-of-range integer with an untyped
 * INTERNAL "serialization failure". So integers are checked against the range
 * of their proto field, and strings that stand for an enum against the names
 * the client knows, before anything is sent. A refused argument is an
 * `InvalidArgumentError` whose one violation names it as the caller wrote it
 * (`options.maxTrials`, `objectives.loss`), like the server's own answer.
 */

import { InvalidArgumentError } from "./errors";

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The error for one refused argument: "{field}: {description}". */
export function invalidArgument(field: string, description: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${description}`, { violations: [{ field, description }] });
}

/** A short rendering of a refused value for a message. */
function show(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = JSON.stringify(value);
  else if (typeof value === "bigint") text = `${value}n`;
  else if (typeof value === "object" && value !== null) {
    try {
      text = JSON.stringify(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  } else text = String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function checkInteger(field: string, value: unknown, min: number, max: number, range: string): number {
  if (typeof value !== "number" || !Number.isInteger(value))
    throw invalidArgument(field, `${show(value)} is not an integer`);
  if (value < min || value > max) throw invalidArgument(field, `${show(value)} is outside ${range}`);
  return value;
}

/** `value` if it is an integer that fits a proto int32. */
export function checkInt32(field: string, value: unknown): number {
  return checkInteger(field, value, INT32_MIN, INT32_MAX, "the int32 range [-2^31, 2^31 - 1]");
}

/**
 * `value` if it is an integer a proto int64 carries exactly: JavaScript numbers
 * hold every integer only up to 2^53, so larger ones are refused rather than
 * sent rounded.
 */
export function checkInt64(field: string, value: unknown): number {
  return checkInteger(
    field,
    value,
    Number.MIN_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER,
    "[-(2^53 - 1), 2^53 - 1], the integers a JavaScript number holds exactly",
  );
}

/** `value` if it is a number (a proto double); the server judges its range. */
export function checkNumber(field: string, value: unknown): number {
  if (typeof value !== "number") throw invalidArgument(field, `${show(value)} is not a number`);
  return value;
}

/** `value` if it is a string (the server judges its form). */
export function checkString(field: string, value: unknown): string {
  if (typeof value !== "string") throw invalidArgument(field, `${show(value)} is not a string`);
  return value;
}

/** `check(field, value)` unless `value` is undefined. */
export function optional<T>(
  check: (field: string, value: unknown) => T,
  field: string,
  value: unknown,
): T | undefined {
  return value === undefined ? undefined : check(field, value);
}

/** `value` if it is one of `allowed`. */
export function checkChoice<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw invalidArgument(
      field,
      `${show(value)} is not one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`,
    );
  }
  return value as T;
}

/** `value` if it is a plain object (not null, not an array). */
export function checkObject(field: string, value: unknown): Readonly<Record<string, unknown>> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalidArgument(field, `${show(value)} is not an object`);
  return value as Readonly<Record<string, unknown>>;
}

/**
 * `given` if it has no key outside `known`: a misspelt or unsupported option
 * would otherwise be dropped without a word. An unknown key is refused as
 * "{field}.{key}", listing the known ones.
 */
export function checkKeys(
  field: string,
  given: Readonly<Record<string, unknown>>,
  known: Readonly<Record<string, true>>,
): Readonly<Record<string, unknown>> {
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(known, key))
      throw invalidArgument(`${field}.${key}`, `unknown option; known: ${Object.keys(known).join(", ")}`);
  }
  return given;
}

/** `value` if it is a plain object with no key outside `known` (see `checkKeys`). */
export function checkOptions(
  field: string,
  value: unknown,
  known: Readonly<Record<string, true>>,
): Readonly<Record<string, unknown>> {
  return checkKeys(field, checkObject(field, value), known);
}

/** `value` if it is an array. */
export function checkArray(field: string, value: unknown): readonly unknown[] {
  if (!Array.isArray(value)) throw invalidArgument(field, `${show(value)} is not an array`);
  return value;
}

/**
 * `value` if a google.protobuf.Struct holds it as it is: null, a boolean, a
 * finite number, a string, or an array or plain object of those. Anything
 * else (undefined, a function, a bigint, NaN) would be dropped or fail in
 * the encoder, so it is refused naming where it sits (`properties.a[0]`).
 */
export function checkJson(field: string, value: unknown): unknown {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalidArgument(field, `${value} is not a finite number`);
    return value;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(`${field}[${i}]`, item));
    return value;
  }
  const prototype: unknown = typeof value === "object" ? Object.getPrototypeOf(value) : undefined;
  if (prototype === Object.prototype || prototype === null) {
    for (const [key, item] of Object.entries(value as object)) checkJson(`${field}.${key}`, item);
    return value;
  }
  throw invalidArgument(
    field,
    `${show(value)} is a ${typeof value}; a Struct holds null, booleans, finite numbers, strings, arrays and plain objects`,
  );
}
