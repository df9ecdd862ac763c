import type { PointId } from '@adanns/store';

/**
 * Where a cluster keeps things in NATS, and how points map to shards. These
 * names and the hash are part of the on-disk and on-wire format: changing
 * them orphans existing streams and moves points to other shards.
 */

/** The KV bucket of cluster metadata (collections, nodes, replica leases). */
export const META_BUCKET = 'adanns-meta';
/** The object store bucket of index artefacts. */
export const ARTEFACT_BUCKET = 'adanns-artefacts';

/** Longest cluster collection name: the local replica's name adds `--s<shard>` (at most 6 characters) within the store's 64. */
export const MAX_CLUSTER_NAME = 58;
export const MAX_SHARDS = 64;
export const MAX_REPLICAS = 8;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function checkNodeId(id: string): string {
  if (!NODE_ID.test(id)) throw new Error(`node id must be 1-64 letters, digits, "_" or "-" (not starting with "_" or "-"), got ${JSON.stringify(id)}`);
  return id;
}

/** The JetStream stream that is one shard's log. */
export const streamName = (collection: string, shard: number): string => `adanns-${collection}-s${shard}`;
/** The subject the shard's log is written on. */
export const logSubject = (collection: string, shard: number): string => `adanns.log.${collection}.${shard}`;
/** The local collection (in the node's Store) holding this node's replica of a shard. */
export const replicaName = (collection: string, shard: number): string => `${collection}--s${shard}`;
/** A node's durable consumer on a shard's stream: one per node, so a restarted node resumes its own. */
export const consumerName = (nodeId: string): string => `replica-${nodeId}`;

export const collectionKey = (collection: string): string => `collections.${collection}`;
export const nodeKey = (nodeId: string): string => `nodes.${nodeId}`;
export const replicaKey = (collection: string, shard: number, replica: number): string => `replicas.${collection}.${shard}.${replica}`;
/** The index artefact published for a shard (ArtefactRecord). */
export const indexKey = (collection: string, shard: number): string => `index.${collection}.${shard}`;
/** Claimed (created) by the one replica that trains for the build request at this log sequence. */
export const buildKey = (collection: string, shard: number, seq: number): string => `builds.${collection}.${shard}.${seq}`;
/** The newest copy of a shard's replica (SnapshotRecord): the shard's log is trimmed up to its log sequence. */
export const snapshotKey = (collection: string, shard: number): string => `snapshot.${collection}.${shard}`;
/** The collection's shared coarse quantiser (QuantiserRecord): which build request it is for, where it lies. */
export const quantiserKey = (collection: string): string => `quantiser.${collection}`;
/** Claimed (created) by the one replica, of any shard, that trains the shared quantiser for build request `id`. */
export const quantiserClaimKey = (collection: string, id: string): string => `qtrain.${collection}.${id}`;
/** The object holding an artefact: per collection incarnation (uid) and shard. */
export const artefactObject = (collection: string, uid: string, shard: number, name: string): string => `${collection}/${uid}/s${shard}/${name}`;

/**
 * The shard of a point id: FNV-1a (32 bit) over the id's type and text
 * (1 and "1" are different points and may live on different shards), modulo
 * the shard count. Stable across processes, versions and platforms.
 */
export function shardOf(id: PointId, shards: number): number {
  const text = `${typeof id === 'number' ? 'n' : 's'}:${id}`;
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}
