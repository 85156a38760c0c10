// Paging the task list (GET /tasks, gRPC ListTasks): pages in task-id order, each after the last id of the one before.
// The token names a position in id order, not a snapshot, so it stays valid while tasks come and go, across restarts
// and on every replica: a task that exists for the whole listing appears exactly once; one added or removed during it
// may or may not appear; no task appears twice.
import { invalid } from '../contract/errors.ts';
import { type TaskInfo, isTaskId } from '../contract/task.ts';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** `full`: every field; `basic`: without the transform (a permutation task's is 784 numbers). */
export const TASK_VIEWS = ['full', 'basic'] as const;
export type TaskView = (typeof TASK_VIEWS)[number];

export interface PageRequest {
  /** Tasks per page, 1..MAX_PAGE_SIZE (absent: DEFAULT_PAGE_SIZE). */
  limit?: unknown;
  /** From the previous page's nextPageToken (absent: the first page). */
  pageToken?: unknown;
  view?: unknown;
}

export interface TaskPage {
  tasks: (TaskInfo | Omit<TaskInfo, 'transform'>)[];
  /** Present while more tasks follow. */
  nextPageToken?: string;
}

/** Whether the caller asked for a page at all (else the whole list, in the order tasks were added, as before paging). */
export function wantsPage(r: PageRequest): boolean {
  return r.limit !== undefined || r.pageToken !== undefined;
}

/** The view asked for; invalid_argument for anything else. */
export function taskView(view: unknown): TaskView {
  if (view === undefined || view === '') return 'full';
  if (typeof view !== 'string' || !(TASK_VIEWS as readonly string[]).includes(view)) {
    throw invalid(`view must be one of ${TASK_VIEWS.map((v) => `"${v}"`).join(', ')}, got ${JSON.stringify(view)}`);
  }
  return view as TaskView;
}

export function inView(t: TaskInfo, view: TaskView): TaskInfo | Omit<TaskInfo, 'transform'> {
  if (view === 'full') return t;
  const { transform: _transform, ...basic } = t;
  return basic;
}

/** One page of `byId` (every task, sorted by id in code-unit order). */
export function taskPage(byId: readonly TaskInfo[], r: PageRequest): TaskPage {
  const limit = pageSize(r.limit);
  const view = taskView(r.view);
  const after = r.pageToken === undefined || r.pageToken === '' ? undefined : decodeToken(r.pageToken);
  let lo = 0;
  if (after !== undefined) {
    for (let hi = byId.length; lo < hi; ) {
      const mid = (lo + hi) >>> 1;
      if (byId[mid].id <= after) lo = mid + 1;
      else hi = mid;
    }
  }
  const page = byId.slice(lo, lo + limit);
  const more = lo + limit < byId.length;
  return { tasks: page.map((t) => inView(t, view)), ...(more ? { nextPageToken: encodeToken(page[page.length - 1].id) } : {}) };
}

/** Tasks sorted by id, the order pages use. */
export function sortedById(tasks: Iterable<TaskInfo>): TaskInfo[] {
  return [...tasks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function pageSize(limit: unknown): number {
  if (limit === undefined || limit === '' || limit === 0) return DEFAULT_PAGE_SIZE;
  const n = typeof limit === 'string' && /^\d+$/.test(limit) ? Number(limit) : limit;
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > MAX_PAGE_SIZE) {
    throw invalid(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${JSON.stringify(limit)}`);
  }
  return n as number;
}

const TOKEN_PREFIX = 'tasks-v1:';

function encodeToken(afterId: string): string {
  return Buffer.from(TOKEN_PREFIX + afterId, 'utf8').toString('base64url');
}

function decodeToken(token: unknown): string {
  const text = typeof token === 'string' && /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
  const id = text.startsWith(TOKEN_PREFIX) ? text.slice(TOKEN_PREFIX.length) : undefined;
  if (id === undefined || !isTaskId(id)) throw invalid('pageToken is not one this service issued: pass nextPageToken from the previous page unchanged');
  return id;
}
