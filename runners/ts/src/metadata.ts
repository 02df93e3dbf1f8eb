/**
 * Checks that what a runner returns as metadata is a JSON object.
 *
 * Run metadata travels as a protobuf `Struct` and is stored as JSON, so it must
 * be a plain object whose values are null, booleans, numbers, strings, arrays
 * and plain objects of the same. Anything else (a Date, a Map, a class
 * instance, a function, a BigInt) is named with its path before the answer is
 * built, instead of becoming "Error serializing response" or a silently
 * mangled value ("hello" as {"0": "h", ...}, a Date as {}). NaN and
 * infinities are numbers to a `Struct`; the server refuses them, naming where.
 */

/** Returns why `metadata` cannot be sent as a JSON object, or undefined if it can. */
export function metadataProblem(metadata: unknown): string | undefined {
  if (metadata === undefined) return undefined;
  if (!isPlainObject(metadata)) {
    return `run metadata is ${describe(metadata)}, not a plain object`;
  }
  return objectProblem(metadata, "");
}

/** Returns the top-level fields of `metadata` that JSON can hold. */
export function representableFields(metadata: unknown): Record<string, unknown> {
  if (!isPlainObject(metadata)) return {};
  return Object.fromEntries(
    Object.entries(metadata).filter(([key, value]) => valueProblem(value, key) === undefined),
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function objectProblem(data: Record<string, unknown>, path: string): string | undefined {
  for (const [key, value] of Object.entries(data)) {
    const problem = valueProblem(value, path ? `${path}.${key}` : key);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function valueProblem(value: unknown, path: string): string | undefined {
  // undefined is what JSON.stringify leaves out; a Struct stores it as no value.
  if (value === null || value === undefined) return undefined;
  if (typeof value === "boolean" || typeof value === "number" || typeof value === "string") {
    return undefined;
  }
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const problem = valueProblem(value[index], `${path}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (isPlainObject(value)) return objectProblem(value, path);
  return `run metadata field '${path}' is ${describe(value)}, which JSON cannot hold`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor
      ?.name;
    return name ? article(name) : "an object";
  }
  return article(typeof value);
}

function article(name: string): string {
  return `${/^[aeiou]/i.test(name) ? "an" : "a"} ${name}`;
}
