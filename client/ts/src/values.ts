/**
 * Parameter values and results: plain TypeScript values in, API messages out.
 *
 * JavaScript has one number type, so the integer/float distinction the API
 * keeps comes from the experiment: a value for an integer parameter (or a
 * choice of integers) is sent as an integer, any other number as a float.
 * Where the experiment is not known, an integral number is sent as an integer.
 */

import { type Parameter, ParameterType } from "../../../protos/gen/ts/polytrial/v1/experiment";
import type {
  Observation,
  ParameterValue as ParameterValueMessage,
} from "../../../protos/gen/ts/polytrial/v1/values";
import { checkObject, invalidArgument } from "./checks";

/** One parameter value. Integers read from the server are numbers too. */
export type ParameterValue = number | string | boolean;

/** An arm's parameterization: parameter name -> value. */
export type Parameters = Record<string, ParameterValue>;

/** A mean and its standard error; `null` is an unknown standard error. */
export type MeanSem = readonly [mean: number, sem: number | null];

/** One metric's value: a number (unknown standard error) or a (mean, sem) pair. */
export type MetricValue = number | MeanSem;

/**
 * What a caller reports for a single-arm trial: a number or a (mean, sem) pair
 * for the single objective, or an object metric name -> either of those.
 * A bare number says "standard error unknown", not "noiseless": report
 * `[value, 0]` for a noiseless measurement.
 */
export type Result = MetricValue | Readonly<Record<string, MetricValue>>;

/** A batch trial's result: arm name ("{trial index}_{arm index}") -> result. */
export type BatchResult = Readonly<Record<string, Result>>;

/** How numbers of each parameter are sent: "int" or "float", by name. */
export type NumberKinds = ReadonlyMap<string, "int" | "float">;

/** The number kind of each numeric parameter of a search space. */
export function numberKinds(parameters: readonly Parameter[]): NumberKinds {
  const kinds = new Map<string, "int" | "float">();
  for (const parameter of parameters) {
    const kind = parameter.kind;
    if (kind?.$case === "range") {
      kinds.set(parameter.name, kind.range.type === ParameterType.PARAMETER_TYPE_INT ? "int" : "float");
    } else if (kind?.$case === "choice") {
      const numeric = kind.choice.values.find(
        (v) => v.kind?.$case === "intValue" || v.kind?.$case === "floatValue",
      );
      if (numeric !== undefined)
        kinds.set(parameter.name, numeric.kind?.$case === "intValue" ? "int" : "float");
    } else if (kind?.$case === "fixed") {
      const fixed = kind.fixed.value?.kind?.$case;
      if (fixed === "intValue" || fixed === "floatValue") {
        kinds.set(parameter.name, fixed === "intValue" ? "int" : "float");
      }
    }
  }
  return kinds;
}

/**
 * The message of one value; `kind` says how a number is sent. An integer
 * beyond 2^53 is sent as a float where the kind is not known, since a
 * JavaScript number does not hold it exactly.
 *
 * @throws InvalidArgumentError the value is not a number, string or boolean,
 *   or an integer parameter's integral value is beyond 2^53; `field` names it.
 */
export function toValueMessage(
  value: ParameterValue,
  kind?: "int" | "float",
  field = "value",
): ParameterValueMessage {
  switch (typeof value) {
    case "boolean":
      return { kind: { $case: "boolValue", boolValue: value } };
    case "string":
      return { kind: { $case: "stringValue", stringValue: value } };
    case "number": {
      const integral = Number.isInteger(value);
      if (kind === "int" && integral && !Number.isSafeInteger(value))
        throw invalidArgument(field, `${value} is beyond 2^53, where a JavaScript number is no longer exact`);
      const asInt = kind === "int" || (kind === undefined && Number.isSafeInteger(value));
      return asInt && integral
        ? { kind: { $case: "intValue", intValue: value } }
        : { kind: { $case: "floatValue", floatValue: value } };
    }
  }
  throw invalidArgument(
    field,
    `${String(value)} is a ${typeof value}; parameter values are numbers, strings or booleans`,
  );
}

/** The plain value of a message. */
export function fromValueMessage(message: ParameterValueMessage | undefined): ParameterValue {
  const kind = message?.kind;
  switch (kind?.$case) {
    case "intValue":
      return kind.intValue;
    case "floatValue":
      return kind.floatValue;
    case "stringValue":
      return kind.stringValue;
    case "boolValue":
      return kind.boolValue;
  }
  throw new TypeError("a ParameterValue without a value");
}

/** A map of value messages for a parameterization; `field` names it in errors. */
export function toParametersMessage(
  parameters: Readonly<Parameters>,
  kinds?: NumberKinds,
  field = "parameters",
): Record<string, ParameterValueMessage> {
  const messages: Record<string, ParameterValueMessage> = {};
  for (const [name, value] of Object.entries(checkObject(field, parameters)))
    messages[name] = toValueMessage(value as ParameterValue, kinds?.get(name), `${field}.${name}`);
  return messages;
}

/** The plain parameterization of a map of value messages. */
export function fromParametersMessage(messages: Readonly<Record<string, ParameterValueMessage>>): Parameters {
  const parameters: Parameters = {};
  for (const [name, message] of Object.entries(messages)) parameters[name] = fromValueMessage(message);
  return parameters;
}

function isMeanSem(value: unknown): value is MeanSem {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === "number" &&
    (value[1] === null || typeof value[1] === "number")
  );
}

/**
 * The Observation messages of a result for one arm.
 *
 * @param field how the caller named `result`, for errors: "result", or
 *   "result.3_1" for an arm of a batch.
 * @throws InvalidArgumentError the result is not a number, a (mean, sem) pair
 *   or an object of those; it has no metric; or a bare value is given for an
 *   experiment that has not exactly one objective.
 */
export function toObservations(
  result: Result,
  armName: string,
  objectives: readonly string[],
  field = "result",
): Observation[] {
  let byMetric: Readonly<Record<string, unknown>>;
  if (typeof result === "number" || isMeanSem(result)) {
    if (objectives.length !== 1) {
      throw invalidArgument(
        field,
        `a bare value needs exactly one objective, and the experiment has ` +
          `[${objectives.join(", ")}]; report an object metric name -> value`,
      );
    }
    byMetric = { [objectives[0]]: result };
  } else {
    byMetric = checkObject(field, result);
  }
  const names = Object.keys(byMetric);
  if (names.length === 0) throw invalidArgument(field, "has no metric; report at least one");
  return names.map((metricName) => {
    const value = byMetric[metricName];
    if (typeof value === "number")
      return { armName, metricName, mean: value, sem: undefined, step: undefined };
    if (isMeanSem(value)) {
      return { armName, metricName, mean: value[0], sem: value[1] ?? undefined, step: undefined };
    }
    throw invalidArgument(
      byMetric === result ? `${field}.${metricName}` : field,
      `${String(value)} is not a number or a [mean, sem] pair`,
    );
  });
}

/** Whether `result` is keyed by the arm names of trial `trialIndex`. */
export function isBatchResult(result: Result | BatchResult, trialIndex: number): result is BatchResult {
  // A null result from a plain-JavaScript caller is refused by toObservations.
  if (typeof result !== "object" || result === null || Array.isArray(result)) return false;
  const keys = Object.keys(result);
  const armName = new RegExp(`^${trialIndex}_[0-9]+$`);
  return keys.length > 0 && keys.every((key) => armName.test(key));
}

/** Whether a result has a bare value, which stands for the single objective. */
export function needsObjectives(result: Result | BatchResult, trialIndex: number): boolean {
  if (isBatchResult(result, trialIndex))
    return Object.values(result).some((r) => needsObjectives(r, trialIndex));
  return typeof result === "number" || isMeanSem(result);
}

/** The Observation messages of a single-arm or batch result. */
export function toTrialObservations(
  result: Result | BatchResult,
  trialIndex: number,
  armName: string,
  objectives: readonly string[],
): Observation[] {
  if (!isBatchResult(result, trialIndex)) return toObservations(result, armName, objectives);
  return Object.entries(result).flatMap(([arm, armResult]) =>
    toObservations(armResult, arm, objectives, `result.${arm}`),
  );
}

/** Why observations cannot be reported (a non-finite value), or "". */
export function problemWith(observations: readonly Observation[]): string {
  for (const o of observations) {
    if (!Number.isFinite(o.mean)) return `the evaluation returned ${o.mean} for "${o.metricName}"`;
    if (o.sem !== undefined && !(Number.isFinite(o.sem) && o.sem >= 0)) {
      return `the evaluation returned the standard error ${o.sem} for "${o.metricName}"`;
    }
  }
  return "";
}
