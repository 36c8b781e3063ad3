import type { Completion } from "#core/wire/runner-api";
import type { InferenceShaping } from "./run-inference.js";

/**
 * Reshapes the runner's completions as OpenAI chat objects: `chat.completion` (JSON) and
 * `chat.completion.chunk` (stream; the first chunk's delta carries the assistant role).
 */
export function chatShaping(chatId: string): Required<InferenceShaping> {
  let first = true;
  return {
    mapCompletion: (x: Completion) => ({
      id: chatId,
      object: "chat.completion" as const,
      created: x.created,
      model: x.model,
      choices: x.choices.map((ch) => ({
        index: ch.index,
        message: { role: "assistant" as const, content: ch.text },
        finish_reason: ch.finish_reason,
        logprobs: null,
      })),
      usage: x.usage,
    }),
    mapChunk: (x: Completion) => {
      const chunk = {
        id: chatId,
        object: "chat.completion.chunk" as const,
        created: x.created,
        model: x.model,
        choices: x.choices.map((ch) => ({
          index: ch.index,
          delta: first ? { role: "assistant" as const, content: ch.text } : { content: ch.text },
          finish_reason: ch.finish_reason,
          logprobs: null,
        })),
        ...(x.usage ? { usage: x.usage } : {}),
      };
      first = false;
      return chunk;
    },
  };
}
