/**
 * Errors a caller can act on, with a kind that maps to an HTTP status:
 * invalid input (400), missing collection or point (404), a name already
 * taken or an index already building (409), a payload or batch over its limit (413),
 * a collection that failed to open (503).
 */
export type StoreErrorKind = 'invalid' | 'not_found' | 'conflict' | 'too_large' | 'unavailable';

export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    /** For 'unavailable' that will pass (a collection still opening): when to try again. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const invalid = (message: string) => new StoreError('invalid', message);
export const notFound = (message: string) => new StoreError('not_found', message);
export const tooLarge = (message: string) => new StoreError('too_large', message);
