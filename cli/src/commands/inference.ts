/** Inference commands: complete, chat. */
import type { ChatMessage, LoraedgeClient, MixEntry, SamplingOptions } from "../../../client/src/index.js";
import { flag, num, positionals, str, type CommandContext, type OptionSpecs } from "../command.js";
import type { Command } from "../command.js";
import { parseMix } from "../mix.js";
import { lines } from "../io.js";
import { printJson } from "../output.js";
import { resolveAdapterRef } from "../refs.js";
import { UsageError } from "../usage-error.js";

const samplingOptions: OptionSpecs = {
  model: { type: "string" },
  mix: { type: "string", multiple: true },
  composition: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-p": { type: "string" },
  "top-k": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  stream: { type: "boolean" },
};

const samplingHelp = [
  "--mix a=1,b=0.5       ad-hoc mix (refs as in `show`; weights any finite number); or --composition <name>",
  "--model M             default: the base model of the mix or composition, else the first served model",
  "--max-tokens N  --temperature T  --top-p P  --top-k K  --seed S  --stop STR (repeatable)  --stream",
];

/** The request's sampling part from the flags (all checked before any call); the model defaults to the mix's base model. */
async function sampling(ctx: CommandContext, client: LoraedgeClient): Promise<SamplingOptions> {
  const terms = parseMix((ctx.values.mix as string[] | undefined) ?? []);
  const composition = str(ctx, "composition");
  if (composition && terms.length) throw new UsageError("--mix and --composition exclude each other");
  const stop = ctx.values.stop as string[] | undefined;
  const options = {
    max_tokens: num(ctx, "max-tokens", { integer: true, min: 0 }),
    temperature: num(ctx, "temperature", { min: 0 }),
    top_p: num(ctx, "top-p"),
    top_k: num(ctx, "top-k", { integer: true, min: 0 }),
    seed: num(ctx, "seed", { integer: true }),
    stop: stop?.length ? stop : undefined,
  };
  const adapters: MixEntry[] = await Promise.all(terms.map(async (t) => ({ id: await resolveAdapterRef(client, t.ref), weight: t.weight })));
  let model = str(ctx, "model");
  if (!model) {
    if (composition) model = (await client.compositions.get(composition)).base_model;
    else if (adapters.length) model = (await client.adapters.get(adapters[0]!.id)).base_model;
    else {
      const served = (await client.models.list()).data;
      if (!served.length) throw new UsageError("the edge serves no model right now; pass --model");
      model = served[0]!.id;
    }
  }
  return { model, ...(composition ? { composition } : { adapters }), ...options };
}

export const complete: Command = {
  name: "complete",
  synopsis: '"prompt" [--mix a=1,b=0.5 | --composition C] [--stream] [sampling flags]',
  summary: "complete a prompt through a weighted mix (text; --json: the completion, with --stream one chunk per line)",
  details: samplingHelp,
  options: samplingOptions,
  async run(ctx) {
    const [prompt] = positionals(ctx, 1, 1, '"prompt"');
    const client = ctx.client();
    const request = { ...(await sampling(ctx, client)), prompt: prompt! };
    if (!flag(ctx, "stream")) {
      const completion = await client.completions.create(request);
      if (ctx.json) return printJson(ctx.io, completion);
      return ctx.io.stdout((completion.choices[0]?.text ?? "") + "\n");
    }
    for await (const chunk of client.completions.stream(request)) {
      if (ctx.json) ctx.io.stdout(JSON.stringify(chunk) + "\n");
      else ctx.io.stdout(chunk.choices[0]?.text ?? "");
    }
    if (!ctx.json) ctx.io.stdout("\n");
  },
};

export const chat: Command = {
  name: "chat",
  synopsis: '["message"] [--system S] [--mix … | --composition C] [sampling flags]',
  summary: "chat: one turn with a message, else each stdin line is a user turn (replies streamed)",
  details: samplingHelp,
  options: { ...samplingOptions, system: { type: "string" } },
  async run(ctx) {
    const [message] = positionals(ctx, 0, 1, "");
    const client = ctx.client();
    const base = await sampling(ctx, client);
    const messages: ChatMessage[] = [];
    const system = str(ctx, "system");
    if (system) messages.push({ role: "system", content: system });

    const turn = async (content: string) => {
      messages.push({ role: "user", content });
      let reply = "";
      if (ctx.json) {
        const answer = await client.chat.create({ ...base, messages });
        reply = answer.choices[0]?.message.content ?? "";
        ctx.io.stdout(JSON.stringify(answer) + "\n");
      } else {
        for await (const chunk of client.chat.stream({ ...base, messages })) {
          const text = chunk.choices[0]?.delta.content ?? "";
          reply += text;
          ctx.io.stdout(text);
        }
        ctx.io.stdout("\n");
      }
      messages.push({ role: "assistant", content: reply });
    };

    if (message !== undefined) return turn(message);
    const prompt = () => ctx.io.stdinIsTTY && ctx.io.stderr("you> ");
    prompt();
    for await (const line of lines(ctx.io.stdin)) {
      if (line.trim() !== "") await turn(line);
      prompt();
    }
  },
};
