import type { Payload, PointId, PayloadIndexType } from '@adanns/store';

/**
 * What a shard's log holds: one JSON message per write, applied by every
 * replica in stream order. Vectors travel as the base64 of their float32
 * bytes, so every replica stores the very bits the writer validated.
 */
export type LogEntry =
  | { op: 'upsert'; points: { id: PointId; v: string; payload?: Payload }[] }
  | { op: 'delete'; ids: PointId[] }
  /** Evaluated by each replica at this point of the log, so all delete the same points. */
  | { op: 'delete-filter'; filter: unknown }
  /**
   * Replicas start an index build when they reach it: one replica per shard
   * trains, on the coarse quantiser that one of them trains for the whole
   * collection for this request `id` (absent in older logs: each shard trains its own).
   */
  | { op: 'build'; id?: string }
  | { op: 'payload-index'; field: string; type: PayloadIndexType }
  | { op: 'drop-payload-index'; field: string };

export function encodeEntry(entry: LogEntry): Uint8Array {
  return Buffer.from(JSON.stringify(entry));
}

export function decodeEntry(data: Uint8Array): LogEntry {
  const entry = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as LogEntry;
  if (!entry || typeof entry !== 'object' || typeof entry.op !== 'string') throw new Error('log message is not a log entry');
  return entry;
}

export function encodeVector(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

export function decodeVector(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  // a copy: the Buffer may sit unaligned in Node's pool
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

/**
 * Splits upserted points into log messages of at most `maxBytes` each (the
 * nats server's max_payload, 1 MiB by default, less room for headers). A
 * point too large for one message is an error naming it.
 */
export function chunkUpserts(points: readonly { id: PointId; vector: Float32Array; payload?: Payload }[], maxBytes: number): LogEntry[] {
  const out: LogEntry[] = [];
  let current: { id: PointId; v: string; payload?: Payload }[] = [];
  let size = 32;
  for (const p of points) {
    const item = { id: p.id, v: encodeVector(p.vector), ...(p.payload ? { payload: p.payload } : {}) };
    const bytes = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (bytes + 32 > maxBytes) throw new Error(`point ${JSON.stringify(p.id)} takes ${bytes} bytes in the log, more than one message may hold (${maxBytes}; the nats server's max_payload)`);
    if (size + bytes > maxBytes && current.length > 0) {
      out.push({ op: 'upsert', points: current });
      current = [];
      size = 32;
    }
    current.push(item);
    size += bytes;
  }
  if (current.length > 0) out.push({ op: 'upsert', points: current });
  return out;
}

/** Splits ids to delete into messages of at most `maxBytes`. */
export function chunkDeletes(ids: readonly PointId[], maxBytes: number): LogEntry[] {
  const out: LogEntry[] = [];
  let current: PointId[] = [];
  let size = 32;
  for (const id of ids) {
    const bytes = Buffer.byteLength(JSON.stringify(id)) + 1;
    if (size + bytes > maxBytes && current.length > 0) {
      out.push({ op: 'delete', ids: current });
      current = [];
      size = 32;
    }
    current.push(id);
    size += bytes;
  }
  if (current.length > 0) out.push({ op: 'delete', ids: current });
  return out;
}

/** A write token: the log sequence each shard reached with a write; a search given it waits until its replicas applied that far. */
export interface WriteToken {
  collection: string;
  /** shard -> sequence */
  seqs: Record<number, number>;
}

export function encodeToken(token: WriteToken): string {
  return Buffer.from(JSON.stringify({ c: token.collection, s: token.seqs })).toString('base64url');
}

export function decodeToken(text: string): WriteToken {
  try {
    const raw = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { c: unknown; s: unknown };
    if (typeof raw.c !== 'string' || !raw.s || typeof raw.s !== 'object') throw new Error('bad shape');
    const seqs: Record<number, number> = {};
    for (const [k, v] of Object.entries(raw.s as Record<string, unknown>)) {
      if (!/^\d+$/.test(k) || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error('bad sequence');
      seqs[Number(k)] = v;
    }
    return { collection: raw.c, seqs };
  } catch {
    throw new Error(`"after" is not a write token (the writeToken of a write's answer), got ${JSON.stringify(text.slice(0, 80))}`);
  }
}
