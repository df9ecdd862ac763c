import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { Collection, type CollectionOptions, type CollectionStats } from './collection.js';
import { invalid, notFound, StoreError } from './errors.js';
import { checkPayloadIndex } from './payload-index.js';
import { PointStore } from './points.js';
import { checkName, makeSchema } from './schema.js';

/** The data directory: ADANNS_DATA_DIR, else ./data. */
export function defaultDataDir(): string {
  return resolve(process.env.ADANNS_DATA_DIR || './data');
}

/**
 * Every collection under `<dataDir>/collections/<name>`, each isolated in its
 * own LMDB environment and artefact directory: one that fails to open is
 * reported (and answers 503) while the others serve. Creation and deletion
 * go through a temporary name and one rename, so a crash never leaves half
 * a collection under a real name.
 *
 * `Store.start` returns at once and opens the collections in the background,
 * one after the other (a server listens meanwhile); a collection still
 * opening answers 'unavailable' with a retry hint. `Store.open` waits for all.
 */
export class Store {
  private readonly collections = new Map<string, Collection>();
  private readonly failed = new Map<string, string>();
  private readonly opening = new Set<string>();
  /** Names being created: reserved from the checks to the rename, so a second create of one is a conflict. */
  private readonly creating = new Set<string>();
  private closing = false;
  /** Settles once every collection found at start is open or has failed. */
  readonly opened: Promise<void>;

  private constructor(
    readonly dataDir: string,
    private readonly options: CollectionOptions,
  ) {
    mkdirSync(this.root, { recursive: true });
    const found: string[] = [];
    for (const entry of readdirSync(this.root).sort()) {
      const path = join(this.root, entry);
      if (entry.startsWith('.')) {
        rmSync(path, { recursive: true, force: true }); // an interrupted create or drop
        continue;
      }
      found.push(entry);
      this.opening.add(entry);
    }
    this.opened = this.openAll(found);
  }

  private get root(): string {
    return join(this.dataDir, 'collections');
  }

  /** Opens the store's directory and starts opening its collections in the background. */
  static start(dataDir: string, options: CollectionOptions): Store {
    return new Store(dataDir, options);
  }

  /** Opens the store and every collection in it. */
  static async open(dataDir: string, options: CollectionOptions): Promise<Store> {
    const store = Store.start(dataDir, options);
    await store.opened;
    return store;
  }

  private async openAll(names: string[]): Promise<void> {
    for (const name of names) {
      // let the caller (a server about to listen) go first, and between collections answer what came in
      await new Promise((resolve) => setImmediate(resolve));
      if (this.closing) {
        this.opening.clear();
        return;
      }
      const started = performance.now();
      try {
        this.collections.set(name, await Collection.open(join(this.root, name), this.options));
        this.options.logger?.info({ collection: name, seconds: (performance.now() - started) / 1000 }, `collection ${name}: open`);
      } catch (e) {
        this.failed.set(name, (e as Error).message);
        this.options.logger?.error({ collection: name, err: (e as Error).message }, `collection ${name} failed to open and is not served: ${(e as Error).message}`);
      } finally {
        this.opening.delete(name);
      }
    }
  }

  /** Collections still opening (empty once the store is ready). */
  pending(): string[] {
    return [...this.opening].sort();
  }

  names(): string[] {
    return [...new Set([...this.collections.keys(), ...this.failed.keys(), ...this.opening])].sort();
  }

  list(): (CollectionStats | { name: string; error: string })[] {
    return this.names().map((name) => this.collections.get(name)?.stats() ?? { name, error: this.failed.get(name) ?? 'still opening (recovering its index); retry shortly' });
  }

  get(name: string): Collection {
    const collection = this.collections.get(name);
    if (collection) return collection;
    const failure = this.failed.get(name);
    if (failure) throw new StoreError('unavailable', `collection ${name} failed to open: ${failure}`);
    if (this.opening.has(name)) throw new StoreError('unavailable', `collection ${name} is still opening (recovering its index); retry shortly`, 5);
    throw notFound(`no collection named ${JSON.stringify(name)}`);
  }

  async create(name: string, input: { dim: unknown; metric?: unknown; dims?: unknown; index?: unknown; calibrationK?: unknown; payloadIndexes?: unknown }): Promise<Collection> {
    checkName(name);
    const given = input.payloadIndexes ?? {};
    if (given === null || typeof given !== 'object' || Array.isArray(given)) throw invalid(`payloadIndexes must be an object of field: type, got ${JSON.stringify(given)}`);
    const payloadIndexes = Object.entries(given).map(([field, type]) => checkPayloadIndex(field, type));
    if (this.collections.has(name) || this.failed.has(name) || this.opening.has(name) || this.creating.has(name) || existsSync(join(this.root, name))) throw new StoreError('conflict', `collection ${name} already exists`);
    const schema = makeSchema(name, input);
    this.creating.add(name);
    try {
      const tmp = join(this.root, `.creating-${name}`);
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      const { store } = PointStore.open(join(tmp, 'points'), schema);
      // an empty collection's payload indexes are ready at once
      for (const { field, type } of payloadIndexes) await store.declarePayloadIndex(field, type, 'ready');
      await store.close();
      renameSync(tmp, join(this.root, name));
      const collection = await Collection.open(join(this.root, name), this.options);
      this.collections.set(name, collection);
      return collection;
    } finally {
      this.creating.delete(name);
    }
  }

  /**
   * Creates collection `name` from the files of a Collection.snapshot
   * (relative path -> bytes; a cluster replica restored from another's copy)
   * and opens it: its index recovers as after a restart.
   */
  async restore(name: string, files: ReadonlyMap<string, Uint8Array>): Promise<Collection> {
    checkName(name);
    if (this.collections.has(name) || this.failed.has(name) || this.opening.has(name) || this.creating.has(name) || existsSync(join(this.root, name))) throw new StoreError('conflict', `collection ${name} already exists`);
    if (![...files.keys()].some((p) => p.startsWith(`points${sep}`) || p.startsWith('points/'))) throw invalid(`a snapshot for ${name} holds no points database`);
    this.creating.add(name);
    try {
      const tmp = join(this.root, `.restoring-${name}`);
      rmSync(tmp, { recursive: true, force: true });
      for (const [path, bytes] of files) {
        const target = join(tmp, path);
        // the paths come from another node: nothing may land outside the collection's directory
        if (!target.startsWith(tmp + sep) || path.includes('..')) throw invalid(`snapshot file ${JSON.stringify(path)} is outside the collection`);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, bytes);
      }
      renameSync(tmp, join(this.root, name));
      const collection = await Collection.open(join(this.root, name), this.options);
      this.collections.set(name, collection);
      return collection;
    } finally {
      this.creating.delete(name);
    }
  }

  async drop(name: string): Promise<void> {
    checkName(name);
    if (this.opening.has(name)) throw new StoreError('unavailable', `collection ${name} is still opening; drop it once it is open`, 5);
    const collection = this.collections.get(name);
    if (!collection && !this.failed.has(name)) throw notFound(`no collection named ${JSON.stringify(name)}`);
    this.collections.delete(name);
    this.failed.delete(name);
    await collection?.close();
    const trash = join(this.root, `.dropping-${name}-${Date.now()}`);
    renameSync(join(this.root, name), trash);
    rmSync(trash, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.opened;
    await Promise.all([...this.collections.values()].map((c) => c.close()));
    this.collections.clear();
  }
}
