/**
 * Work that runs after the response was sent (`ctx.waitUntil`): usage settlement and use
 * counts, so they add nothing to the response's latency.
 *
 * The work is also tracked in this isolate, so `afterResponseSettled()` can wait for it: the
 * worker tests' request helper does, modelling a client whose next request comes after the edge
 * finished (a test of the race itself calls the worker directly).
 */
const inFlight = new Set<Promise<void>>();

interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

export function afterResponse(c: { executionCtx: WaitUntil }, work: Promise<unknown>): void {
  const tracked: Promise<void> = work.then(
    () => undefined,
    () => undefined, // the work logs its own failures
  ).finally(() => inFlight.delete(tracked));
  inFlight.add(tracked);
  let ctx: WaitUntil | undefined;
  try {
    ctx = c.executionCtx;
  } catch {
    ctx = undefined; // Hono throws without an ExecutionContext (app.request in a unit test): the promise still runs
  }
  ctx?.waitUntil(tracked);
}

/** Resolves once every piece of after-response work this isolate started has finished. */
export async function afterResponseSettled(): Promise<void> {
  while (inFlight.size > 0) await Promise.all([...inFlight]);
}
