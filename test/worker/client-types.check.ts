// Type-level contract between the API client (client/) and the worker's schemas: checked by
// `npm run typecheck` (tsc -p test/worker), no runtime part. The client declares its shapes
// itself because it must not import workers/; a field added, removed or retyped on one side
// only fails here.
import type { z } from "@hono/zod-openapi";
import { expectTypeOf } from "vitest";
import type { AdapterJson } from "../../workers/src/adapters/record.js";
import type { CompositionSchema } from "../../workers/src/compositions/record.js";
import type { ChatRequestSchema, ChatResponseSchema, CompletionRequestSchema } from "../../workers/src/inference/completion-schema.js";
import type { MixEntrySchema } from "../../workers/src/inference/resolve-mix.js";
import type { UsageSchema } from "../../workers/src/routes/usage.js";
import type { Adapter, ChatCompletion, ChatRequest, Completion, CompletionRequest, Composition, MixEntry, UsageReport } from "../../client/src/types.js";
import type { Completion as CoreCompletion } from "#core/wire/runner-api";

// Responses: exactly the worker's shapes.
expectTypeOf<Adapter>().toEqualTypeOf<AdapterJson>();
expectTypeOf<Composition>().toEqualTypeOf<z.infer<typeof CompositionSchema>>();
expectTypeOf<Completion>().toEqualTypeOf<CoreCompletion>();
expectTypeOf<ChatCompletion>().toEqualTypeOf<z.infer<typeof ChatResponseSchema>>();
expectTypeOf<UsageReport>().toEqualTypeOf<z.infer<typeof UsageSchema>>();

// Requests: everything the client can send is accepted by the worker's request schema.
expectTypeOf<CompletionRequest>().toExtend<z.input<typeof CompletionRequestSchema>>();
expectTypeOf<ChatRequest>().toExtend<z.input<typeof ChatRequestSchema>>();
expectTypeOf<MixEntry>().toEqualTypeOf<z.input<typeof MixEntrySchema>>();
