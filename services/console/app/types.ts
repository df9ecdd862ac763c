import type { CollectionInfo } from '@adanns/client';

// the reply shapes of GET /v1/collections/{name}, from the typed client (itself @adanns/wire's types)
export type FrontierPoint = NonNullable<CollectionInfo['frontier']>[number];
export type SpectrumPoint = NonNullable<CollectionInfo['spectrum']>[number];
export type SpecParts = NonNullable<CollectionInfo['specParts']>;
