export { ConfigError, CONFIG_USAGE, loadConfig, type ServiceConfig } from './config.js';
export { main, serve, serveUntilSignal } from './main.js';
export { MSGPACK, packMsgpack, unpackMsgpack } from './msgpack.js';
export { buildServer, type ServerConfig } from './server.js';
export { createLogger } from './logger.js';
