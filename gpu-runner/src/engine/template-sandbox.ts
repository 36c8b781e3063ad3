/**
 * Renders untrusted chat templates (an adapter's own, uploaded by a tenant) off the event loop,
 * with a time limit, a memory limit and an output cap. A Jinja template is a program: a loop
 * over `range(10**9)` that only runs for some conversations passes any upload check, and
 * rendered in-process it would stall every stream the runner serves. The model's own template
 * (imported by the operator) is trusted and still renders in-process.
 *
 * Semantics: one long-lived child process (`template-sandbox-main.ts`, started on first use; a
 * process, not a worker thread: V8 aborts the whole process on some out-of-memory paths, e.g.
 * `range(10**9)` materialising a huge array, which a thread's resourceLimits do not contain);
 * renders run one at a time in arrival order, each given `timeoutMs` from when it starts. A
 * render over its time, one that kills the process (its heap is capped at `maxHeapMb`) or one
 * over `maxOutputChars` rejects with a ChatTemplateError saying so (the engine answers 400);
 * the process is then ended and the next render starts a fresh one. The template's own errors
 * (parse, raise_exception) reject with its message, as an in-process render would.
 * Cost: an IPC round trip per render (≈ 0.1–0.5 ms) plus the render; a fresh process ≈ 0.5 s.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ChatTemplateError, type ChatMessage, type ChatTemplateSpec } from "#core/chat/chat-template";

export interface TemplateSandboxOptions {
  /** Wall-clock limit of one render (default 1000 ms). */
  timeoutMs?: number;
  /** Longest rendered prompt, in UTF-16 units (default 4 Mi: far above any context). */
  maxOutputChars?: number;
  /** Heap of the sandbox process (default 256 MiB). */
  maxHeapMb?: number;
}

/** Sent to the sandbox process: one render. */
export interface SandboxRequest {
  id: number;
  spec: ChatTemplateSpec;
  messages: ChatMessage[];
  maxOutputChars: number;
}

/** Sent back: its text, or the template's error message. */
export type SandboxReply = { id: number; ok: true; text: string } | { id: number; ok: false; message: string };

export class TemplateSandbox {
  private worker: ChildProcess | null = null;
  private nextId = 1;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly timeoutMs: number;
  private readonly maxOutputChars: number;
  private readonly maxHeapMb: number;

  constructor(options: TemplateSandboxOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.maxOutputChars = options.maxOutputChars ?? 4 * 1024 * 1024;
    this.maxHeapMb = options.maxHeapMb ?? 256;
  }

  /** The template applied to `messages` (with add_generation_prompt), or a ChatTemplateError. */
  render(spec: ChatTemplateSpec, messages: readonly ChatMessage[]): Promise<string> {
    const run = this.tail.then(() => this.renderNow(spec, messages));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Ends the sandbox process (a later render starts a new one). */
  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    worker?.kill("SIGKILL");
  }

  private process(): ChildProcess {
    if (!this.worker) {
      const child = fork(fileURLToPath(new URL("./template-sandbox-main.ts", import.meta.url)), [], {
        execArgv: ["--import", "tsx", `--max-old-space-size=${this.maxHeapMb}`],
        stdio: ["ignore", "ignore", "ignore", "ipc"],
      });
      // An idle sandbox never keeps the runner alive (it exits when its IPC channel closes).
      child.unref();
      child.channel?.unref();
      child.on("error", () => undefined); // reported per render (exit), never unhandled
      this.worker = child;
    }
    return this.worker;
  }

  private renderNow(spec: ChatTemplateSpec, messages: readonly ChatMessage[]): Promise<string> {
    const worker = this.process();
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const done = (outcome: () => void) => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("exit", onExit);
        worker.channel?.unref();
        outcome();
      };
      const kill = (why: string) => {
        if (this.worker === worker) this.worker = null;
        worker.kill("SIGKILL");
        done(() => reject(new ChatTemplateError(why)));
      };
      const timer = setTimeout(() => kill(`rendering took longer than ${this.timeoutMs} ms and was stopped`), this.timeoutMs);
      const onMessage = (reply: SandboxReply) => {
        if (reply.id !== id) return;
        done(() => (reply.ok ? resolve(reply.text) : reject(new ChatTemplateError(reply.message))));
      };
      const onExit = () => kill(`rendering stopped the sandbox process (more than ${this.maxHeapMb} MiB, or a crash)`);
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.channel?.ref(); // keep the runner waiting for this answer
      const request: SandboxRequest = { id, spec, messages: messages.map((m) => ({ role: m.role, content: m.content })), maxOutputChars: this.maxOutputChars };
      worker.send(request);
    });
  }
}
