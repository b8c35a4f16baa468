// The previews table: which services are previews of which branch of which service. A row
// outlives its preview service (deleted_at set), so the preview's usage stays counted under its
// parent after the branch is gone.
import type { Db } from './db.ts';

export interface Preview {
  /** the preview service's name */
  name: string;
  parent: string;
  branch: string;
  /** the pull or merge request that asked for it, when one did */
  pullRequest: number | null;
  createdAt: string;
  deletedAt: string | null;
}

interface Row {
  name: string;
  parent: string;
  branch: string;
  pull_request: number | null;
  created_at: string;
  deleted_at: string | null;
}

const fromRow = (r: Row): Preview => ({
  name: r.name,
  parent: r.parent,
  branch: r.branch,
  pullRequest: r.pull_request,
  createdAt: r.created_at,
  deletedAt: r.deleted_at,
});

export interface PreviewStore {
  /** the live preview of a parent's branch */
  forBranch(parent: string, branch: string): Preview | undefined;
  /** the live preview service of that name */
  get(name: string): Preview | undefined;
  /** a parent's live previews, by branch */
  listFor(parent: string): Preview[];
  /** every live preview */
  list(): Preview[];
  /** preview name → parent, deleted previews included (usage is counted under the parent) */
  parents(): Map<string, string>;
  insert(p: { name: string; parent: string; branch: string; pullRequest: number | null; now: string }): Preview;
  setPullRequest(name: string, pullRequest: number | null): void;
  markDeleted(name: string, now: string): void;
}

export function createPreviewStore(db: Db): PreviewStore {
  const q = {
    forBranch: db.prepare<[string, string], Row>('SELECT * FROM previews WHERE parent = ? AND branch = ? AND deleted_at IS NULL'),
    get: db.prepare<[string], Row>('SELECT * FROM previews WHERE name = ? AND deleted_at IS NULL'),
    listFor: db.prepare<[string], Row>('SELECT * FROM previews WHERE parent = ? AND deleted_at IS NULL ORDER BY branch'),
    list: db.prepare<[], Row>('SELECT * FROM previews WHERE deleted_at IS NULL ORDER BY parent, branch'),
    all: db.prepare<[], { name: string; parent: string }>('SELECT name, parent FROM previews ORDER BY created_at'),
    // a name used again (the branch came back) takes its row over
    insert: db.prepare(
      `INSERT INTO previews (name, parent, branch, pull_request, created_at) VALUES (@name, @parent, @branch, @pullRequest, @now)
       ON CONFLICT(name) DO UPDATE SET parent = excluded.parent, branch = excluded.branch, pull_request = excluded.pull_request, created_at = excluded.created_at, deleted_at = NULL`,
    ),
    setPullRequest: db.prepare('UPDATE previews SET pull_request = ? WHERE name = ? AND deleted_at IS NULL'),
    markDeleted: db.prepare('UPDATE previews SET deleted_at = ? WHERE name = ? AND deleted_at IS NULL'),
  };
  const one = (r: Row | undefined) => (r ? fromRow(r) : undefined);
  return {
    forBranch: (parent, branch) => one(q.forBranch.get(parent, branch)),
    get: (name) => one(q.get.get(name)),
    listFor: (parent) => q.listFor.all(parent).map(fromRow),
    list: () => q.list.all().map(fromRow),
    parents: () => new Map(q.all.all().map((r) => [r.name, r.parent])),
    insert(p) {
      q.insert.run(p);
      return fromRow(q.get.get(p.name)!);
    },
    setPullRequest(name, pullRequest) {
      q.setPullRequest.run(pullRequest, name);
    },
    markDeleted(name, now) {
      q.markDeleted.run(now, name);
    },
  };
}
