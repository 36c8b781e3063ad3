/**
 * One request's generation state: what it has consumed of its prompt, what it generated,
 * its text (stop strings, incremental decoding) and its logprobs. The scheduler feeds it
 * logits; it decides tokens and when the request is finished. No model calls here.
 */
import type { Tokenizer } from "../model/types.js";
import type { Logprobs } from "#core/wire/runner-api";
import { Detokenizer } from "./detokenizer.js";
import type { Rng } from "#core/random/index";
import { rngForSeed } from "./seed.js";
import { logSoftmax, sampleToken, TokenHistory, topIndices, type SamplingParams } from "./sampling.js";
import { StopMatcher } from "./stop-matcher.js";

export type FinishReason = "stop" | "length";

export interface GenerationParams {
  /** Prompt token ids (BOS already prepended when the model uses one). */
  promptIds: readonly number[];
  /** Text of the prompt as the client sent it (returned with echo). */
  promptText: string;
  maxTokens: number;
  /** The request's sampling fields as core's wire schema parsed them (no copy by hand). */
  sampling: SamplingParams;
  seed: number;
  stop: readonly string[];
  echo: boolean;
  /** Treat EOS as an ordinary token (generation ends only at max_tokens or a stop string). */
  ignoreEos: boolean;
  /** More ids that end generation like EOS (a chat template's end-of-turn tokens). */
  stopIds?: readonly number[];
  /** null: no logprobs; n: token logprobs with n top alternatives. */
  logprobs: number | null;
}

/** One generated token as streamed to the client. */
export interface TokenEvent {
  /** Text that became final with this token (may be "": held back or a partial character). */
  text: string;
  tokenId: number;
  /** Tokens sampled so far, this one included (the completion_tokens a cut stream is billed). */
  count: number;
  /** Present when logprobs were requested. */
  logprob?: { token: string; logprob: number; top: Record<string, number> | null };
}

export interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  logprobs: Logprobs | null;
}

interface TokenLogprob {
  id: number;
  logprob: number | null;
  top: Record<string, number> | null;
}

export class Sequence {
  /** Prompt tokens already given to the model. */
  promptPos = 0;
  readonly generated: number[] = [];
  finishReason: FinishReason | null = null;
  private text = "";
  private readonly rng: Rng;
  /** Prompt and output ids for the penalties. */
  private readonly history: TokenHistory;
  private readonly detok: Detokenizer;
  private readonly stops: StopMatcher;
  private readonly promptLogprobs: TokenLogprob[] = [];
  private readonly completionLogprobs: TokenLogprob[] = [];
  /** Logits at the last prompt position of the previous chunk (scores the next chunk's first token). */
  private carryLogits: Float32Array | null = null;

  constructor(
    readonly params: GenerationParams,
    private readonly tokenizer: Tokenizer,
    private readonly onToken?: (event: TokenEvent) => void,
  ) {
    this.rng = rngForSeed(params.seed);
    this.history = new TokenHistory(params.promptIds);
    this.detok = new Detokenizer(tokenizer);
    this.stops = new StopMatcher(params.stop);
    if (this.wantsPromptLogprobs) this.promptLogprobs.push({ id: params.promptIds[0]!, logprob: null, top: null });
  }

  /** echo + logprobs: the prompt's token logprobs are returned, so prefill needs every position's logits. */
  get wantsPromptLogprobs(): boolean {
    return this.params.echo && this.params.logprobs !== null;
  }

  get prefillDone(): boolean {
    return this.promptPos >= this.params.promptIds.length;
  }

  get finished(): boolean {
    return this.finishReason !== null;
  }

  /** Whether the request needs any forward pass at all (max_tokens 0 without prompt scoring does not). */
  get needsModel(): boolean {
    return this.params.maxTokens > 0 || this.wantsPromptLogprobs;
  }

  /** Tokens for the next step: a prompt chunk, or the last generated token. */
  nextTokens(prefillChunk: number): number[] {
    if (!this.prefillDone) {
      return this.params.promptIds.slice(this.promptPos, this.promptPos + prefillChunk);
    }
    return [this.generated[this.generated.length - 1]!];
  }

  /**
   * Consumes one step's logits. `logits` is [n, vocab] (n = tokens given with allLogits, else 1).
   * `stepTokens` is how many tokens the step appended.
   */
  accept(logits: Float32Array, stepTokens: number, vocab: number): void {
    if (!this.prefillDone) {
      const start = this.promptPos;
      this.promptPos += stepTokens;
      const rows = logits.length / vocab;
      if (this.wantsPromptLogprobs) {
        if (rows !== stepTokens) throw new Error(`expected logits for ${stepTokens} positions, got ${rows}`);
        const prompt = this.params.promptIds;
        for (let i = Math.max(start, 1); i < this.promptPos; i++) {
          const source = i === start ? this.carryLogits! : logits.subarray((i - 1 - start) * vocab, (i - start) * vocab);
          this.promptLogprobs.push(this.scored(source, prompt[i]!));
        }
      }
      const last = logits.subarray((rows - 1) * vocab, rows * vocab);
      if (!this.prefillDone) {
        this.carryLogits = this.wantsPromptLogprobs ? last.slice() : null;
        return;
      }
      this.carryLogits = null;
      if (this.params.maxTokens === 0) return this.finish("length");
      return this.sample(last);
    }
    this.sample(logits.subarray(logits.length - vocab));
  }

  private scored(logits: Float32Array, id: number): TokenLogprob {
    const lp = logSoftmax(logits);
    const n = this.params.logprobs ?? 0;
    return { id, logprob: lp[id]!, top: n > 0 ? this.topMap(lp, n) : null };
  }

  private topMap(lp: Float64Array, n: number): Record<string, number> {
    const top: Record<string, number> = {};
    for (const id of topIndices(lp, n)) {
      const key = this.tokenizer.decode([id]);
      if (!(key in top)) top[key] = lp[id]!;
    }
    return top;
  }

  private sample(logits: Float32Array): void {
    const id = sampleToken(logits, this.params.sampling, this.rng, this.history);
    this.generated.push(id);
    this.history.push(id);
    let entry: TokenLogprob | null = null;
    if (this.params.logprobs !== null) {
      entry = this.scored(logits, id);
      this.completionLogprobs.push(entry);
    }
    const isEos = (id === this.tokenizer.eosId || (this.params.stopIds?.includes(id) ?? false)) && !this.params.ignoreEos;
    let emitted = "";
    let stopped = isEos;
    const atLimit = this.generated.length >= this.params.maxTokens;
    if (isEos) {
      emitted = this.drain().emit;
    } else {
      const pushed = this.stops.push(this.detok.push(id));
      emitted = pushed.emit;
      stopped = pushed.stopped;
      if (!stopped && atLimit) {
        const rest = this.drain();
        emitted += rest.emit;
        stopped = rest.stopped;
      }
    }
    this.text += emitted;
    this.onToken?.({
      text: emitted,
      tokenId: id,
      count: this.generated.length,
      ...(entry ? { logprob: { token: this.tokenizer.decode([id]), logprob: entry.logprob!, top: entry.top } } : {}),
    });
    if (stopped) this.finish("stop");
    else if (atLimit) this.finish("length");
  }

  private finish(reason: FinishReason): void {
    this.finishReason = reason;
  }

  /** Releases held-back text at the end of generation. */
  private drain(): { emit: string; stopped: boolean } {
    const pushed = this.stops.push(this.detok.flush());
    return pushed.stopped ? pushed : { emit: pushed.emit + this.stops.flush(), stopped: false };
  }

  /** Ends a request early (shutdown): what was generated so far, finish_reason "length". */
  truncate(): void {
    if (this.finished) return;
    this.text += this.drain().emit;
    this.finish("length");
  }

  result(): GenerationResult {
    const echoText = this.params.echo ? this.params.promptText : "";
    return {
      text: echoText + this.text,
      finishReason: this.finishReason ?? "length",
      promptTokens: this.params.promptIds.length,
      completionTokens: this.generated.length,
      logprobs: this.params.logprobs === null ? null : this.logprobsBody(),
    };
  }

  private logprobsBody(): Logprobs {
    const entries = [...(this.params.echo ? this.promptLogprobs : []), ...this.completionLogprobs];
    const tokens = entries.map((e) => this.tokenizer.decode([e.id]));
    const offsets: number[] = [];
    let offset = 0;
    for (const t of tokens) {
      offsets.push(offset);
      offset += t.length;
    }
    return {
      tokens,
      token_ids: entries.map((e) => e.id),
      token_logprobs: entries.map((e) => e.logprob),
      top_logprobs: this.params.logprobs! > 0 ? entries.map((e) => e.top) : null,
      text_offset: offsets,
    };
  }
}
