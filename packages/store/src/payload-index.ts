import { keyPath, PAYLOAD_INDEX_TYPES, parseDatetime, payloadValues, type PayloadIndexType } from '@adanns/wire';
import { invalid } from './errors.js';

/**
 * Payload indexes live in the collection's LMDB, one sub-database for all
 * fields, as ordered keys with no value to speak of:
 *   [field, 1, value, iid]  the point iid holds `value` at `field` (indexed form)
 *   [field, 0, iid]         the point holds something there the index cannot
 *                           hold (a value of another type, null, an over-long
 *                           keyword): conditions on the field read its payload
 * lmdb's ordered-binary keys sort numbers numerically (negatives and
 * fractions included) and strings by code unit, so a range is one key-range
 * scan and an equality one prefix scan. The `0` entries make an indexed
 * condition give exactly what reading every payload would: a value the index
 * cannot hold is checked from the payload, never silently missed.
 */
export { PAYLOAD_INDEX_TYPES, type PayloadIndexType };
export type IndexKey = [string, 1, string | number | boolean, number] | [string, 0, number];

/** Longest keyword (UTF-8 bytes) kept in an index key (LMDB keys are at most 1978 bytes); longer ones read the payload. */
export const MAX_KEYWORD_BYTES = 1024;

export interface PayloadIndexDecl {
  type: PayloadIndexType;
  /**
   * building: being filled over existing points (conditions read payloads
   * meanwhile); dropping: being removed; failed: the build stopped on `error`
   * (conditions read payloads; retried on the next open or PUT).
   */
  state: 'building' | 'ready' | 'dropping' | 'failed';
  error?: string;
}

/** The indexed form of a value, or undefined when an index of this type cannot hold it. */
export function indexedValue(type: PayloadIndexType, v: unknown): string | number | boolean | undefined {
  switch (type) {
    case 'keyword':
      return typeof v === 'string' && Buffer.byteLength(v) <= MAX_KEYWORD_BYTES ? v : undefined;
    case 'integer':
      return typeof v === 'number' && Number.isSafeInteger(v) ? v + 0 : undefined; // + 0: -0 is 0
    case 'float':
      return typeof v === 'number' && Number.isFinite(v) ? v + 0 : undefined;
    case 'bool':
      return typeof v === 'boolean' ? v : undefined;
    case 'datetime':
      return typeof v === 'string' ? parseDatetime(v) : undefined;
  }
}

/** The index keys of one point's payload for one field (none when the field is missing or an empty array). */
export function indexKeys(field: string, type: PayloadIndexType, payload: unknown, iid: number): IndexKey[] {
  if (payload === undefined) return [];
  const keys: IndexKey[] = [];
  const seen = new Set<unknown>();
  let other = false;
  for (const v of payloadValues(payload, keyPath(field, 'field'))) {
    const x = indexedValue(type, v);
    if (x === undefined) other = true;
    else if (!seen.has(x)) {
      seen.add(x);
      keys.push([field, 1, x, iid]);
    }
  }
  if (other) keys.push([field, 0, iid]);
  return keys;
}

export function checkPayloadIndex(field: unknown, type: unknown): { field: string; type: PayloadIndexType } {
  if (typeof field !== 'string' || field.length === 0 || field.length > 256 || field.split('.').some((p) => p.length === 0)) {
    throw invalid(`payload index field must be 1-256 characters, dots separating non-empty nested keys, got ${JSON.stringify(field)}`);
  }
  if (!(PAYLOAD_INDEX_TYPES as readonly unknown[]).includes(type)) throw invalid(`payload index type for ${JSON.stringify(field)} must be one of ${PAYLOAD_INDEX_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
  return { field, type: type as PayloadIndexType };
}
