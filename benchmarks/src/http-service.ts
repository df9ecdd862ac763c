/**
 * The service process of the HTTP benchmark (http.ts forks it): serves on a
 * port the OS picks (--port 0, so no probe-then-reuse race) and tells the
 * parent its URL over IPC once every collection is open; SIGTERM drains it.
 *
 *   node http-service.js [adanns serve flags]    (needs an IPC channel)
 */
import { loadConfig, serve } from '@adanns/api';

if (!process.send) throw new Error('http-service is started by the HTTP benchmark (fork), not by hand');
const { url, stop, store } = await serve(loadConfig(process.argv.slice(2)));
await store.opened;
process.send({ url });
process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
