import { Type, type Static } from '@sinclair/typebox';

/**
 * Request and response schemas: Fastify validates with them and
 * @fastify/swagger turns them into /openapi.json. Vectors are left open
 * (an array of numbers in JSON, also a Float32Array in MessagePack) and are
 * checked by the collection: length, and every value finite.
 */
export const Vector = Type.Unsafe<number[] | Float32Array>({ description: 'array of numbers (JSON) or Float32Array (MessagePack)' });
export const PointId = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 256 })]);
export const Payload = Type.Record(Type.String(), Type.Unknown());

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

export const CreateCollection = Type.Object(
  {
    dim: Type.Integer({ minimum: 1, maximum: 65536 }),
    metric: Type.Optional(Type.Union([Type.Literal('cosine'), Type.Literal('ip'), Type.Literal('l2')])),
    dims: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 64 })),
    index: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), IndexSpecObject])),
  },
  { additionalProperties: false },
);

export const IndexStats = Type.Object({
  state: Type.Union([Type.Literal('none'), Type.Literal('building'), Type.Literal('ready')]),
  progress: Type.Union([Type.Number(), Type.Null()]),
  stage: Type.Union([Type.String(), Type.Null()]),
  spec: Type.Union([Type.String(), Type.Null()]),
  sequence: Type.Union([Type.Integer(), Type.Null()]),
  trainedCount: Type.Union([Type.Integer(), Type.Null()]),
  rebuildAdvised: Type.Boolean(),
  lastError: Type.Union([Type.String(), Type.Null()]),
});

export const SearchParams = Type.Object(
  {
    coarseDim: Type.Optional(Type.Integer({ minimum: 1 })),
    nprobe: Type.Optional(Type.Integer({ minimum: 1 })),
    scanDim: Type.Optional(Type.Integer({ minimum: 1 })),
    shortlist: Type.Optional(Type.Integer({ minimum: 1 })),
    rerankDim: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const FrontierPoint = Type.Object({ params: SearchParams, recall: Type.Number(), mflops: Type.Number() });

export const CollectionStats = Type.Object({
  name: Type.String(),
  dim: Type.Integer(),
  metric: Type.String(),
  dims: Type.Array(Type.Integer()),
  count: Type.Integer(),
  sequence: Type.Integer(),
  index: IndexStats,
  frontier: Type.Optional(Type.Array(FrontierPoint)),
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
export const DeleteBody = Type.Object({ ids: Type.Array(PointId, { minItems: 1 }) }, { additionalProperties: false });
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
  },
  { additionalProperties: false },
);

export const Hit = Type.Object({ id: PointId, score: Type.Number(), payload: Type.Optional(Payload) });
export const SearchReply = Type.Object({
  results: Type.Array(Type.Array(Hit)),
  params: Type.Union([SearchParams, Type.Null()]),
  mflops: Type.Number(),
  expectedRecall: Type.Union([Type.Number(), Type.Null()]),
  budgetMet: Type.Union([Type.Boolean(), Type.Null()]),
  tookMs: Type.Number(),
});

export type SearchBodyType = Static<typeof SearchBody>;
