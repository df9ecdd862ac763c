import { AdannsClient, AdannsError } from '@adanns/client';

/**
 * The API key lives in sessionStorage only: entered once per browser tab
 * session, gone when the tab closes, never written to localStorage or a cookie.
 */
const KEY = 'adanns.apiKey';

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  setKey: (key: string) => sessionStorage.setItem(KEY, key),
  forget: () => sessionStorage.removeItem(KEY),
};

/** A client for the service that served this page, with the session's key. */
export function api(): AdannsClient {
  const key = session.key();
  return new AdannsClient(location.origin, key ? { apiKey: key } : {});
}

/** What went wrong, in words a user can act on. */
export function describeError(e: unknown): string {
  if (e instanceof AdannsError) {
    if (e.status === 401) {
      return session.key()
        ? `The API key was refused (401): ${e.message}. Enter the admin or read key above.`
        : `This service needs an API key (401): ${e.message}. Enter it above; it is kept for this browser session only.`;
    }
    if (e.status === 403) return `This key may not do that (403): ${e.message}. Use the admin key.`;
    return `${e.status} ${e.code}: ${e.message}`;
  }
  if (e instanceof TypeError) return `The service did not answer (${e.message}).`;
  return e instanceof Error ? e.message : String(e);
}

export { AdannsError };
