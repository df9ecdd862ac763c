import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { consoleBuilt, consoleRoot } from '@adanns/console';
import { ApiError } from './errors.js';

/**
 * The web console (@adanns/console) at /console/: static files, open like
 * /healthz (they hold no data; the page asks for the API key and sends it
 * with each API call). Before `npm run build` has bundled it, /console
 * answers 404 saying so.
 */
export async function registerConsole(app: FastifyInstance, root = consoleRoot): Promise<void> {
  await app.register(async (scope) => {
    // every route of this scope (the plugin's own included) is open to anyone
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), access: 'open' };
    });
    if (!consoleBuilt(root)) {
      const missing = async () => {
        throw new ApiError(404, 'not_found', `the console is not built (no bundle in ${root}): run npm run build`);
      };
      scope.get('/console', missing);
      scope.get('/console/*', missing);
      return;
    }
    // /console redirects to /console/ so the page's relative URLs resolve under it
    await scope.register(fastifyStatic, { root, prefix: '/console', redirect: true, index: 'index.html' });
  });
}
