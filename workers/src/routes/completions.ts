import { z } from "@hono/zod-openapi";
import { pickGenerateOptions } from "#core/wire/runner-api";
import { errorResponses } from "../errors/error-schema.js";
import { chatShaping } from "../inference/chat-shaping.js";
import {
  ChatRequestSchema,
  ChatResponseSchema,
  CompletionRequestSchema,
  CompletionResponseSchema,
} from "../inference/completion-schema.js";
import { runInference } from "../inference/run-inference.js";
import { badRequest } from "../errors/api-error.js";
import { inferenceBodyLimit } from "../validation/inference-body-limit.js";
import { jsonBody, jsonContent, newRouter, tenantRouteGroup } from "./router.js";

const sseContent = {
  "text/event-stream": {
    schema: z.string().openapi({ description: "`data: <chunk JSON>` events, then `data: [DONE]`" }),
  },
};

const route = tenantRouteGroup("inference");

/** 200: JSON of `schema`, or the SSE stream when `stream: true`. */
const jsonOrStream = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { ...jsonContent(schema), ...sseContent },
});

const completionsRoute = route.post("/v1/completions", {
  summary: "OpenAI-compatible text completion, optionally through a weighted mix of adapters",
  request: { body: jsonBody(CompletionRequestSchema) },
  responses: {
    200: jsonOrStream("Completion (JSON), or an SSE stream when `stream: true`", CompletionResponseSchema),
    ...errorResponses(400, 401, 404, 413, 422, 429, 503),
  },
}, [inferenceBodyLimit]);

const chatRoute = route.post("/v1/chat/completions", {
  summary: "OpenAI-compatible chat completion, rendered with the model's own chat template",
  description:
    "Messages are rendered by the runner with the model's chat template (tokenizer_config.json `chat_template`, " +
    "with the generation prompt) and generation stops at its end-of-turn token. Models without a template use the " +
    "documented default: `<|role|>\\n{content}\\n` per message followed by `<|assistant|>\\n`, stopping at the next role marker. " +
    "A conversation the template rejects (e.g. roles that do not alternate) is a 400 with the template's message.",
  request: { body: jsonBody(ChatRequestSchema) },
  responses: {
    200: jsonOrStream("Chat completion (JSON), or an SSE stream of chat.completion.chunk when `stream: true`", ChatResponseSchema),
    ...errorResponses(400, 401, 404, 413, 422, 429, 503),
  },
}, [inferenceBodyLimit]);

export const completionRoutes = newRouter()
  .openapi(completionsRoute, async (c) => {
    const b = c.req.valid("json");
    return runInference(c, {
      model: b.model,
      adapters: b.adapters,
      composition: b.composition,
      includeUsage: b.stream_options?.include_usage ?? false,
      generate: pickGenerateOptions(b),
      // `as never`: runInference answers a raw Response (JSON or an SSE stream); the OpenAPI route's
      // typed-response union cannot express the stream, so the handler's return type is erased here.
    }) as never;
  })
  .openapi(chatRoute, async (c) => {
    const b = c.req.valid("json");
    if (b.logprobs) throw badRequest("logprobs are not supported for chat completions; use /v1/completions");
    return runInference(
      c,
      {
        model: b.model,
        adapters: b.adapters,
        composition: b.composition,
        includeUsage: b.stream_options?.include_usage ?? false,
        generate: {
          ...pickGenerateOptions(b),
          messages: b.messages.map((m) => ({ role: m.role, content: m.content })),
          echo: false,
          logprobs: null,
        },
      },
      chatShaping(`chatcmpl-${c.get("requestId")}`),
      // `as never`: a raw Response (JSON or SSE), as above.
    ) as never;
  });
