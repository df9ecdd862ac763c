import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Collection, type CollectionOptions, type CollectionStats } from './collection.js';
import { notFound, StoreError } from './errors.js';
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
 */
export class Store {
  private readonly collections = new Map<string, Collection>();
  private readonly failed = new Map<string, string>();

  private constructor(
    readonly dataDir: string,
    private readonly options: CollectionOptions,
  ) {}

  private get root(): string {
    return join(this.dataDir, 'collections');
  }

  static async open(dataDir: string, options: CollectionOptions): Promise<Store> {
    const store = new Store(dataDir, options);
    mkdirSync(store.root, { recursive: true });
    for (const entry of readdirSync(store.root)) {
      const path = join(store.root, entry);
      if (entry.startsWith('.')) {
        rmSync(path, { recursive: true, force: true }); // an interrupted create or drop
        continue;
      }
      try {
        store.collections.set(entry, await Collection.open(path, options));
      } catch (e) {
        store.failed.set(entry, (e as Error).message);
        options.log?.('error', `collection ${entry} failed to open and is not served: ${(e as Error).message}`);
      }
    }
    return store;
  }

  names(): string[] {
    return [...this.collections.keys(), ...this.failed.keys()].sort();
  }

  list(): (CollectionStats | { name: string; error: string })[] {
    return this.names().map((name) => this.collections.get(name)?.stats() ?? { name, error: this.failed.get(name)! });
  }

  get(name: string): Collection {
    const collection = this.collections.get(name);
    if (collection) return collection;
    const failure = this.failed.get(name);
    if (failure) throw new StoreError('unavailable', `collection ${name} failed to open: ${failure}`);
    throw notFound(`no collection named ${JSON.stringify(name)}`);
  }

  async create(name: string, input: { dim: unknown; metric?: unknown; dims?: unknown; index?: unknown }): Promise<Collection> {
    checkName(name);
    if (this.collections.has(name) || this.failed.has(name) || existsSync(join(this.root, name))) throw new StoreError('conflict', `collection ${name} already exists`);
    const schema = makeSchema(name, input);
    const tmp = join(this.root, `.creating-${name}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const { store } = PointStore.open(join(tmp, 'points'), schema);
    await store.close();
    renameSync(tmp, join(this.root, name));
    const collection = await Collection.open(join(this.root, name), this.options);
    this.collections.set(name, collection);
    return collection;
  }

  async drop(name: string): Promise<void> {
    checkName(name);
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
    await Promise.all([...this.collections.values()].map((c) => c.close()));
    this.collections.clear();
  }
}
