import pg from 'pg';
import { SupsupError } from '../contract/errors.ts';
import type { Architecture } from '../core/architecture.ts';
import type { Normalization } from '../contract/model.ts';
import type { TaskInfo } from '../contract/task.ts';
import type { UnknownTaskThreshold } from '../model/manifest.ts';
import type { StoreAddress } from './store-url.ts';

/**
 * The shared task store of a replicated deployment, on PostgreSQL (why PostgreSQL: docs/replicas.md).
 * One database can hold several models, each named by the store URL's `model` parameter.
 *
 * - `supsup_models`: the model's base (architecture, seed, PRNG version, normalization, ε) and its
 *   generation, a counter bumped by every task change. Writers lock this row (SELECT … FOR UPDATE), so
 *   changes of one model commit one at a time, in generation order.
 * - `supsup_tasks`: one row per live task: its shown metadata and its mask as a masks-file record
 *   (mask-file.ts: id, word count, CRC-32 of header and payload), the end-to-end checksum every replica
 *   verifies before serving it.
 * - `supsup_changes`: the change log (generation, add|remove, id) replicas follow. A commit sends
 *   NOTIFY supsup_changes with the model name, so replicas read the log at once instead of at their next poll.
 *
 * A call answers only after COMMIT returned: with PostgreSQL's defaults (fsync, synchronous_commit on)
 * the change is then in the write-ahead log on disk. A store that cannot be reached is an SupsupError
 * 'unavailable' (503 / UNAVAILABLE).
 */
export const CHANGES_CHANNEL = 'supsup_changes';

/** What a model is apart from its tasks: enough to create the same base network on every replica. */
export interface ModelBase {
  architecture: Architecture;
  seed: number;
  prngVersion: number;
  normalization: Normalization;
  unknownTask?: UnknownTaskThreshold;
}

export interface StoredTask {
  id: string;
  /** The generation that added it. */
  generation: number;
  info: TaskInfo;
  /** The masks-file record of its mask (checked by the reader, never trusted). */
  record: Buffer;
}

export type Change = { generation: number; op: 'add'; id: string } | { generation: number; op: 'remove'; id: string };

/** The model's tasks at one generation, without their masks: ids and record headers (which hold the payload's CRC-32). */
export interface Snapshot {
  base: ModelBase;
  generation: number;
  tasks: { id: string; head: Buffer }[];
}

/** Bytes of a record that identify its content: fixed header, the longest id, both CRCs (mask-file.ts). */
export const RECORD_HEAD_BYTES = 18 + 64;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS supsup_models (
  model      text PRIMARY KEY,
  base       jsonb NOT NULL,
  generation bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS supsup_tasks (
  model      text NOT NULL REFERENCES supsup_models ON DELETE CASCADE,
  id         text NOT NULL,
  generation bigint NOT NULL,
  info       jsonb NOT NULL,
  record     bytea NOT NULL,
  PRIMARY KEY (model, id)
);
-- Masks are random bits: compressing them is wasted work.
ALTER TABLE supsup_tasks ALTER COLUMN record SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS supsup_changes (
  model      text NOT NULL REFERENCES supsup_models ON DELETE CASCADE,
  generation bigint NOT NULL,
  op         text NOT NULL CHECK (op IN ('add', 'remove')),
  id         text NOT NULL,
  PRIMARY KEY (model, generation)
);`;

export class PostgresTaskStore {
  private readonly pool: pg.Pool;
  private closed = false;

  constructor(readonly address: StoreAddress) {
    this.pool = new pg.Pool({
      connectionString: address.connectionString,
      max: 4,
      connectionTimeoutMillis: 2000,
      query_timeout: 10_000,
    });
    // An idle client losing its server is reported here; the next query sees the store is gone.
    this.pool.on('error', () => undefined);
  }

  get model(): string {
    return this.address.model;
  }

  /** Creates the tables when missing (idempotent). */
  async migrate(): Promise<void> {
    await this.call(async (c) => {
      await c.query('SELECT pg_advisory_lock(hashtext($1))', ['supsup_schema']);
      try {
        await c.query(SCHEMA);
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtext($1))', ['supsup_schema']);
      }
    });
  }

  /** The model's base and generation, or undefined when the store has no such model. */
  async head(): Promise<{ base: ModelBase; generation: number } | undefined> {
    const r = await this.call((c) => c.query('SELECT base, generation FROM supsup_models WHERE model = $1', [this.model]));
    return r.rows[0] ? { base: r.rows[0].base as ModelBase, generation: Number(r.rows[0].generation) } : undefined;
  }

  /** Creates the model with no tasks; refuses when it exists with another base. */
  async createModel(base: ModelBase): Promise<void> {
    await this.call(async (c) => {
      await c.query('INSERT INTO supsup_models (model, base) VALUES ($1, $2) ON CONFLICT (model) DO NOTHING', [this.model, base]);
      const r = await c.query('SELECT base FROM supsup_models WHERE model = $1', [this.model]);
      if (!sameBase(r.rows[0].base as ModelBase, base)) {
        throw new SupsupError('failed_precondition', `the store already holds a model "${this.model}" with another architecture, seed or normalization`);
      }
    });
  }

  /** Every live task (ids and record heads) at one consistent generation. */
  async snapshot(): Promise<Snapshot> {
    return this.call(async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const m = await c.query('SELECT base, generation FROM supsup_models WHERE model = $1', [this.model]);
        if (!m.rows[0]) throw new SupsupError('not_found', `the store holds no model "${this.model}" (supsup store push copies one in)`);
        const t = await c.query(`SELECT id, substring(record FROM 1 FOR ${RECORD_HEAD_BYTES}) AS head FROM supsup_tasks WHERE model = $1 ORDER BY generation`, [
          this.model,
        ]);
        return { base: m.rows[0].base as ModelBase, generation: Number(m.rows[0].generation), tasks: t.rows as { id: string; head: Buffer }[] };
      } finally {
        await c.query('COMMIT');
      }
    });
  }

  /** The named tasks that are still live, with their records. */
  async tasks(ids: string[]): Promise<StoredTask[]> {
    const r = await this.call((c) =>
      c.query('SELECT id, generation, info, record FROM supsup_tasks WHERE model = $1 AND id = ANY($2) ORDER BY generation', [this.model, ids]),
    );
    return r.rows.map((row) => ({ id: row.id as string, generation: Number(row.generation), info: row.info as TaskInfo, record: row.record as Buffer }));
  }

  /** Changes after `generation`, oldest first (at most `limit`). */
  async changesSince(generation: number, limit: number): Promise<Change[]> {
    const r = await this.call((c) =>
      c.query('SELECT generation, op, id FROM supsup_changes WHERE model = $1 AND generation > $2 ORDER BY generation LIMIT $3', [this.model, generation, limit]),
    );
    return r.rows.map((row) => ({ generation: Number(row.generation), op: row.op as 'add' | 'remove', id: row.id as string }));
  }

  /** Adds tasks in one transaction; resolves with the generation of the last once it is committed. A taken id: 'already_exists'. */
  async addTasks(items: { info: TaskInfo; record: Buffer }[]): Promise<number> {
    return this.change(async (c, next) => {
      let generation = 0;
      for (const { info, record } of items) {
        const taken = await c.query('SELECT 1 FROM supsup_tasks WHERE model = $1 AND id = $2', [this.model, info.id]);
        if (taken.rowCount) throw new SupsupError('already_exists', `task "${info.id}" already exists`);
        generation = next();
        await c.query('INSERT INTO supsup_tasks (model, id, generation, info, record) VALUES ($1, $2, $3, $4, $5)', [this.model, info.id, generation, info, record]);
        await c.query("INSERT INTO supsup_changes (model, generation, op, id) VALUES ($1, $2, 'add', $3)", [this.model, generation, info.id]);
      }
      return generation;
    });
  }

  /** Removes a task; resolves with its generation once committed. No such task: 'not_found'. */
  async removeTask(id: string): Promise<number> {
    return this.change(async (c, next) => {
      const gone = await c.query('DELETE FROM supsup_tasks WHERE model = $1 AND id = $2', [this.model, id]);
      if (!gone.rowCount) throw new SupsupError('not_found', `task "${id}" does not exist`);
      const generation = next();
      await c.query("INSERT INTO supsup_changes (model, generation, op, id) VALUES ($1, $2, 'remove', $3)", [this.model, generation, id]);
      return generation;
    });
  }

  /**
   * A dedicated connection that LISTENs for this model's commits. `onChange` runs on every notification;
   * `onLost` once when the connection drops (the caller reconnects). Resolves once listening.
   */
  async listen(onChange: () => void, onLost: (err: Error) => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: this.address.connectionString, connectionTimeoutMillis: 2000 });
    let lost = false;
    const lose = (err: Error) => {
      if (lost) return;
      lost = true;
      client.end().catch(() => undefined);
      onLost(err);
    };
    client.on('error', lose);
    client.on('end', () => lose(new Error('the store closed the connection')));
    client.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL && n.payload === this.model) onChange();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (e) {
      lost = true;
      await client.end().catch(() => undefined);
      throw unreachable(e);
    }
    return async () => {
      lost = true;
      await client.end().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** One change transaction: the model row locked (so generations commit in order), NOTIFY on commit. */
  private change<T>(fn: (c: pg.PoolClient, next: () => number) => Promise<T>): Promise<T> {
    return this.call(async (c) => {
      await c.query('BEGIN');
      try {
        const m = await c.query('SELECT generation FROM supsup_models WHERE model = $1 FOR UPDATE', [this.model]);
        if (!m.rows[0]) throw new SupsupError('failed_precondition', `the store holds no model "${this.model}"`);
        let generation = Number(m.rows[0].generation);
        const result = await fn(c, () => ++generation);
        await c.query('UPDATE supsup_models SET generation = $2 WHERE model = $1', [this.model, generation]);
        await c.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, this.model]);
        await c.query('COMMIT');
        return result;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  /** Runs `fn` on a pooled connection; a store that cannot be reached becomes 'unavailable'. */
  private async call<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw unreachable(e);
    }
    let broken = false;
    // The server ending the session between two queries (a restart: 57P01) is emitted as an 'error' event on
    // the checked-out client, which would otherwise crash the process; the next query then fails on its own.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (e) {
      if (e instanceof SupsupError) throw e;
      broken = isConnectionProblem(e);
      throw broken ? unreachable(e) : e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
}

/** A database answer with an SQLSTATE outside the connection classes is a real error; anything else means the store is gone. */
function isConnectionProblem(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith('08') || code.startsWith('57') || code.startsWith('53');
}

function unreachable(e: unknown): SupsupError {
  return new SupsupError('unavailable', `the task store is unreachable (${(e as Error)?.message ?? e}): task changes are refused until it is back`);
}

/** Whether two bases build the same network (jsonb reorders keys, so compare canonically). */
export function sameBase(a: ModelBase, b: ModelBase): boolean {
  const key = (m: ModelBase) => canonicalJson([m.architecture, m.seed, m.prngVersion, m.normalization]);
  return key(a) === key(b);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
