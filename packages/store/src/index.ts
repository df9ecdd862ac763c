export { Collection, toVector, validatePoints, type BuildRequest, type WriteOptions, type CollectionOptions, type CollectionStats, type Hit, type IndexState, type PointInput, type SearchAnswer, type SearchLimits, type SearchRequest, type StoreLogger } from './collection.js';
export { MAX_NORM } from './vectors.js';
export { searchSlices, SliceQueue } from './slices.js';
export { StoreError, type StoreErrorKind } from './errors.js';
export { checkFilter, evaluateFilter, type FilterAnswer } from './filter.js';
export { checkPayloadIndex, MAX_KEYWORD_BYTES, PAYLOAD_INDEX_TYPES, type PayloadIndexType } from './payload-index.js';
export { checkId, PointStore, type Payload, type PointId } from './points.js';
export { checkName, defaultSpec, makeSchema, MAX_DIM, type CollectionSchema } from './schema.js';
export { defaultDataDir, Store } from './store.js';
export { decodeQuantiser, encodeQuantiser, type SharedQuantiser } from './quantiser.js';
/** The ks a collection calibrates at unless its schema says (what a cluster adds its shards' shares to). */
export { DEFAULT_CALIBRATION_KS } from '@adanns/core';
