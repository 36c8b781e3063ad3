/** Engine results → OpenAI completions shapes (core/src/wire/runner-api.ts). */
import type { Completion, CompletionChunk, Logprobs } from "#core/wire/runner-api";
import type { GenerationResult, TokenEvent } from "../engine/index.js";

export interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

export function completionBody(meta: CompletionMeta, result: GenerationResult): Completion {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text: result.text, finish_reason: result.finishReason, logprobs: result.logprobs }],
    usage: usageOf(result),
  };
}

export function usageOf(result: GenerationResult): Completion["usage"] {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
  };
}

/** One streamed token; `offset` is the token's offset in the text streamed so far. */
export function tokenChunk(meta: CompletionMeta, event: TokenEvent, offset: number): CompletionChunk {
  let logprobs: Logprobs | null = null;
  if (event.logprob) {
    logprobs = {
      tokens: [event.logprob.token],
      token_ids: [event.tokenId],
      token_logprobs: [event.logprob.logprob],
      top_logprobs: event.logprob.top ? [event.logprob.top] : null,
      text_offset: [offset],
    };
  }
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text: event.text, finish_reason: null, logprobs }],
    sampled_tokens: event.count,
  };
}

export function textChunk(meta: CompletionMeta, text: string): CompletionChunk {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, finish_reason: null, logprobs: null }],
  };
}

/** The last chunk: any text not streamed yet, finish_reason and usage. */
export function finalChunk(meta: CompletionMeta, result: GenerationResult, rest: string): CompletionChunk {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text: rest, finish_reason: result.finishReason, logprobs: null }],
    usage: usageOf(result),
    sampled_tokens: result.completionTokens,
  };
}
