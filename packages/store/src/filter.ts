import { countBits, type AllowedIds } from '@adanns/core';
import { conditionHolds, FilterError, filterMatches, inRange, parseFilter, payloadValues, type FilterNode } from '@adanns/wire';
import { invalid, StoreError } from './errors.js';
import { indexedValue, type IndexKey, type PayloadIndexDecl } from './payload-index.js';
import type { PointId, PointStore, ReadSnapshot } from './points.js';
import { searchSlices } from './slices.js';

type Leaf = Extract<FilterNode, { kind: 'match' | 'range' | 'is_empty' }>;

/**
 * Work done per event-loop turn while a filter is evaluated, so that a
 * filter over a large collection never blocks the loop for long: index keys
 * visited (a key whose value the index cannot hold costs a payload read,
 * counted as PAYLOAD_READ_KEYS keys), or payloads x conditions checked when
 * payloads are read. (An object so tests can make turns small.)
 */
export const filterWork = { keysPerTurn: 65_536, conditionChecksPerTurn: 65_536 };
const PAYLOAD_READ_KEYS = 16;

/** A filter's answer: the internal ids it allows (never a deleted point), and a note naming the fields it had to read payloads for. */
export interface FilterAnswer {
  allowed: AllowedIds;
  /** A note for the answer naming the fields no ready payload index fits, or null. */
  note: string | null;
}

export interface EvaluateOptions {
  /** Stops the evaluation at its next turn (the client went away). */
  signal?: AbortSignal | undefined;
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
const has = (bits: Uint32Array, i: number) => ((bits[i >>> 5] >>> (i & 31)) & 1) === 1;

/** The leaf conditions of a filter (has_id aside: it needs no index). */
function leavesOf(n: FilterNode, out: Leaf[] = []): Leaf[] {
  if (n.kind === 'clause') [...n.must, ...n.should, ...n.mustNot].forEach((c) => leavesOf(c, out));
  else if (n.kind !== 'has_id') out.push(n);
  return out;
}

/** Conditions (has_id included) a point is checked against when the whole filter is evaluated on its payload. */
function conditionCount(n: FilterNode): number {
  return n.kind === 'clause' ? [...n.must, ...n.should, ...n.mustNot].reduce((s, c) => s + conditionCount(c), 0) : 1;
}

/** A leaf's identity: two leaves with the same one give the same bits. */
const leafKey = (leaf: Leaf): string => JSON.stringify({ ...leaf, set: undefined });

/**
 * Evaluates a parsed filter over a collection's points into a bitset over
 * internal ids, within one LMDB read transaction (PointStore.readSnapshot):
 * the answer is the filter over the stored state when the evaluation began,
 * whatever is written meanwhile. (A point being deleted then counts as gone
 * already, one being upserted by a write not yet committed as not there or
 * with its old payload.) The work is cut into bounded turns (filterWork) so other requests are answered between them.
 *
 * When a ready payload index fits every condition, the filter is set
 * operations on key scans of the indexes. Otherwise each point's payload is
 * read once and the filter evaluated on it (filterMatches, into one bitset),
 * over only the points the indexed `must` conditions of the top clause allow.
 */
export async function evaluateFilter(points: PointStore, root: FilterNode, options: EvaluateOptions = {}): Promise<FilterAnswer> {
  const indexes = points.payloadIndexes();
  const unindexedLeaves = leavesOf(root).filter((l) => !indexFor(l, indexes));
  const { snapshot, live, words } = points.readSnapshot();
  try {
    const turns = new Turns(options.signal);
    turns.check();
    let bits: Uint32Array;
    if (unindexedLeaves.length === 0) bits = await new IndexedEvaluation(points, snapshot, indexes, live, words, turns, root).evaluate(root);
    else {
      // the top clause's must entries an index answers alone narrow the points whose payloads are read
      const indexed = (n: FilterNode) => leavesOf(n).every((l) => indexFor(l, indexes));
      const narrowing = root.kind === 'clause' ? root.must.filter(indexed) : [];
      const rest: FilterNode = root.kind === 'clause' ? { ...root, must: root.must.filter((m) => !indexed(m)) } : root;
      const evaluation = new IndexedEvaluation(points, snapshot, indexes, live, words, turns, root);
      const candidates = Uint32Array.from(live);
      for (const m of narrowing) {
        const b = await evaluation.evaluate(m);
        for (let w = 0; w < words; w++) candidates[w] &= b[w];
      }
      bits = await payloadPass(points, snapshot, candidates, words, rest, turns);
    }
    // deleted points never pass, whatever the conditions said
    for (let w = 0; w < words; w++) bits[w] &= live[w];
    const fields = [...new Set(unindexedLeaves.map((l) => l.key))];
    const pending = fields.filter((f) => indexes[f] && indexes[f].state !== 'ready').map((f) => `${f} ${indexes[f].state === 'failed' ? 'failed to build' : `still ${indexes[f].state}`}`);
    const note =
      fields.length === 0
        ? null
        : `the filter read every point's payload for ${fields.map((f) => JSON.stringify(f)).join(', ')} (no payload index fits ${fields.length === 1 ? 'that condition' : 'those conditions'}${pending.length ? `; ${pending.join(', ')}` : ''}): slower; PUT /v1/collections/{name}/payload-index/{field} creates one`;
    return { allowed: { bits, count: countBits(bits) }, note };
  } finally {
    snapshot.done();
  }
}

/** A work budget per event-loop turn: `take` spends it, and waits for the next turn (process-wide, searchSlices) once it is spent. */
class Turns {
  left: number;
  constructor(private readonly signal: AbortSignal | undefined) {
    this.left = filterWork.keysPerTurn;
  }

  /** Waits for the next turn (and checks the signal there). */
  async next(): Promise<void> {
    this.check();
    await searchSlices.run(async () => this.check());
    this.left = filterWork.keysPerTurn;
  }

  async take(n: number): Promise<void> {
    if ((this.left -= n) <= 0) await this.next();
  }

  check(): void {
    if (this.signal?.aborted) throw new StoreError('unavailable', 'search cancelled: the client went away');
  }
}

/**
 * Reads the payload of every candidate point and sets its bit when the
 * filter holds on it: in id order over every point, or by internal id when
 * the candidates are few (two reads each instead of one pass over all).
 */
async function payloadPass(points: PointStore, snapshot: ReadSnapshot, candidates: Uint32Array, words: number, node: FilterNode, turns: Turns): Promise<Uint32Array> {
  const bits = new Uint32Array(words);
  const perTurn = Math.max(1, Math.floor(filterWork.conditionChecksPerTurn / Math.max(1, conditionCount(node))));
  const count = countBits(candidates);
  if (count * 4 < points.count) {
    let done = 0;
    for (let w = 0; w < words; w++) {
      for (let word = candidates[w]; word !== 0; word &= word - 1) {
        const iid = w * 32 + 31 - Math.clz32(word & -word);
        const point = points.pointOfIid(iid, snapshot);
        if (point && filterMatches(node, point.id, point.payload)) set(bits, iid);
        if (++done % perTurn === 0) await turns.next();
      }
    }
    return bits;
  }
  let after: PointId | undefined;
  let more = true;
  while (more) {
    let n = 0;
    more = false;
    points.forEachPoint(
      (iid, id, payload) => {
        if (n++ === perTurn) {
          more = true;
          return false;
        }
        after = id;
        if (iid < words * 32 && has(candidates, iid) && filterMatches(node, id, payload)) set(bits, iid);
      },
      after,
      snapshot,
    );
    if (more) await turns.next();
  }
  return bits;
}

/** Set operations over payload index key scans, in bounded turns; a condition met twice in one filter is scanned once. */
class IndexedEvaluation {
  private readonly repeated = new Map<string, Uint32Array | undefined>();

  constructor(
    private readonly points: PointStore,
    private readonly snapshot: ReadSnapshot,
    private readonly indexes: Record<string, PayloadIndexDecl>,
    private readonly live: Uint32Array,
    private readonly words: number,
    private readonly turns: Turns,
    root: FilterNode,
  ) {
    // only leaves met more than once are kept (each bitset is next-iid bits)
    const seen = new Set<string>();
    for (const leaf of leavesOf(root)) {
      const key = leafKey(leaf);
      if (seen.has(key)) this.repeated.set(key, undefined);
      seen.add(key);
    }
  }

  /** Scans one field's keys with a tag from `from` on, within the snapshot, a turn's budget at a time. */
  private async scan(field: string, tag: 0 | 1, from: string | number | boolean | undefined, visit: (value: string | number | boolean, iid: number) => boolean | void, cost = 1): Promise<void> {
    let after: IndexKey | undefined;
    do {
      const max = Math.max(1, Math.floor(this.turns.left / cost));
      let visited = 0;
      after = this.points.scanPayloadIndex(field, tag, from, (value, iid) => (visited++, visit(value, iid)), { snapshot: this.snapshot, max, ...(after ? { after } : {}) });
      await this.turns.take(after ? Infinity : visited * cost);
    } while (after);
  }

  async evaluate(n: FilterNode): Promise<Uint32Array> {
    const { words } = this;
    switch (n.kind) {
      case 'clause': {
        const acc = Uint32Array.from(this.live);
        for (const m of n.must) {
          const b = await this.evaluate(m);
          for (let w = 0; w < words; w++) acc[w] &= b[w];
        }
        if (n.should.length > 0) {
          const any = new Uint32Array(words);
          for (const s of n.should) {
            const b = await this.evaluate(s);
            for (let w = 0; w < words; w++) any[w] |= b[w];
          }
          for (let w = 0; w < words; w++) acc[w] &= any[w];
        }
        for (const m of n.mustNot) {
          const b = await this.evaluate(m);
          for (let w = 0; w < words; w++) acc[w] &= ~b[w];
        }
        return acc;
      }
      case 'has_id': {
        const bits = new Uint32Array(words);
        for (const id of n.set) {
          const iid = this.points.iidOf(id, this.snapshot);
          if (iid !== undefined && iid < words * 32) set(bits, iid);
          await this.turns.take(1);
        }
        return bits;
      }
      default: {
        const key = leafKey(n);
        const kept = this.repeated.get(key);
        if (kept) return kept;
        const bits = await this.leaf(n, indexFor(n, this.indexes)!);
        if (this.repeated.has(key)) this.repeated.set(key, bits);
        return bits;
      }
    }
  }

  private async leaf(leaf: Leaf, decl: PayloadIndexDecl): Promise<Uint32Array> {
    const { words } = this;
    const bits = new Uint32Array(words);
    const inBounds = (iid: number) => iid < words * 32;
    if (leaf.kind === 'match' && !leaf.except) {
      for (const v of new Set(leaf.values.map((x) => indexedValue(decl.type, x)))) {
        if (v === undefined) continue; // the index holds no such value; payloads holding one are checked below
        await this.scan(leaf.key, 1, v, (value, iid) => {
          if (value !== v) return false;
          if (inBounds(iid)) set(bits, iid);
        });
      }
    } else if (leaf.kind === 'range') {
      const from = leaf.gte ?? leaf.gt;
      const to = leaf.lte ?? leaf.lt;
      await this.scan(leaf.key, 1, from, (value, iid) => {
        if (to !== undefined && (value as number) > to) return false;
        if (inBounds(iid) && inRange(leaf, value as number)) set(bits, iid);
      });
    } else {
      // is_empty and except: every indexed value is walked; points with none are empty
      const present = new Uint32Array(words);
      const listed = leaf.kind === 'match' ? new Set(leaf.values.map((x) => indexedValue(decl.type, x))) : undefined;
      await this.scan(leaf.key, 1, undefined, (value, iid) => {
        if (!inBounds(iid)) return;
        set(present, iid);
        if (listed && !listed.has(value)) set(bits, iid);
      });
      for (let w = 0; w < words; w++) bits[w] |= this.live[w] & ~present[w];
    }
    // points holding values the index cannot hold: their payloads decide
    await this.scan(
      leaf.key,
      0,
      undefined,
      (_, iid) => {
        if (!inBounds(iid)) return;
        bits[iid >>> 5] &= ~(1 << (iid & 31));
        const point = this.points.pointOfIid(iid, this.snapshot);
        if (point && conditionHolds(leaf, payloadValues(point.payload, leaf.path))) set(bits, iid);
      },
      PAYLOAD_READ_KEYS,
    );
    return bits;
  }
}
