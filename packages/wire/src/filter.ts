import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The filter language (close to Qdrant's): a clause `{must, should, must_not}`
 * whose entries are conditions or clauses again. The typebox schemas below
 * are the shape of each part; `parseFilter` dispatches on a condition's keys
 * and validates it against its part's schema, so a 400 names the exact place
 * (`filter.must[1].range.gt: Expected number`) rather than "no union branch
 * matched". The store evaluates a parsed filter (packages/store/src/filter.ts);
 * `filterMatches` here is its meaning on one payload.
 */

/** Deepest clause nesting (the top-level clause is depth 1). */
export const MAX_FILTER_DEPTH = 8;
/** Most clauses and conditions in one filter. */
export const MAX_FILTER_CONDITIONS = 256;
/** Most values listed in one filter (match any/except and has_id together). */
export const MAX_FILTER_VALUES = 10_000;
/** Longest payload key path. */
export const MAX_KEY_LENGTH = 256;

const Key = Type.String({ minLength: 1, maxLength: MAX_KEY_LENGTH, description: 'payload field; dots reach into nested objects (meta.lang)' });
export const MatchValue = Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean()]);
const Values = Type.Array(MatchValue, { maxItems: MAX_FILTER_VALUES });

export const MatchExact = Type.Object({ value: MatchValue }, { additionalProperties: false });
export const MatchAny = Type.Object({ any: Values }, { additionalProperties: false });
export const MatchExcept = Type.Object({ except: Values }, { additionalProperties: false });
const Bound = Type.Union([Type.Number(), Type.String({ maxLength: 64, description: 'an ISO-8601 date-time (a datetime range)' })]);
export const RangeBounds = Type.Object({ gt: Type.Optional(Bound), gte: Type.Optional(Bound), lt: Type.Optional(Bound), lte: Type.Optional(Bound) }, { additionalProperties: false });

export const MatchCondition = Type.Object({ key: Key, match: Type.Union([MatchExact, MatchAny, MatchExcept]) }, { additionalProperties: false });
export const RangeCondition = Type.Object({ key: Key, range: RangeBounds }, { additionalProperties: false });
export const HasIdCondition = Type.Object(
  { has_id: Type.Array(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 256 })]), { maxItems: MAX_FILTER_VALUES }) },
  { additionalProperties: false },
);
export const IsEmptyCondition = Type.Object({ is_empty: Type.Object({ key: Key }, { additionalProperties: false }) }, { additionalProperties: false });
/** MatchCondition with each form of `match` alone: what a condition is checked against once its form is known. */
const MATCH_FORMS = {
  value: Type.Object({ key: Key, match: MatchExact }, { additionalProperties: false }),
  any: Type.Object({ key: Key, match: MatchAny }, { additionalProperties: false }),
  except: Type.Object({ key: Key, match: MatchExcept }, { additionalProperties: false }),
};
export const Condition = Type.Union([MatchCondition, RangeCondition, HasIdCondition, IsEmptyCondition]);

/** A filter: every `must` entry holds, at least one `should` entry holds (when there are any), no `must_not` entry holds. */
export const Filter = Type.Recursive(
  (This) =>
    Type.Object(
      {
        must: Type.Optional(Type.Array(Type.Union([Condition, This]))),
        should: Type.Optional(Type.Array(Type.Union([Condition, This]))),
        must_not: Type.Optional(Type.Array(Type.Union([Condition, This]))),
      },
      { additionalProperties: false },
    ),
  { $id: 'Filter' },
);
export type Filter = Static<typeof Filter>;

/**
 * How the filter travels in request bodies: an object the store validates
 * with parseFilter (whose messages say where a filter is wrong; Ajv's on a
 * recursive union would not). README "Filters" documents the language.
 */
export const FilterBody = Type.Unsafe<Filter>({ type: 'object', description: 'a filter: {must?, should?, must_not?} of conditions {key, match: {value | any | except}}, {key, range: {gt, gte, lt, lte}}, {has_id: [...]}, {is_empty: {key}} or nested clauses (README, "Filters")' });

export type MatchValue = Static<typeof MatchValue>;

/** A parsed filter: `match {value}` is `match {any: [value]}`; keys are split into paths; datetime bounds are epoch ms. */
export type FilterNode =
  | { kind: 'clause'; must: FilterNode[]; should: FilterNode[]; mustNot: FilterNode[] }
  // `set`: the listed values again, looked up per payload value (a list may hold 10,000)
  | { kind: 'match'; key: string; path: string[]; values: MatchValue[]; set: ReadonlySet<MatchValue>; except: boolean }
  | { kind: 'range'; key: string; path: string[]; gt?: number; gte?: number; lt?: number; lte?: number; datetime: boolean }
  | { kind: 'has_id'; ids: (number | string)[]; set: ReadonlySet<number | string> }
  | { kind: 'is_empty'; key: string; path: string[] };

export class FilterError extends Error {}

const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO-8601 / RFC 3339 date-time as epoch ms; undefined when the text is
 * not one. Without an offset it is UTC (Date.parse would read a date-time
 * without one as local time, so the answer would depend on the server's zone).
 */
export function parseDatetime(text: string): number | undefined {
  const m = ISO_DATETIME.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const offset = zone === 'Z' || zone === 'z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${offset}`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A key's path: split on dots, every part non-empty. */
export function keyPath(key: string, at: string): string[] {
  const path = key.split('.');
  if (path.some((p) => p.length === 0)) throw new FilterError(`${at}.key ${JSON.stringify(key)} has an empty part (dots separate nested keys)`);
  return path;
}

const CLAUSE_KEYS = new Set(['must', 'should', 'must_not']);

/** Validates a filter into its parsed form, or throws FilterError naming the offending place. */
export function parseFilter(input: unknown): FilterNode {
  let nodes = 0;
  let values = 0;
  const check = (schema: TSchema, value: unknown, at: string) => {
    const error = Value.Errors(schema, value).First();
    if (error) throw new FilterError(`${at}${error.path.replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.')}: ${error.message}${error.message === 'Unexpected property' ? '' : ` (got ${JSON.stringify(error.value) ?? String(error.value)})`}`);
  };
  const count = (n: number, at: string) => {
    if ((values += n) > MAX_FILTER_VALUES) throw new FilterError(`${at}: the filter lists more than ${MAX_FILTER_VALUES} values`);
  };
  const node = (c: unknown, at: string, depth: number): FilterNode => {
    if (++nodes > MAX_FILTER_CONDITIONS) throw new FilterError(`${at}: the filter has more than ${MAX_FILTER_CONDITIONS} clauses and conditions`);
    if (c === null || typeof c !== 'object' || Array.isArray(c) || ArrayBuffer.isView(c)) throw new FilterError(`${at} must be an object (a condition or a clause), got ${JSON.stringify(c) ?? typeof c}`);
    const keys = Object.keys(c);
    const o = c as Record<string, unknown>;
    if (keys.length === 0 || keys.some((k) => CLAUSE_KEYS.has(k))) {
      const unknown = keys.find((k) => !CLAUSE_KEYS.has(k));
      if (unknown !== undefined) throw new FilterError(`${at}: unknown key ${JSON.stringify(unknown)} in a clause (must, should, must_not)`);
      if (depth > MAX_FILTER_DEPTH) throw new FilterError(`${at}: the filter nests deeper than ${MAX_FILTER_DEPTH} clauses`);
      const list = (name: 'must' | 'should' | 'must_not') => {
        const entries = o[name];
        if (entries === undefined) return [];
        if (!Array.isArray(entries)) throw new FilterError(`${at}.${name} must be an array of conditions, got ${JSON.stringify(entries)}`);
        return entries.map((e, i) => node(e, `${at}.${name}[${i}]`, depth + 1));
      };
      return { kind: 'clause', must: list('must'), should: list('should'), mustNot: list('must_not') };
    }
    if ('match' in o) {
      const given = o.match !== null && typeof o.match === 'object' && !Array.isArray(o.match) ? Object.keys(o.match) : undefined;
      const forms = given?.filter((k): k is keyof typeof MATCH_FORMS => Object.hasOwn(MATCH_FORMS, k));
      if (forms?.length === 1) check(MATCH_FORMS[forms[0]], c, at);
      else if (given) throw new FilterError(`${at}.match: give exactly one of value, any, except, got ${given.length ? given.map((k) => JSON.stringify(k)).join(', ') : 'none'}`);
      else check(MatchCondition, c, at);
      const m = o.match as Static<typeof MatchCondition>['match'];
      const key = o.key as string;
      const listed = 'value' in m ? [m.value] : 'any' in m ? m.any : m.except;
      count(listed.length, at);
      return { kind: 'match', key, path: keyPath(key, at), values: listed, set: new Set(listed), except: 'except' in m };
    }
    if ('range' in o) {
      check(RangeCondition, c, at);
      const r = o.range as Static<typeof RangeBounds>;
      const key = o.key as string;
      const given = (['gt', 'gte', 'lt', 'lte'] as const).filter((b) => r[b] !== undefined);
      if (given.length === 0) throw new FilterError(`${at}.range: give at least one of gt, gte, lt, lte`);
      const datetime = typeof r[given[0]] === 'string';
      const out: FilterNode = { kind: 'range', key, path: keyPath(key, at), datetime };
      for (const b of given) {
        const v = r[b]!;
        if ((typeof v === 'string') !== datetime) throw new FilterError(`${at}.range: bounds must be all numbers or all ISO-8601 date-times, got ${JSON.stringify(r)}`);
        const n = typeof v === 'string' ? parseDatetime(v) : v;
        if (n === undefined) throw new FilterError(`${at}.range.${b}: ${JSON.stringify(v)} is not an ISO-8601 date-time (such as 2026-12-01T10:00:00Z)`);
        out[b] = n;
      }
      return out;
    }
    if ('has_id' in o) {
      check(HasIdCondition, c, at);
      const ids = o.has_id as (number | string)[];
      count(ids.length, at);
      return { kind: 'has_id', ids, set: new Set(ids) };
    }
    if ('is_empty' in o) {
      check(IsEmptyCondition, c, at);
      const key = (o.is_empty as { key: string }).key;
      return { kind: 'is_empty', key, path: keyPath(key, at) };
    }
    throw new FilterError(`${at}: unknown condition with keys ${keys.map((k) => JSON.stringify(k)).join(', ')}: expected a clause (must, should, must_not), {key, match}, {key, range}, {has_id} or {is_empty}`);
  };
  return node(input, 'filter', 1);
}

/**
 * The values a payload holds at a path: the leaf, or a leaf array's elements
 * (so a condition on an array holds when it holds for any element); arrays
 * met on the way are walked element by element. Missing gives none.
 */
export function payloadValues(payload: unknown, path: readonly string[]): unknown[] {
  let level: unknown[] = [payload];
  for (const part of path) {
    const next: unknown[] = [];
    const visit = (v: unknown) => {
      if (Array.isArray(v)) v.forEach(visit);
      else if (v !== null && typeof v === 'object' && Object.hasOwn(v, part)) next.push((v as Record<string, unknown>)[part]);
    };
    level.forEach(visit);
    level = next;
  }
  return level.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

/** Whether one leaf condition holds for these values of its key (payloadValues). */
export function conditionHolds(node: Exclude<FilterNode, { kind: 'clause' } | { kind: 'has_id' }>, values: readonly unknown[]): boolean {
  switch (node.kind) {
    case 'is_empty':
      return values.every((v) => v === null);
    case 'match':
      // except: at least one value outside the list, or none at all (Qdrant's reading)
      return node.except ? values.length === 0 || values.some((v) => !node.set.has(v as MatchValue)) : values.some((v) => node.set.has(v as MatchValue));
    case 'range':
      return values.some((v) => {
        const x = node.datetime ? (typeof v === 'string' ? parseDatetime(v) : undefined) : typeof v === 'number' ? v : undefined;
        return x !== undefined && inRange(node, x);
      });
  }
}

export function inRange(r: { gt?: number; gte?: number; lt?: number; lte?: number }, x: number): boolean {
  return (r.gt === undefined || x > r.gt) && (r.gte === undefined || x >= r.gte) && (r.lt === undefined || x < r.lt) && (r.lte === undefined || x <= r.lte);
}

/** Whether a point (its id and payload) passes a parsed filter: the language's meaning, one point at a time. */
export function filterMatches(node: FilterNode, id: number | string, payload: unknown): boolean {
  switch (node.kind) {
    case 'clause':
      return (
        node.must.every((n) => filterMatches(n, id, payload)) &&
        (node.should.length === 0 || node.should.some((n) => filterMatches(n, id, payload))) &&
        !node.mustNot.some((n) => filterMatches(n, id, payload))
      );
    case 'has_id':
      return node.set.has(id);
    default:
      return conditionHolds(node, payloadValues(payload, node.path));
  }
}
