import { Counter, Gauge, type Registry } from 'prom-client';
import { SupsupError } from '../contract/errors.ts';
import { ModelFileError } from '../model/errors.ts';
import { encodeRecord } from '../model/mask-file.ts';
import { checkNewTasks, loadModel, readManifest } from '../model/model-store.ts';
import type { ModelRuntime, RuntimeLog } from '../runtime/model-runtime.ts';
import { type TaskInfo, type TaskSpec, taskInfo } from '../contract/task.ts';
import { holdsModel, taskSpecOf, pullInto, recordHead, verifiedMask } from './model-copy.ts';
import type { PostgresTaskStore, StoredTask } from './postgres-task-store.ts';

/**
 * One replica's side of the shared task store. Before the runtime loads, `prepare` makes the local model
 * directory match the store. Once serving, `follow` keeps it matching: a LISTEN connection wakes the
 * replica on every commit, a poll every second backs it up, and each change is applied through the
 * runtime (ModelRuntime.addTask/removeTask, the path a single server's PUT takes). Task changes made on
 * this replica go to the store first and answer once committed there and applied here.
 *
 * The store going away: the replica keeps serving what it has, says so (readiness reason,
 * supsup_store_up 0, a log line), refuses task changes with 'unavailable', reconnects every half second
 * and, once back, catches up from the change log.
 */
const POLL_MS = 1000;
const RECONNECT_MS = 500;
const CHANGES_PER_READ = 256;
/** How long a change made here waits to be live here too before it is answered anyway (it is durable). */
const APPLY_WAIT_MS = 5000;

export class StoreReplica {
  /** Last store generation applied locally; undefined: not known (started without the store), a full comparison is due. */
  private generation: number | undefined;
  private runtime: ModelRuntime | undefined;
  private down: string | undefined = 'not connected yet';
  private readonly refused = new Map<string, string>();
  private running: Promise<void> | undefined;
  private again = false;
  private stopListening: (() => Promise<void>) | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private waiters: { generation: number; resolve: () => void }[] = [];
  private readonly upGauge: Gauge;
  private readonly generationGauge: Gauge;
  private readonly refusedCounter: Counter;

  constructor(
    private readonly store: PostgresTaskStore,
    private readonly dir: string,
    private readonly log: RuntimeLog,
    registry: Registry,
  ) {
    const registers = [registry];
    this.upGauge = new Gauge({ name: 'supsup_store_up', help: 'Whether the shared task store answers (1) or not (0).', registers });
    this.generationGauge = new Gauge({ name: 'supsup_store_generation', help: 'The task store generation this replica has applied.', registers });
    this.refusedCounter = new Counter({
      name: 'supsup_store_refused_tasks_total',
      help: 'Tasks read from the store whose mask failed its checksum or checks: refused, not served.',
      registers,
    });
    this.upGauge.set(0);
  }

  /** Why task changes are refused or tasks are missing, when they are; undefined when all is well. */
  get problem(): string | undefined {
    const parts = [];
    if (this.down) parts.push(`task store unreachable (${this.down}): serving the tasks held, task changes refused`);
    if (this.refused.size) parts.push(`${this.refused.size} task(s) refused as corrupt in the store: ${[...this.refused.keys()].slice(0, 5).join(', ')}`);
    return parts.length ? parts.join('; ') : undefined;
  }

  /**
   * Before serving: the local directory brought to the store's state. Without the store, a replica that
   * already holds a copy starts on it; one that holds none waits for the store.
   */
  async prepare(): Promise<void> {
    for (;;) {
      try {
        await this.store.migrate();
        const snapshot = await this.store.snapshot();
        const report = await pullInto(this.dir, this.store, snapshot);
        for (const r of report.refused) this.refuse(r.id, r.reason);
        this.generation = snapshot.generation;
        this.setDown(undefined);
        this.log.info({ store: this.store.address.shown, generation: snapshot.generation, tasks: snapshot.tasks.length, ...report, refused: report.refused.length }, 'local copy matches the task store');
        return;
      } catch (e) {
        if (!(e instanceof SupsupError && e.code === 'unavailable')) throw e;
        this.setDown((e as Error).message);
        if (await holdsModel(this.dir)) {
          this.log.warn({ dir: this.dir }, 'task store unreachable at start: serving the local copy until it is back');
          return;
        }
        this.log.warn({ store: this.store.address.shown }, 'task store unreachable and no local copy yet: waiting for the store');
        await sleep(RECONNECT_MS * 2);
      }
    }
  }

  /** Once the runtime serves the directory: apply every later change as it is committed. */
  follow(runtime: ModelRuntime): void {
    this.runtime = runtime;
    void this.connect();
    const poll = setInterval(() => void this.sync(), POLL_MS);
    poll.unref();
    this.timers.push(poll);
  }

  /** PUT: checked here, committed to the store (the store decides who wins an id), then live here. */
  async addTask(task: TaskSpec, mask: Uint32Array): Promise<TaskInfo> {
    this.requireStarted();
    const manifest = await readManifest(this.dir);
    const next = checkNewTasks({ ...manifest, tasks: [], removed: [] }, [{ task: { ...task, addedAt: new Date().toISOString() }, mask }]);
    const info = taskInfo(next.tasks[0]);
    const generation = await this.store.addTasks([{ info, record: encodeRecord(task.id, mask) }]);
    await this.applied(generation);
    return info;
  }

  /** DELETE: removed from the store (durably), then here. */
  async removeTask(id: string): Promise<void> {
    this.requireStarted();
    const generation = await this.store.removeTask(id);
    await this.applied(generation);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    await this.stopListening?.();
    await this.running;
    await this.store.close();
  }

  private requireStarted(): void {
    if (!this.runtime?.ready) throw new SupsupError('unavailable', 'the replica is still starting: task changes are refused until it serves');
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    try {
      this.stopListening = await this.store.listen(
        () => void this.sync(),
        (err) => {
          this.setDown(err.message);
          this.retryConnect();
        },
      );
      await this.sync();
    } catch (e) {
      this.setDown((e as Error).message);
      this.retryConnect();
    }
  }

  private retryConnect(): void {
    if (this.closed) return;
    const t = setTimeout(() => void this.connect(), RECONNECT_MS);
    t.unref();
    this.timers.push(t);
  }

  /** Brings the runtime up to the store's latest generation; one run at a time, rerun when asked meanwhile. */
  private sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          if (await this.syncOnce()) this.setDown(undefined);
        } catch (e) {
          if (e instanceof SupsupError && e.code === 'unavailable' && /task store/.test(e.message)) this.setDown(e.message);
          else this.log.error({ err: (e as Error).message }, 'applying task store changes failed; retrying at the next poll');
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** False when there was nothing to do it with (no runtime ready yet, or closed). */
  private async syncOnce(): Promise<boolean> {
    const runtime = this.runtime;
    if (!runtime || !runtime.ready || this.closed) return false;
    if (this.generation === undefined) await this.reconcile(runtime);
    for (;;) {
      const changes = await this.store.changesSince(this.generation!, CHANGES_PER_READ);
      if (!changes.length) return true;
      const adds = changes.filter((c) => c.op === 'add').map((c) => c.id);
      const stored = new Map((adds.length ? await this.store.tasks(adds) : []).map((t) => [t.id, t]));
      for (const change of changes) {
        const task = stored.get(change.id);
        if (change.op === 'remove' && runtime.findTask(change.id)) await runtime.removeTask(change.id);
        if (change.op === 'remove') this.refused.delete(change.id);
        // An add whose row is gone or newer was undone by a later change in this same log.
        if (change.op === 'add' && task?.generation === change.generation && !runtime.findTask(change.id)) await this.apply(runtime, task);
        this.advance(change.generation);
      }
      if (changes.length < CHANGES_PER_READ) return true;
    }
  }

  /** The full comparison, when the generation is unknown: local tasks against the store's snapshot. */
  private async reconcile(runtime: ModelRuntime): Promise<void> {
    const snapshot = await this.store.snapshot();
    const { masks } = await loadModel(this.dir);
    const wanted = new Map(snapshot.tasks.map((t) => [t.id, t.head]));
    for (const t of runtime.tasks()) {
      const head = wanted.get(t.id);
      const mask = masks.get(t.id);
      if (head && mask && recordHead(t.id, mask).subarray(0, head.length).equals(head)) wanted.delete(t.id);
      else await runtime.removeTask(t.id);
    }
    for (const task of await this.store.tasks([...wanted.keys()])) await this.apply(runtime, task);
    this.log.info({ generation: snapshot.generation, tasks: runtime.taskCount }, 'caught up with the task store');
    this.advance(snapshot.generation);
  }

  /**
   * A task the engine refuses (a damaged blob, or metadata written around the service that it rejects) is
   * refused here, so one bad change never blocks the ones after it; any other failure is retried.
   */
  private async apply(runtime: ModelRuntime, task: StoredTask): Promise<void> {
    try {
      await runtime.addTask(taskSpecOf(task.info), verifiedMask(task, runtime.info.architecture, this.store.model));
    } catch (e) {
      const refused = e instanceof ModelFileError || (e instanceof SupsupError && (e.code === 'invalid_argument' || e.code === 'already_exists'));
      if (!refused) throw e;
      this.refuse(task.id, (e as Error).message);
    }
  }

  private refuse(id: string, reason: string): void {
    if (this.refused.get(id) === reason) return;
    this.refused.set(id, reason);
    this.refusedCounter.inc();
    this.log.error({ task: id, reason }, 'task refused: its mask in the task store is corrupt; it is not served');
  }

  private advance(generation: number): void {
    this.generation = generation;
    this.generationGauge.set(generation);
    this.waiters = this.waiters.filter((w) => (w.generation <= generation ? (w.resolve(), false) : true));
  }

  /** Resolves once `generation` is applied here, or after APPLY_WAIT_MS (the change is durable either way). */
  private applied(generation: number): Promise<void> {
    if (this.generation !== undefined && this.generation >= generation) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn({ generation }, 'a task change is committed in the store but not yet live on this replica');
        resolve();
      }, APPLY_WAIT_MS);
      this.waiters.push({
        generation,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      void this.sync();
    });
  }

  private setDown(reason: string | undefined): void {
    if (reason === this.down) return;
    const was = this.down;
    this.down = reason;
    this.upGauge.set(reason ? 0 : 1);
    if (reason && !was) this.log.warn({ reason }, 'task store lost: serving the tasks held; task changes answer 503 until it is back');
    else if (!reason && was) this.log.info({}, 'task store reachable');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
