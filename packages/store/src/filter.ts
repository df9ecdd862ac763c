import { countBits, type AllowedIds } from '@adanns/core';
import { conditionHolds, FilterError, inRange, parseFilter, payloadValues, type FilterNode } from '@adanns/wire';
import { invalid } from './errors.js';
import { indexedValue, type PayloadIndexDecl } from './payload-index.js';
import type { PointId, PointStore } from './points.js';
import { searchSlices } from './slices.js';

type Leaf = Extract<FilterNode, { kind: 'match' | 'range' | 'is_empty' }>;

/** Points whose payloads are read per event-loop turn when a condition has no index. */
const PAYLOADS_PER_TURN = 4096;

/** A filter's answer: the internal ids it allows (never a deleted point) and the fields it had to read payloads for. */
export interface FilterAnswer {
  allowed: AllowedIds;
  /** Keys of conditions answered by reading every point's payload (no ready payload index fits them). */
  unindexed: string[];
  /** A note for the answer naming those fields, or null. */
  note: string | null;
}

/** Parses a request's filter (parseFilter in @adanns/wire); a malformed one is a 400 naming the place. */
export function checkFilter(input: unknown): FilterNode {
  try {
    return parseFilter(input);
  } catch (e) {
    if (e instanceof FilterError) throw invalid(e.message);
    throw e;
  }
}

/** The ready payload index a leaf condition can be answered from, if any. */
function indexFor(leaf: Leaf, indexes: Record<string, PayloadIndexDecl>): PayloadIndexDecl | undefined {
  const decl = indexes[leaf.key];
  if (!decl || decl.state !== 'ready') return undefined;
  switch (leaf.kind) {
    case 'is_empty':
      return decl;
    // a datetime index holds instants, a match compares the strings themselves
    case 'match':
      return decl.type === 'datetime' ? undefined : decl;
    case 'range':
      return (leaf.datetime ? decl.type === 'datetime' : decl.type === 'integer' || decl.type === 'float') ? decl : undefined;
  }
}

const set = (bits: Uint32Array, i: number) => (bits[i >>> 5] |= 1 << (i & 31));

/**
 * Evaluates a parsed filter over a collection's points into a bitset over
 * internal ids. Conditions with a ready payload index are set operations on
 * its key scans; the others are answered by one pass over every payload
 * (a bounded number per event-loop turn), and the answer names them.
 */
export async function evaluateFilter(points: PointStore, root: FilterNode): Promise<FilterAnswer> {
  const words = (points.iidBound + 31) >>> 5;
  const live = points.liveBits(words);
  const indexes = points.payloadIndexes();
  const leaves: Leaf[] = [];
  const collect = (n: FilterNode) => {
    if (n.kind === 'clause') [...n.must, ...n.should, ...n.mustNot].forEach(collect);
    else if (n.kind !== 'has_id') leaves.push(n);
  };
  collect(root);
  const unindexed = leaves.filter((l) => !indexFor(l, indexes));
  const scanned = new Map<Leaf, Uint32Array>(unindexed.map((l) => [l, new Uint32Array(words)]));
  if (unindexed.length > 0) {
    // one pass over every payload for all unindexed conditions together
    let after: PointId | undefined;
    let more = true;
    while (more) {
      await searchSlices.run(async () => {
        let n = 0;
        more = false;
        points.forEachPoint((iid, id, payload) => {
          if (n++ === PAYLOADS_PER_TURN) {
            more = true;
            return false;
          }
          after = id;
          if (iid >= words * 32) return; // upserted after this evaluation began
          for (const [leaf, bits] of scanned) if (conditionHolds(leaf, payloadValues(payload, leaf.path))) set(bits, iid);
        }, after);
      });
    }
  }

  const fromIndex = (leaf: Leaf, decl: PayloadIndexDecl): Uint32Array => {
    const bits = new Uint32Array(words);
    const present = new Uint32Array(words);
    const inBounds = (iid: number) => iid < words * 32;
    if (leaf.kind === 'match' && !leaf.except) {
      for (const v of new Set(leaf.values.map((x) => indexedValue(decl.type, x)))) {
        if (v === undefined) continue; // the index holds no such value; payloads holding one are checked below
        points.scanPayloadIndex(leaf.key, 1, v, (value, iid) => {
          if (value !== v) return false;
          if (inBounds(iid)) set(bits, iid);
        });
      }
    } else if (leaf.kind === 'range') {
      const from = leaf.gte ?? leaf.gt;
      const to = leaf.lte ?? leaf.lt;
      points.scanPayloadIndex(leaf.key, 1, from, (value, iid) => {
        if (to !== undefined && (value as number) > to) return false;
        if (inBounds(iid) && inRange(leaf, value as number)) set(bits, iid);
      });
    } else {
      // is_empty and except: every indexed value is walked; points with none are empty
      const listed = leaf.kind === 'match' ? new Set(leaf.values.map((x) => indexedValue(decl.type, x))) : undefined;
      points.scanPayloadIndex(leaf.key, 1, undefined, (value, iid) => {
        if (!inBounds(iid)) return;
        set(present, iid);
        if (listed && !listed.has(value)) set(bits, iid);
      });
      for (let w = 0; w < words; w++) bits[w] |= live[w] & ~present[w];
    }
    // points holding values the index cannot hold: their payloads decide
    points.scanPayloadIndex(leaf.key, 0, undefined, (_, iid) => {
      if (!inBounds(iid)) return;
      bits[iid >>> 5] &= ~(1 << (iid & 31));
      const payload = points.payloadOfIid(iid);
      if (conditionHolds(leaf, payloadValues(payload, leaf.path))) set(bits, iid);
    });
    return bits;
  };

  const evaluate = (n: FilterNode): Uint32Array => {
    switch (n.kind) {
      case 'clause': {
        const acc = Uint32Array.from(live);
        for (const m of n.must) {
          const b = evaluate(m);
          for (let w = 0; w < words; w++) acc[w] &= b[w];
        }
        if (n.should.length > 0) {
          const any = new Uint32Array(words);
          for (const s of n.should) {
            const b = evaluate(s);
            for (let w = 0; w < words; w++) any[w] |= b[w];
          }
          for (let w = 0; w < words; w++) acc[w] &= any[w];
        }
        for (const m of n.mustNot) {
          const b = evaluate(m);
          for (let w = 0; w < words; w++) acc[w] &= ~b[w];
        }
        return acc;
      }
      case 'has_id': {
        const bits = new Uint32Array(words);
        for (const id of n.ids) {
          const iid = points.iidOf(id);
          if (iid !== undefined && iid < words * 32) set(bits, iid);
        }
        return bits;
      }
      default:
        return scanned.get(n) ?? fromIndex(n, indexFor(n, indexes)!);
    }
  };
  const bits = evaluate(root);
  // deleted points never pass, whatever the conditions said
  for (let w = 0; w < words; w++) bits[w] &= live[w];
  const fields = [...new Set(unindexed.map((l) => l.key))];
  const building = fields.filter((f) => indexes[f]?.state === 'building');
  const note =
    fields.length === 0
      ? null
      : `the filter read every point's payload for ${fields.map((f) => JSON.stringify(f)).join(', ')} (no payload index fits ${fields.length === 1 ? 'that condition' : 'those conditions'}${building.length ? `; ${building.join(', ')} still building` : ''}): slower; PUT /v1/collections/{name}/payload-index/{field} creates one`;
  return { allowed: { bits, count: countBits(bits) }, unindexed: fields, note };
}
