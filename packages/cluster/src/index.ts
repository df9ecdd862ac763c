export { ClusterNode, type ClusterCollection, type ClusterOptions, type ClusterSearchAnswer, type ClusterSearchOptions, type ShardReport } from './node.js';
export { Replica, type ReplicaState } from './replica.js';
export { decodeToken, encodeToken, type LogEntry, type WriteToken } from './log.js';
export { META_BUCKET, replicaName, shardOf, streamName } from './names.js';
export * from './local/index.js';
