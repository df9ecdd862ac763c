import { Packr } from 'msgpackr';

/**
 * A typed client for the adanns HTTP API (v1), over fetch, speaking JSON or
 * MessagePack (vectors then travel as Float32Array). Errors from the server
 * become AdannsError with the HTTP status, the error code and its message.
 */

// The wire types come from the service's schemas (@adanns/wire), as types
// only: nothing of the server is loaded (docs/ARCHITECTURE.md, "Wire types").
import type {
  Budget,
  CollectionList,
  CollectionStats,
  CountReply,
  CreateCollection,
  DeleteBody,
  Filter,
  Hit,
  IndexStats,
  Metric,
  Payload,
  PayloadIndexInfo,
  PayloadIndexType,
  Point,
  PointId,
  PointReply,
  SearchOptions,
  SearchParams,
  SearchReply,
  Vector,
  WriteReply,
} from '@adanns/wire';

export type { Budget, CountReply, CreateCollection, Filter, Hit, IndexStats, Metric, Payload, PayloadIndexInfo, PayloadIndexType, Point, PointId, PointReply, SearchParams, Vector };
export type CollectionInfo = CollectionStats;
export type SearchRequest = SearchOptions;
export type SearchResponse = SearchReply;

export interface ClientOptions {
  /** Sent as Authorization: Bearer KEY. */
  apiKey?: string;
  /** Body and reply encoding (default json). */
  format?: 'json' | 'msgpack';
}

export class AdannsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const packr = new Packr({ moreTypes: true, useRecords: false });
const MSGPACK = 'application/msgpack';

export class AdannsClient {
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly options: ClientOptions = {},
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  /** One request; the body is encoded in the client's format. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const msgpack = this.options.format === 'msgpack';
    const headers: Record<string, string> = { accept: msgpack ? MSGPACK : 'application/json' };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let payload: Uint8Array<ArrayBuffer> | string | undefined;
    if (body !== undefined) {
      headers['content-type'] = msgpack ? MSGPACK : 'application/json';
      payload = msgpack ? new Uint8Array(packr.pack(body)) : JSON.stringify(body, (_key, value: unknown) => (value instanceof Float32Array ? Array.from(value) : value));
    }
    const response = await fetch(`${this.base}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    const type = response.headers.get('content-type') ?? '';
    const bytes = new Uint8Array(await response.arrayBuffer());
    const decoded: unknown = bytes.length === 0 ? undefined : type.startsWith(MSGPACK) ? packr.unpack(bytes) : type.includes('json') ? JSON.parse(new TextDecoder().decode(bytes)) : new TextDecoder().decode(bytes);
    if (!response.ok) {
      const error = decoded as { error?: string; message?: string } | undefined;
      throw new AdannsError(response.status, error?.error ?? 'http_error', error?.message ?? `HTTP ${response.status}`);
    }
    return decoded as T;
  }

  private path(name: string, rest = ''): string {
    return `/v1/collections/${encodeURIComponent(name)}${rest}`;
  }

  createCollection(name: string, spec: CreateCollection): Promise<CollectionInfo> {
    return this.request('PUT', this.path(name), spec);
  }

  async listCollections(): Promise<CollectionList['collections']> {
    return (await this.request<CollectionList>('GET', '/v1/collections')).collections;
  }

  getCollection(name: string): Promise<CollectionInfo> {
    return this.request('GET', this.path(name));
  }

  dropCollection(name: string): Promise<{ deleted: boolean }> {
    return this.request('DELETE', this.path(name));
  }

  /** Upserts a batch (atomic; resolves once durable). */
  upsert(name: string, points: Point[]): Promise<Required<Pick<WriteReply, 'sequence' | 'upserted'>>> {
    return this.request('POST', this.path(name, '/points'), { points });
  }

  deletePoints(name: string, ids: PointId[]): Promise<Required<Pick<WriteReply, 'sequence' | 'deleted'>>> {
    const body: DeleteBody = { ids };
    return this.request('DELETE', this.path(name, '/points'), body);
  }

  /**
   * Deletes every point the filter matches (atomic; resolves once durable).
   * A filter matching more points than the server's batch limit is refused
   * (413) unless `all` is true: `{}` matches every point.
   */
  deleteByFilter(name: string, filter: Filter, options: { all?: boolean } = {}): Promise<Required<Pick<WriteReply, 'sequence' | 'deleted'>>> {
    const body: DeleteBody = { filter, ...(options.all === undefined ? {} : { all: options.all }) };
    return this.request('DELETE', this.path(name, '/points'), body);
  }

  /** How many points the filter matches (every point without one); `note` names filtered fields that have no payload index. */
  count(name: string, filter?: Filter): Promise<CountReply> {
    return this.request('POST', this.path(name, '/points/count'), filter === undefined ? {} : { filter });
  }

  /** Creates a payload index on a field (dots reach into nested objects); it is built over existing points in the background: poll waitForPayloadIndexes. */
  createPayloadIndex(name: string, field: string, type: PayloadIndexType): Promise<PayloadIndexInfo> {
    return this.request('PUT', this.path(name, `/payload-index/${encodeURIComponent(field)}`), { type });
  }

  dropPayloadIndex(name: string, field: string): Promise<{ deleted: boolean }> {
    return this.request('DELETE', this.path(name, `/payload-index/${encodeURIComponent(field)}`));
  }

  /**
   * Polls until no payload index is building or dropping; returns them.
   * Throws once one has failed to build (its error in the message; a PUT of
   * the same index, or a restart of the service, retries it).
   */
  async waitForPayloadIndexes(name: string, pollMs = 100, timeoutMs = 600_000): Promise<PayloadIndexInfo[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { payloadIndexes } = await this.getCollection(name);
      const failed = payloadIndexes.filter((i) => i.state === 'failed');
      if (failed.length > 0) throw new Error(`payload index${failed.length > 1 ? 'es' : ''} of ${name} failed to build: ${failed.map((i) => `${i.field}: ${i.error}`).join('; ')}`);
      if (payloadIndexes.every((i) => i.state === 'ready')) return payloadIndexes;
      if (Date.now() > deadline) throw new Error(`payload indexes of ${name} still building after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** A point by id; undefined when it does not exist. */
  async getPoint(name: string, id: PointId): Promise<PointReply | undefined> {
    const query = typeof id === 'string' && /^[0-9]+$/.test(id) ? '?type=string' : '';
    try {
      return await this.request('GET', this.path(name, `/points/${encodeURIComponent(String(id))}${query}`));
    } catch (e) {
      if (e instanceof AdannsError && e.status === 404 && e.code === 'not_found') return undefined;
      throw e;
    }
  }

  /** Starts an index build in the background. */
  buildIndex(name: string): Promise<IndexStats> {
    return this.request('POST', this.path(name, '/index'));
  }

  indexStatus(name: string): Promise<IndexStats> {
    return this.request('GET', this.path(name, '/index'));
  }

  /**
   * Re-calibrates the collection's index on sample queries like the ones it
   * will serve (at least 2, each of the collection's dimension), in the
   * background: poll waitForCalibration. The queries are kept for later
   * builds and re-calibrations.
   */
  calibrate(name: string, vectors: Vector[]): Promise<IndexStats> {
    return this.request('POST', this.path(name, '/calibrate'), { vectors });
  }

  /** Polls until no calibration is running; returns the index state (its `calibration` says what was calibrated, or why it failed). */
  async waitForCalibration(name: string, pollMs = 100, timeoutMs = 600_000): Promise<IndexStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.indexStatus(name);
      if (!status.calibration?.running) return status;
      if (Date.now() > deadline) throw new Error(`index of ${name} still calibrating after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Polls until no build is running; returns the final index state. */
  async waitForIndex(name: string, pollMs = 100, timeoutMs = 600_000): Promise<IndexStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.indexStatus(name);
      if (status.state !== 'building') return status;
      if (Date.now() > deadline) throw new Error(`index of ${name} still building after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  search(name: string, vector: Vector, request: SearchRequest): Promise<SearchResponse> {
    return this.request('POST', this.path(name, '/search'), { vector, ...request });
  }

  searchBatch(name: string, vectors: Vector[], request: SearchRequest): Promise<SearchResponse> {
    return this.request('POST', this.path(name, '/search'), { vectors, ...request });
  }

  health(): Promise<{ status: string }> {
    return this.request('GET', '/healthz');
  }

  ready(): Promise<{ status: string }> {
    return this.request('GET', '/readyz');
  }

  metrics(): Promise<string> {
    return this.request('GET', '/metrics');
  }
}
