export { DEFAULT_PORTS, LocalCluster, type LocalClusterOptions, type LocalNats, type LocalNode, type PortBases, type PortTable } from './cluster.js';
export { DURABILITY_NOTE, hasSyncInterval, jetStreamMeta, natsConfig, natsServerVersion, waitForJetStream, type NatsServerSpec } from './nats.js';
export { describeExit, logTail, type ProcessExit, type UnexpectedExit } from './processes.js';
