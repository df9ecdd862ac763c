import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The service's pino logger (JSON lines), shared by Fastify and the store.
 * Keys never reach the log: pino redacts the headers that carry them,
 * wherever a serializer or a debug line would include them.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers["api-key"]', 'headers.authorization', 'headers["api-key"]', 'request.headers.authorization', 'request.headers["api-key"]'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
