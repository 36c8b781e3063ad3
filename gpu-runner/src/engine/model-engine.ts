/**
 * Serving one base model: request → prompt tokens and limits → mix (adapters, composition,
 * merged or not) → a row in the continuous-batching scheduler → result.
 */
import type { GenerateRequest } from "#core/wire/runner-api";
import { pickSamplingParams } from "#core/wire/sampling";
import type { BaseModel } from "../model/types.js";
import { EngineError } from "./errors.js";
import type { Logger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { MergeManager, type MergePolicyName } from "./merge-manager.js";
import { ComposedMixPool, resolveMix, type AdapterProvider } from "./mix-resolver.js";
import { Scheduler, type SchedulerLimits } from "./scheduler.js";
import { randomSeed } from "./seed.js";
import { ChatTemplateError, chatTemplateFromSpec, defaultChatTemplate, type ChatTemplate, type ChatTemplateSpec } from "#core/chat/chat-template";
import { stopTokenIds } from "../tokenizer/stop-token-ids.js";
import { TemplateSandbox, type TemplateSandboxOptions } from "./template-sandbox.js";
import { Sequence, type GenerationParams, type GenerationResult, type TokenEvent } from "./sequence.js";

export interface ModelEngineOptions {
  limits: SchedulerLimits;
  merge: { policy: MergePolicyName; budgetBytes: number; horizonS?: number };
  /** Limits of rendering adapters' (untrusted) chat templates. */
  templateSandbox?: TemplateSandboxOptions;
  log?: Logger;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  /** Streaming: called once per generated token. */
  onToken?: (event: TokenEvent) => void;
}

/** A request's chat template and the ids (besides EOS) that end its turn. */
export interface ChatChoice {
  template: ChatTemplate;
  stopIds: readonly number[];
  /** An adapter's template (untrusted): rendered in the sandbox, never on the event loop. */
  untrusted?: ChatTemplateSpec;
}

/** Compiled adapter templates kept (least recently used dropped first). */
const ADAPTER_TEMPLATE_CACHE = 32;

export interface StartedGeneration {
  result: Promise<GenerationResult>;
  /** Whether the request runs on a merged session. */
  merged: boolean;
  promptTokens: number;
  /** The prompt as text (a chat's rendered messages), for `echo`. */
  promptText: string;
  mixKey: string;
}

export class ModelEngine {
  readonly scheduler: Scheduler;
  readonly merges: MergeManager;
  private readonly log: Logger;
  /** Composed mixes shared by the requests running them (stats in /metrics). */
  readonly mixes = new ComposedMixPool();
  private readonly adapterTemplates = new Map<string, ChatChoice>();
  private readonly templateSandbox: TemplateSandbox;

  constructor(
    readonly model: BaseModel,
    private readonly adapters: AdapterProvider | null,
    options: ModelEngineOptions,
  ) {
    this.log = options.log ?? silentLogger;
    this.merges = new MergeManager(model, { ...options.merge, log: this.log });
    this.templateSandbox = new TemplateSandbox(options.templateSandbox);
    this.scheduler = new Scheduler(model.manifest.vocabSize, options.limits, {
      onStep: (o) => this.merges.onStep(o),
      onTokens: (key, n) => this.merges.onTokens(key, n),
    });
  }

  get id(): string {
    return this.model.manifest.id;
  }

  /**
   * The chat template a request's messages are rendered with, and the ids that end its turn:
   * the adapter's (`chat_template`, its null special tokens filled with the model's), else the
   * model's own, else the default.
   */
  chatFor(request: GenerateRequest): ChatChoice {
    if (request.chat_template === undefined) {
      const { chatTemplate, chatStopIds } = this.model.tokenizer;
      return { template: chatTemplate ?? defaultChatTemplate, stopIds: chatStopIds ?? [] };
    }
    const { chatSpecialTokens } = this.model.tokenizer;
    const spec: ChatTemplateSpec = {
      template: request.chat_template.template,
      bos_token: request.chat_template.bos_token ?? chatSpecialTokens?.bos ?? null,
      eos_token: request.chat_template.eos_token ?? chatSpecialTokens?.eos ?? null,
    };
    const key = JSON.stringify(spec);
    let choice = this.adapterTemplates.get(key);
    if (choice) {
      this.adapterTemplates.delete(key); // most recently used last
    } else {
      const template = chatTemplateFromSpec(spec, "adapter");
      choice = { template, stopIds: stopTokenIds(template.stopTokens, this.model.tokenizer), untrusted: spec };
      if (this.adapterTemplates.size >= ADAPTER_TEMPLATE_CACHE) this.adapterTemplates.delete(this.adapterTemplates.keys().next().value!);
    }
    this.adapterTemplates.set(key, choice);
    return choice;
  }

  /**
   * The request's prompt as text: `prompt` itself, or `messages` rendered by the chat
   * template (EngineError 400 with the template's message when it refuses them).
   */
  promptText(request: GenerateRequest, chat: ChatChoice | null = request.messages ? this.chatFor(request) : null): string | null {
    if ((request.prompt === undefined) === (request.messages === undefined)) {
      throw new EngineError("invalid_request_error", "exactly one of prompt and messages is required");
    }
    if (request.messages === undefined || chat === null) return typeof request.prompt === "string" ? request.prompt : null;
    try {
      return chat.template.render(request.messages);
    } catch (e) {
      if (e instanceof ChatTemplateError) throw new EngineError("invalid_request_error", `chat template: ${e.message}`);
      throw e;
    }
  }

  /**
   * Prompt ids (BOS prepended to text prompts when the tokenizer has one, unless a chat
   * template rendered it) after validating ids and the context length; throws EngineError 400
   * saying by how much a request is over.
   */
  promptIds(request: GenerateRequest, text: string | null = this.promptText(request), chat: ChatChoice | null = request.messages ? this.chatFor(request) : null): number[] {
    const { tokenizer, manifest } = this.model;
    let ids: number[];
    if (text !== null) {
      const addBos = tokenizer.bosId !== null && !(chat !== null && chat.template.templateAddsBos);
      ids = [...(addBos ? [tokenizer.bosId!] : []), ...tokenizer.encode(text)];
    } else if (request.prompt === undefined || typeof request.prompt === "string") {
      throw new EngineError("invalid_request_error", "exactly one of prompt and messages is required");
    } else {
      ids = request.prompt;
      const bad = ids.findIndex((id) => id >= tokenizer.vocabSize);
      if (bad >= 0) {
        throw new EngineError("invalid_request_error", `prompt token ${bad} is ${ids[bad]}, outside the vocabulary (size ${tokenizer.vocabSize})`);
      }
    }
    if (ids.length === 0) throw new EngineError("invalid_request_error", "the prompt is empty (and the model has no BOS token)");
    const biased = Object.keys(request.logit_bias ?? {}).find((id) => Number(id) >= tokenizer.vocabSize);
    if (biased !== undefined) {
      throw new EngineError("invalid_request_error", `logit_bias names token ${biased}, outside the vocabulary (size ${tokenizer.vocabSize})`);
    }
    const total = ids.length + request.max_tokens;
    if (total > manifest.contextLength) {
      throw new EngineError(
        "context_length_exceeded",
        `prompt (${ids.length} tokens) + max_tokens (${request.max_tokens}) = ${total} tokens exceeds the context length of ${manifest.id} (${manifest.contextLength}) by ${total - manifest.contextLength} tokens`,
      );
    }
    return ids;
  }

  /** Runs a request to the end. */
  async generate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerationResult> {
    return (await this.start(request, options)).result;
  }

  /**
   * Admits a request: resolves once it is queued (so callers can still answer with an HTTP
   * error status when it is refused: bad prompt, adapters, overload), with the promise of
   * its result.
   */
  async start(request: GenerateRequest, options: GenerateOptions = {}): Promise<StartedGeneration> {
    const chat = request.messages !== undefined ? this.chatFor(request) : null;
    const text = chat?.untrusted && request.messages ? await this.renderUntrusted(chat.untrusted, request.messages) : this.promptText(request, chat);
    const promptIds = this.promptIds(request, text, chat);
    const stop = [
      ...(request.stop === undefined ? [] : typeof request.stop === "string" ? [request.stop] : request.stop),
      ...(chat ? chat.template.stop : []),
    ];
    // The model's end-of-turn ids (generation_config.json) end every generation, as in transformers' generate; a chat template's eos_token ends chats.
    const stopIds = [...new Set([...(this.model.manifest.tokenizer.endOfTurnIds ?? []), ...(chat ? chat.stopIds : [])])];
    const params: GenerationParams = {
      promptIds,
      promptText: text ?? this.model.tokenizer.decode(promptIds),
      maxTokens: request.max_tokens,
      sampling: pickSamplingParams(request),
      seed: request.seed ?? randomSeed(),
      stop: stop.filter((s) => s.length > 0),
      echo: request.echo,
      ignoreEos: request.ignore_eos,
      ...(stopIds.length > 0 ? { stopIds } : {}),
      logprobs: request.logprobs ?? null,
    };
    const mix = await resolveMix(request.adapters, this.model.manifest, this.adapters, this.mixes, request.mix_key);
    let target;
    let releaseTarget: () => void;
    try {
      ({ target, release: releaseTarget } = await this.merges.target(mix.handle));
    } catch (e) {
      mix.release();
      throw e;
    }
    const release = () => {
      releaseTarget();
      mix.release();
    };
    const sequence = new Sequence(params, this.model.tokenizer, options.onToken);
    // submit releases on refusal too.
    const result = this.scheduler.submit({ sequence, target, signal: options.signal, release });
    return { result, merged: target.merged, promptTokens: promptIds.length, promptText: params.promptText, mixKey: target.mixKey };
  }

  async drain(timeoutMs: number): Promise<void> {
    await this.scheduler.drain(timeoutMs);
  }

  /** An adapter's template applied to `messages` in the sandbox (EngineError 400 with its message when it fails or runs over). */
  private async renderUntrusted(spec: ChatTemplateSpec, messages: NonNullable<GenerateRequest["messages"]>): Promise<string> {
    try {
      return await this.templateSandbox.render(spec, messages);
    } catch (e) {
      if (e instanceof ChatTemplateError) throw new EngineError("invalid_request_error", `chat template: ${e.message}`);
      throw e;
    }
  }

  async dispose(): Promise<void> {
    await this.templateSandbox.dispose();
    await this.merges.dispose();
    await this.model.dispose();
    this.log("info", "model disposed", { model: this.id });
  }
}
