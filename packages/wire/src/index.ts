import { Type, type Static } from '@sinclair/typebox';
import { FilterBody } from './filter.js';

export * from './filter.js';

/**
 * The HTTP API's wire format, one source for every side
 * (docs/ARCHITECTURE.md, "Wire types"): the service validates requests and
 * serialises replies with these schemas (and @fastify/swagger turns them into
 * /openapi.json); the store's answer and stats types and the client's types
 * are their Static<> types (the client imports them as types only). Vectors
 * are left open (an array of numbers in JSON, also a Float32Array in
 * MessagePack) and are checked by the collection: length, and every value finite.
 */
export const Vector = Type.Unsafe<number[] | Float32Array>({ description: 'array of numbers (JSON) or Float32Array (MessagePack)' });
export const PointId = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 256 })]);
export const Payload = Type.Record(Type.String(), Type.Unknown());

export const MetricName = Type.Union([Type.Literal('cosine'), Type.Literal('ip'), Type.Literal('l2')]);

export const ErrorReply = Type.Object({ error: Type.String(), message: Type.String() });

export const CollectionName = Type.Object({ name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' }) });

export const IndexSpecObject = Type.Object(
  {
    transform: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('pca')])),
    coarse: Type.Optional(Type.Object({ dim: Type.Integer({ minimum: 1 }), lists: Type.Integer({ minimum: 1 }) })),
    scan: Type.Object({ dim: Type.Integer({ minimum: 1 }), codec: Type.Union([Type.Literal('flat'), Type.Literal('pq'), Type.Literal('opq')]), bytes: Type.Optional(Type.Integer({ minimum: 1 })) }),
    rerank: Type.Optional(Type.Object({ dim: Type.Integer({ minimum: 1 }) })),
  },
  { additionalProperties: false },
);

/** The kinds of payload index (README, "Payload indexes"). */
export const PAYLOAD_INDEX_TYPES = ['keyword', 'integer', 'float', 'bool', 'datetime'] as const;
export const PayloadIndexType = Type.Union(PAYLOAD_INDEX_TYPES.map((t) => Type.Literal(t)));
/** A payload field as a path: dots reach into nested objects. */
export const PayloadField = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^.]+(\\.[^.]+)*$' });

export const CreateCollection = Type.Object(
  {
    dim: Type.Integer({ minimum: 1, maximum: 65536 }),
    metric: Type.Optional(MetricName),
    dims: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 64 })),
    index: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), IndexSpecObject])),
    /** The k values budgets are calibrated at (default 1, 10, 100); a budget at another k is planned from these and says so. */
    calibrationK: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 10000 }), { minItems: 1, maxItems: 8 })),
    /** Payload indexes to keep from the start: field -> type. */
    payloadIndexes: Type.Optional(Type.Record(Type.String(), PayloadIndexType)),
  },
  { additionalProperties: false },
);

/**
 * One payload index: its state (building in the background over existing
 * points, ready, dropping, or failed: its build stopped on an error, retried
 * on the next open or PUT) and how far a build has come.
 */
export const PayloadIndexInfo = Type.Object({
  field: Type.String(),
  type: PayloadIndexType,
  state: Type.Union([Type.Literal('building'), Type.Literal('ready'), Type.Literal('dropping'), Type.Literal('failed')]),
  /** Share of the points indexed so far while building (1 when ready). */
  progress: Type.Number(),
  /** Why the last build failed (state failed), else null. */
  error: Type.Union([Type.String(), Type.Null()]),
});
/** PUT /v1/collections/{name}/payload-index/{field}. */
export const PayloadIndexBody = Type.Object({ type: PayloadIndexType }, { additionalProperties: false });
export const PayloadIndexPath = Type.Object({ name: CollectionName.properties.name, field: PayloadField });

/** Bytes the trained index holds, by kind (adanns info prints the same), and per vector. */
export const IndexBytes = Type.Object({
  lists: Type.Integer(),
  codes: Type.Integer(),
  norms: Type.Integer(),
  ids: Type.Integer(),
  centroids: Type.Integer(),
  rotation: Type.Integer(),
  codebooks: Type.Integer(),
  /** Re-rank vectors held in memory by the index (a collection re-ranks from its LMDB: 0). */
  rerank: Type.Integer(),
  /** Re-rank vectors in a file of the index's own. */
  rerankDisk: Type.Integer(),
  resident: Type.Integer(),
  residentPerVector: Type.Number(),
});

/** The live index's calibration: what budgets are planned on. */
export const CalibrationStats = Type.Object({
  /** The k values calibrated. */
  ks: Type.Array(Type.Integer()),
  queries: Type.Integer(),
  /** held-out: points drawn before training and never trained on; given: by POST .../calibrate; stored: a sample of stored points (in-sample). */
  source: Type.Union([Type.Literal('held-out'), Type.Literal('given'), Type.Literal('stored'), Type.Null()]),
  /** False when the time bound cut the sweep short. */
  complete: Type.Boolean(),
  /** Total variation distance between the list-size shares at calibration and now (re-calibrated past ADANNS_RECALIBRATE_DRIFT). */
  drift: Type.Union([Type.Number(), Type.Null()]),
  /** A re-calibration is running (in the background; searches go on with the current one). */
  running: Type.Boolean(),
  progress: Type.Union([Type.Number(), Type.Null()]),
  /** Why the last re-calibration failed, if it did. */
  lastError: Type.Union([Type.String(), Type.Null()]),
});

/** POST /v1/collections/{name}/calibrate: sample queries like the ones the collection will serve. */
export const CalibrateBody = Type.Object(
  {
    vectors: Type.Unsafe<unknown[]>({ type: 'array', minItems: 2, maxItems: 10000, description: 'query vectors (arrays of numbers; Float32Array in MessagePack)' }),
  },
  { additionalProperties: false },
);

export const IndexStats = Type.Object({
  /**
   * none: no index yet (searches are exact; one is built at ADANNS_AUTO_BUILD_AT points or on request);
   * building; ready; exact: a build was asked for but the collection has too few points for an index
   * (searches stay exact, `note` says why).
   */
  state: Type.Union([Type.Literal('none'), Type.Literal('building'), Type.Literal('ready'), Type.Literal('exact')]),
  /** Why the collection searches exactly, or that a build waits for ingest to go quiet; null otherwise. */
  note: Type.Union([Type.String(), Type.Null()]),
  progress: Type.Union([Type.Number(), Type.Null()]),
  stage: Type.Union([Type.String(), Type.Null()]),
  spec: Type.Union([Type.String(), Type.Null()]),
  /** Why `auto` (the default) chose this spec: the spectrum and the trial's predicted costs; null for a spec given. */
  specReason: Type.Union([Type.String(), Type.Null()]),
  sequence: Type.Union([Type.Integer(), Type.Null()]),
  trainedCount: Type.Union([Type.Integer(), Type.Null()]),
  rebuildAdvised: Type.Boolean(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  /** null until an index is trained. */
  bytes: Type.Union([IndexBytes, Type.Null()]),
  /** null until an index is trained. */
  calibration: Type.Union([CalibrationStats, Type.Null()]),
});

export const SearchParams = Type.Object(
  {
    // 0 for both: an index without an IVF stage (what its answers report)
    coarseDim: Type.Optional(Type.Integer({ minimum: 0 })),
    nprobe: Type.Optional(Type.Integer({ minimum: 0 })),
    scanDim: Type.Optional(Type.Integer({ minimum: 1 })),
    shortlist: Type.Optional(Type.Integer({ minimum: 1 })),
    rerankDim: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Adaptive probing: lists within this centroid-score margin of a query's best, at most nprobe (packages/core params.ts). */
    probeMargin: Type.Optional(Type.Number({ minimum: 0 })),
    /** Funnel: re-rank stages between the scan and the final re-rank, each rescoring the candidates left at a larger prefix `dim` and keeping `keep` (packages/core params.ts). */
    funnel: Type.Optional(Type.Array(Type.Object({ dim: Type.Integer({ minimum: 1 }), keep: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), { maxItems: 16 })),
    /** Patience termination: lists probed one at a time until the last `lists` brought at most `newMax` new members into the scan's top `top`, at most nprobe (packages/core params.ts). */
    patience: Type.Optional(Type.Object({ top: Type.Integer({ minimum: 1 }), newMax: Type.Integer({ minimum: 0 }), lists: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })),
    /** Re-rank patience: the final re-rank rescores the first `first` candidates (first >= k), then `step` more at a time until a chunk brings at most `newMax` new members into its exact top `first`; needs rerankDim (packages/core params.ts). */
    rerankPatience: Type.Optional(Type.Object({ first: Type.Integer({ minimum: 1, maximum: 1e6 }), step: Type.Integer({ minimum: 1, maximum: 1e6 }), newMax: Type.Integer({ minimum: 0, maximum: 1e6 }) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

/** A calibrated point: its params, recall@k and modelled MFLOPs per query (means), and its mean single-query latency in ms on the calibrating machine. */
export const FrontierPoint = Type.Object({ params: SearchParams, recall: Type.Number(), mflops: Type.Number(), latencyMs: Type.Number() });

/** The live index's spec string parsed into its stages (core's IndexSpec), for clients that explain it (the console). */
export const SpecParts = Type.Object({
  transform: Type.Optional(Type.String()),
  coarse: Type.Optional(Type.Object({ dim: Type.Integer(), lists: Type.Integer() })),
  scan: Type.Object({ codec: Type.String(), dim: Type.Integer(), bytes: Type.Optional(Type.Integer()) }),
  rerank: Type.Optional(Type.Object({ dim: Type.Integer(), storage: Type.Optional(Type.String()) })),
});

/** Share of the variance held by the first `dim` PCA components (the second moment for cosine and ip), at the prefix ladder and 64 evenly spaced prefixes. */
export const SpectrumPoint = Type.Object({ dim: Type.Integer(), share: Type.Number() });

export const CollectionStats = Type.Object({
  name: Type.String(),
  dim: Type.Integer(),
  metric: MetricName,
  dims: Type.Array(Type.Integer()),
  count: Type.Integer(),
  sequence: Type.Integer(),
  index: IndexStats,
  payloadIndexes: Type.Array(PayloadIndexInfo),
  frontier: Type.Optional(Type.Array(FrontierPoint)),
  /** GET /v1/collections/{name} only: the k whose recall@k the frontier shows (the calibration's primary k; null before calibration). */
  frontierK: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  /** GET /v1/collections/{name} only: the live index's spec by stage (null before an index is trained). */
  specParts: Type.Optional(Type.Union([SpecParts, Type.Null()])),
  /** GET /v1/collections/{name} only: the PCA spectrum of the live index (null without a trained PCA stage). */
  spectrum: Type.Optional(Type.Union([Type.Array(SpectrumPoint), Type.Null()])),
});

export const CollectionList = Type.Object({
  collections: Type.Array(Type.Union([CollectionStats, Type.Object({ name: Type.String(), error: Type.String() })])),
});

export const UpsertBody = Type.Object(
  {
    points: Type.Array(Type.Object({ id: PointId, vector: Vector, payload: Type.Optional(Type.Union([Payload, Type.Null()])) }, { additionalProperties: false }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
export const WriteReply = Type.Object({ sequence: Type.Integer(), upserted: Type.Optional(Type.Integer()), deleted: Type.Optional(Type.Integer()) });
/**
 * Delete by `ids` or by `filter` (exactly one of them). A filter matching
 * more points than the server's batch limit is refused (413) unless `all` is
 * true: `{filter: {}}` matches every point, and a typo should not wipe a
 * collection. `all` goes with a filter only.
 */
export const DeleteBody = Type.Object({ ids: Type.Optional(Type.Array(PointId, { minItems: 1 })), filter: Type.Optional(FilterBody), all: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
/** POST /v1/collections/{name}/points/count: the points a filter matches (all without one). */
export const CountBody = Type.Object({ filter: Type.Optional(FilterBody) }, { additionalProperties: false });
export const CountReply = Type.Object({
  count: Type.Integer(),
  /** Which filtered fields had no payload index (their payloads were read), or null. */
  note: Type.Union([Type.String(), Type.Null()]),
});
export const PointPath = Type.Object({ name: CollectionName.properties.name, id: Type.String({ minLength: 1, maxLength: 256 }) });
export const PointQuery = Type.Object({ type: Type.Optional(Type.Union([Type.Literal('int'), Type.Literal('string')])) });
export const PointReply = Type.Object({ id: PointId, vector: Type.Array(Type.Number()), payload: Type.Optional(Payload) });

export const Budget = Type.Union([
  Type.Object({ mflops: Type.Number({ exclusiveMinimum: 0 }) }, { additionalProperties: false }),
  Type.Object({ latencyMs: Type.Number({ exclusiveMinimum: 0 }) }, { additionalProperties: false }),
  Type.Object({ recall: Type.Number({ exclusiveMinimum: 0, maximum: 1 }) }, { additionalProperties: false }),
]);

export const SearchBody = Type.Object(
  {
    vector: Type.Optional(Vector),
    vectors: Type.Optional(Type.Unsafe<unknown[]>({ type: 'array', minItems: 1, description: 'query vectors' })),
    k: Type.Integer({ minimum: 1 }),
    budget: Type.Optional(Budget),
    params: Type.Optional(SearchParams),
    strict: Type.Optional(Type.Boolean()),
    withPayload: Type.Optional(Type.Boolean()),
    /** Only points that pass this filter are returned (one filter for every query vector of the request). */
    filter: Type.Optional(FilterBody),
  },
  { additionalProperties: false },
);

export const Hit = Type.Object({ id: PointId, score: Type.Number(), payload: Type.Optional(Payload) });
/** What the plan for a budget predicted, next to what the answer measured (mflops, tookMs). */
export const PlannedCost = Type.Object({
  /** Predicted mean modelled MFLOPs per query, priced on the index's lists as they are now. */
  mflops: Type.Number(),
  /** Calibrated recall@k of the plan (1 for an exact search; null under a filter unless it scanned the matches exactly: not calibrated). */
  recall: Type.Union([Type.Number(), Type.Null()]),
  /** Predicted time of the search in ms on this machine (null for an exact search and under a filter: not calibrated for either). */
  latencyMs: Type.Union([Type.Number(), Type.Null()]),
  /** The k the recall was calibrated at (null for an exact search: any k). */
  k: Type.Union([Type.Integer(), Type.Null()]),
});
export const SearchReply = Type.Object({
  results: Type.Array(Type.Array(Hit)),
  params: Type.Union([SearchParams, Type.Null()]),
  /** Mean modelled MFLOPs per query, counted on the lists actually probed. */
  mflops: Type.Number(),
  expectedRecall: Type.Union([Type.Number(), Type.Null()]),
  /** Whether this answer met its budget: every query's MFLOPs, the measured tookMs, or the calibrated recall lower bound at this k (null without a budget). */
  budgetMet: Type.Union([Type.Boolean(), Type.Null()]),
  /** The plan's predictions (null without a budget). */
  planned: Type.Union([PlannedCost, Type.Null()]),
  /** Why a budget was not met or cannot be claimed, or that the search was exact and why; null otherwise. */
  note: Type.Union([Type.String(), Type.Null()]),
  tookMs: Type.Number(),
});

export type SearchBodyType = Static<typeof SearchBody>;

// The types of the above, for code that builds or reads these messages.
export type Vector = Static<typeof Vector>;
export type PointId = Static<typeof PointId>;
export type Payload = Static<typeof Payload>;
export type Metric = Static<typeof MetricName>;
export type ErrorReply = Static<typeof ErrorReply>;
export type CreateCollection = Static<typeof CreateCollection>;
export type IndexStats = Static<typeof IndexStats>;
export type IndexBytes = Static<typeof IndexBytes>;
export type CalibrationStats = Static<typeof CalibrationStats>;
export type CalibrateBody = Static<typeof CalibrateBody>;
export type IndexState = IndexStats['state'];
export type SearchParams = Static<typeof SearchParams>;
export type FrontierPoint = Static<typeof FrontierPoint>;
export type SpecParts = Static<typeof SpecParts>;
export type SpectrumPoint = Static<typeof SpectrumPoint>;
export type CollectionStats = Static<typeof CollectionStats>;
export type CollectionList = Static<typeof CollectionList>;
export type UpsertBody = Static<typeof UpsertBody>;
export type Point = UpsertBody['points'][number];
export type WriteReply = Static<typeof WriteReply>;
export type DeleteBody = Static<typeof DeleteBody>;
export type PointReply = Static<typeof PointReply>;
export type Budget = Static<typeof Budget>;
/** A search request without its query vector(s). */
export type SearchOptions = Omit<SearchBodyType, 'vector' | 'vectors'>;
export type Hit = Static<typeof Hit>;
export type SearchReply = Static<typeof SearchReply>;
export type PlannedCost = Static<typeof PlannedCost>;
export type PayloadIndexType = Static<typeof PayloadIndexType>;
export type PayloadIndexInfo = Static<typeof PayloadIndexInfo>;
export type CountBody = Static<typeof CountBody>;
export type CountReply = Static<typeof CountReply>;
