// What the run must undo if it is cut short (deadline, Ctrl-C): each resource registers its own
// undo when made and drops it when it undid itself; runCleanups() undoes the rest, newest first.
type Undo = () => Promise<unknown> | unknown;

const pending: Undo[] = [];

/** registers `undo`; the returned function runs it once and unregisters it */
export function deferCleanup(undo: Undo): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    const i = pending.indexOf(once);
    if (i >= 0) pending.splice(i, 1);
    await undo();
  };
  pending.push(once);
  return once;
}

export async function runCleanups(onError: (err: unknown) => void): Promise<void> {
  // work still running may register more while this runs: a few passes, not an endless one
  for (let pass = 0; pass < 5 && pending.length; pass++) {
    for (const undo of pending.slice().reverse()) {
      try {
        await undo();
      } catch (err) {
        onError(err);
      }
    }
  }
}
