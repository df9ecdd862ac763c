import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { StoreError, type Collection, type StoreLogger } from '@adanns/store';
import { decodeEntry, decodeVector, type LogEntry } from './log.js';
import { consumerName, streamName } from './names.js';

export type ReplicaState = 'catching-up' | 'serving' | 'lost';

/**
 * This node's replica of one shard: a durable JetStream consumer (one per
 * node and shard) whose messages are applied to the local collection in
 * stream order. Each message's stream sequence is stored in the same LMDB
 * transaction as the points it carries (Collection.logSequence), and the
 * message is acknowledged only after that commit; so a restart resumes right
 * after the last applied message, and a message delivered again (not acked
 * before a crash, or after an ack was lost) is recognised and skipped.
 */
export class Replica {
  state: ReplicaState = 'catching-up';
  /** Local time until which this node's lease on the replica runs (renewed by the node's heartbeat; for the records, not for serving). */
  leaseUntil = 0;
  private messages: ConsumerMessages | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private waiters: { seq: number; resolve: () => void }[] = [];
  /** The stream's last sequence when the consumer started: applied that far, the replica serves. */
  private target = 0;
  lastError: string | null = null;
  /** The log was trimmed past what this replica applied: it stopped, and starts again from the shard's snapshot (ClusterNode). */
  behindLog = false;

  constructor(
    readonly collectionName: string,
    readonly shard: number,
    readonly collection: Collection,
    private readonly nodeId: string,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly logger?: StoreLogger,
    /** What a build request in the log does (the node: one replica trains and publishes, the others load its artefact); default: build here. */
    private readonly onBuild?: (replica: Replica, seq: number, id: string | undefined) => void,
  ) {}

  get appliedSeq(): number {
    return this.collection.logSequence;
  }

  /**
   * Whether searches may be served here now: caught up once and not stopped.
   * Not tied to leaseUntil: searches read only the local LMDB, and a lease
   * that could not be renewed because the meta bucket did not answer (a
   * nats server failing over) is no evidence that another node took the
   * replica; only a lease seen taken stops it (ClusterNode.manageReplicas).
   */
  get serving(): boolean {
    return this.state === 'serving';
  }

  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.running = this.loop();
  }

  /** Stops applying the log (the lease was lost or the node stops); the local data stays for a later claim. */
  async stop(state: ReplicaState = 'lost'): Promise<void> {
    this.stopped = true;
    this.state = state;
    await this.messages?.close().catch(() => undefined);
    await this.running;
    this.running = undefined;
  }

  /** Resolves once this replica has applied the log up to `seq`, or rejects after `timeoutMs`. */
  waitFor(seq: number, timeoutMs: number): Promise<void> {
    if (this.appliedSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new StoreError('unavailable', `shard ${this.shard} of ${this.collectionName} had applied its log to ${this.appliedSeq}, not yet to ${seq} (the write token's), within ${timeoutMs} ms`, 1));
      }, Math.max(1, timeoutMs));
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
    });
  }

  private log(level: keyof StoreLogger, message: string, fields: object = {}): void {
    this.logger?.[level]({ collection: this.collectionName, shard: this.shard, ...fields }, `replica ${this.collectionName}/${this.shard}: ${message}`);
  }

  /** Creates the consumer where the local data ends, or keeps the one there when it agrees. */
  private async openConsumer(): Promise<void> {
    const stream = streamName(this.collectionName, this.shard);
    const name = consumerName(this.nodeId);
    const applied = this.appliedSeq;
    const first = (await this.jsm.streams.info(stream)).state.first_seq;
    if (applied + 1 < first) {
      this.behindLog = true;
      throw new Error(`the log starts at ${first} (trimmed after a snapshot), this replica applied up to ${applied}: it starts again from the snapshot`);
    }
    const info = await this.jsm.consumers.info(stream, name).catch(() => undefined);
    // the consumer must deliver applied + 1 next: one that delivered further (messages in flight when this
    // process died would come back only after the ack wait, after newer ones) or acknowledged past what LMDB
    // holds (the local data was lost) is created again where the local data ends
    const fresh = !info || info.delivered.stream_seq !== applied || info.ack_floor.stream_seq > applied;
    if (info && fresh) {
      this.log('info', `consumer delivered up to ${info.delivered.stream_seq} (acknowledged ${info.ack_floor.stream_seq}), the local data ends at ${applied}: starting it again there`);
      await this.jsm.consumers.delete(stream, name);
    }
    if (fresh) {
      await this.jsm.consumers.add(stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        ...(applied === 0 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: applied + 1 }),
        // messages are applied one at a time in order; a few hundred in flight keep the pipe full
        max_ack_pending: 512,
        ack_wait: 30_000_000_000,
      });
    }
    const streamInfo = await this.jsm.streams.info(stream);
    this.target = streamInfo.state.last_seq;
    if (applied >= this.target) this.caughtUp();
  }

  private caughtUp(): void {
    if (this.state === 'catching-up') {
      this.state = 'serving';
      this.log('info', `caught up at sequence ${this.appliedSeq}: serving`, { sequence: this.appliedSeq });
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.openConsumer();
        const consumer = await this.js.consumers.get(streamName(this.collectionName, this.shard), consumerName(this.nodeId));
        // short pulls with frequent idle heartbeats: a consumer whose leader moved (a nats server died) is
        // noticed in seconds rather than the 30 s of the defaults, and pulled again from its new leader
        this.messages = await consumer.consume({ max_messages: 256, expires: 5000, idle_heartbeat: 1000 });
        if (this.stopped) await this.messages.close();
        for await (const m of this.messages) {
          if (this.stopped) break;
          await this.applyMessage(m);
        }
      } catch (e) {
        if (this.stopped) break;
        if (this.behindLog) {
          this.log('warn', (e as Error).message);
          this.state = 'lost';
          break;
        }
        this.lastError = (e as Error).message;
        this.log('error', `applying the log failed, starting again from sequence ${this.appliedSeq + 1} in 1 s: ${(e as Error).message}`, { err: (e as Error).message });
        await this.messages?.close().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private async applyMessage(m: JsMsg): Promise<void> {
    const seq = m.seq;
    // delivered again after it was applied (no ack reached the server before a crash, or a redelivery)
    if (seq <= this.appliedSeq) {
      m.ack();
      return;
    }
    // the logs have no gaps (only their start is trimmed, past every replica: openConsumer checks): a later
    // message first means one is being redelivered behind it; the consumer starts again at the next one
    if (seq !== this.appliedSeq + 1) throw new Error(`log message ${seq} arrived while ${this.appliedSeq + 1} is the next to apply`);
    let entry: LogEntry | undefined;
    try {
      entry = decodeEntry(m.data);
      await this.apply(entry, seq);
    } catch (e) {
      // a message no replica can apply (refused as invalid by the store) is recorded as applied and
      // logged, so the log goes on: every replica refuses it the same way. Anything else is retried.
      if (!(e instanceof StoreError) || e.kind === 'unavailable') throw e;
      this.log('error', `log message ${seq} (${entry?.op ?? 'undecodable'}) was refused and skipped: ${e.message}`, { sequence: seq, err: e.message });
      await this.collection.markLogApplied(seq);
    }
    m.ack();
    for (const w of this.waiters.filter((w) => w.seq <= seq)) w.resolve();
    this.waiters = this.waiters.filter((w) => w.seq > seq);
    if (seq >= this.target || m.info.pending === 0) this.caughtUp();
  }

  private async apply(entry: LogEntry, logSequence: number): Promise<void> {
    const c = this.collection;
    switch (entry.op) {
      case 'upsert':
        await c.upsert(
          entry.points.map((p) => ({ id: p.id, vector: decodeVector(p.v), ...(p.payload ? { payload: p.payload } : {}) })),
          { logSequence },
        );
        return;
      case 'delete':
        await c.delete(entry.ids, { logSequence });
        return;
      case 'delete-filter':
        await c.deleteByFilter(entry.filter, { logSequence });
        return;
      case 'build':
        await c.markLogApplied(logSequence);
        if (this.onBuild) {
          this.onBuild(this, logSequence, entry.id);
          return;
        }
        // a build already running or too few points is not an error of the log
        if (c.count > 0) {
          try {
            void c.build().catch((e: Error) => this.log('warn', `index build failed: ${e.message}`));
          } catch (e) {
            this.log('warn', `index build not started: ${(e as Error).message}`);
          }
        }
        return;
      case 'payload-index':
        await c.createPayloadIndex(entry.field, entry.type);
        await c.markLogApplied(logSequence);
        return;
      case 'drop-payload-index':
        await c.dropPayloadIndex(entry.field).catch((e: unknown) => {
          if (!(e instanceof StoreError && e.kind === 'not_found')) throw e;
        });
        await c.markLogApplied(logSequence);
        return;
      default:
        throw new StoreError('invalid', `unknown log operation ${JSON.stringify((entry as { op: unknown }).op)}`);
    }
  }
}
