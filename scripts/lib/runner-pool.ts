/**
 * A small supervisor for N gpu-runner processes on fixed ports (`LORAEDGE_RUNNERS=N npm start`,
 * and the chaos e2e test): starts them all, and when one exits that was not asked to stop, logs
 * it and starts it again on the same port (so the edge's RUNNER_URLS stay valid) after a back-off
 * — 1 s, doubling up to 30 s while restarts keep failing or the restarted runner dies within a
 * minute; a runner that stays up a minute is back to the first step.
 *
 * A runner that fails its *first* start fails `startRunnerPool` (a configuration error is not
 * retried forever).
 */
import { startRunner, type RunnerOptions, type Service } from "./stack.js";

export interface RunnerPoolOptions extends Omit<RunnerOptions, "port" | "onLine"> {
  /** One runner per port (fixed: a restarted runner comes back where the edge expects it). */
  ports: number[];
  /** Output lines of runner `index`. */
  onLine?: (index: number, line: string) => void;
  /** Supervisor messages (exits, restarts); default: console.error. */
  log?: (message: string) => void;
  /** First restart delay (default 1000 ms); doubles up to `maxBackoffMs` (default 30 000). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A runner up at least this long resets its back-off (default 60 000 ms). */
  stableMs?: number;
}

export interface SupervisedRunner {
  index: number;
  port: number;
  url: string;
  /** The running process (null between a crash and its restart). */
  service: Service | null;
  /** Restarts so far. */
  restarts: number;
}

export interface RunnerPool {
  runners: SupervisedRunner[];
  urls: string[];
  /** Resolves with runner `index`'s next service once a restart of it is ready. */
  nextStart(index: number): Promise<Service>;
  /** Stops supervising and stops every runner. */
  stop(): Promise<void>;
}

export async function startRunnerPool(options: RunnerPoolOptions): Promise<RunnerPool> {
  const log = options.log ?? ((m: string) => console.error(m));
  const first = options.backoffMs ?? 1_000;
  const max = options.maxBackoffMs ?? 30_000;
  const stableMs = options.stableMs ?? 60_000;
  let stopping = false;
  const waiters = new Map<number, ((s: Service) => void)[]>();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const launch = (index: number) =>
    startRunner({ ...options, port: options.ports[index]!, onLine: options.onLine && ((line) => options.onLine!(index, line)) });

  const supervise = (runner: SupervisedRunner, service: Service, backoff: number) => {
    runner.service = service;
    const startedAt = Date.now();
    for (const w of waiters.get(runner.index) ?? []) w(service);
    waiters.delete(runner.index);
    void service.exited.then((code) => {
      if (stopping) return;
      runner.service = null;
      const delay = Date.now() - startedAt >= stableMs ? first : backoff;
      log(`runner ${runner.index} (${runner.url}, pid ${service.process.pid}) exited (${code}); restarting in ${delay} ms`);
      restartAfter(runner, delay);
    });
  };

  /** Launches started by restarts and not finished yet (stop() waits for them). */
  const restarting = new Set<Promise<Service>>();

  const restartAfter = (runner: SupervisedRunner, delay: number) => {
    const timer = setTimeout(async () => {
      timers.delete(timer);
      if (stopping) return;
      const next = Math.min(max, delay * 2);
      const launching = launch(runner.index);
      restarting.add(launching);
      try {
        const service = await launching;
        if (stopping) return void (await service.stop());
        runner.restarts++;
        log(`runner ${runner.index} (${runner.url}) restarted (pid ${service.process.pid}, restart ${runner.restarts})`);
        supervise(runner, service, next);
      } catch (e) {
        if (stopping) return;
        log(`runner ${runner.index} (${runner.url}) failed to restart: ${(e as Error).message.split("\n")[0]}; retrying in ${next} ms`);
        restartAfter(runner, next);
      } finally {
        restarting.delete(launching);
      }
    }, delay);
    timers.add(timer);
  };

  const settled = await Promise.allSettled(options.ports.map((_, i) => launch(i)));
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(settled.map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined)));
    throw (failed as PromiseRejectedResult).reason;
  }
  const runners: SupervisedRunner[] = settled.map((s, index) => {
    const service = (s as PromiseFulfilledResult<Service>).value;
    return { index, port: options.ports[index]!, url: service.url, service: null, restarts: 0 };
  });
  runners.forEach((r, i) => supervise(r, (settled[i] as PromiseFulfilledResult<Service>).value, first));

  return {
    runners,
    urls: runners.map((r) => r.url),
    nextStart: (index) =>
      new Promise<Service>((resolve) => waiters.set(index, [...(waiters.get(index) ?? []), resolve])),
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      // A restart under way (its model still loading) is awaited and stopped too: its runner is
      // detached (own process group), so leaving it would keep the port after we exit.
      const launching = await Promise.allSettled([...restarting]);
      await Promise.all([
        ...runners.map((r) => r.service?.stop()),
        ...launching.map((l) => (l.status === "fulfilled" ? l.value.stop() : undefined)),
      ]);
    },
  };
}
