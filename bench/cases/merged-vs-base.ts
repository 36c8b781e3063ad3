import { modelCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { decodeTokensPerSecond, prefillCaches, promptTokens, randomMix, timePrefill } from "../lib/workload.js";

/**
 * Case 1: a hot 3-adapter mix merged into the weights runs as fast as the base weights. The control is
 * a session with the SAME weights built the same way (an empty merge: copy, patch nothing, new
 * session), interleaved round by round, so session memory placement cancels: merged ÷ control.
 * A second control built the same way gives the A/A ratio (control′ ÷ control): the noise floor
 * of the same comparison on identical sessions. Prefill (one ≈0.2 s run per round) takes 3× the
 * rounds of decode (16 steps per round).
 */
export const mergedVsBase = modelCase({
  id: "1",
  title: "merged mix vs base",
  async run(ctx, model) {
    const mix = randomMix(model.manifest, [8, 16, 32], 101);
    ctx.progress("building the merged session and the empty-merge control");
    const merged = await model.createMerged(mix);
    const control = await model.createMerged({ modules: new Map(), maxRank: 0 });
    const control2 = await model.createMerged({ modules: new Map(), maxRank: 0 });
    const prompt = [promptTokens(model.manifest, ctx.quick ? 32 : 128)];
    const none = [null];
    const steps = ctx.quick ? 4 : 16;
    const baseCaches = await prefillCaches(model, prompt, none);
    const controlCaches = await prefillCaches(control, prompt, none);
    const mergedCaches = await prefillCaches(merged, prompt, none);
    ctx.progress(`decode ${steps} steps and prefill ${prompt[0].length} tokens, control vs merged vs base, interleaved`);
    const decode = await interleave(
      {
        base: () => decodeTokensPerSecond(model, baseCaches, none, steps),
        control: () => decodeTokensPerSecond(control, controlCaches, none, steps),
        merged: () => decodeTokensPerSecond(merged, mergedCaches, none, steps),
      },
      ctx,
    );
    const prefill = await interleave(
      {
        control: () => timePrefill(control, prompt, none),
        control2: () => timePrefill(control2, prompt, none),
        merged: () => timePrefill(merged, prompt, none),
        base: () => timePrefill(model, prompt, none),
      },
      { warmup: ctx.warmup, rounds: ctx.quick ? ctx.rounds : 3 * ctx.rounds },
    );
    await merged.dispose();
    await control.dispose();
    await control2.dispose();
    // Ratios of time: merged ÷ control (decode time per token = 1 / tokens/s).
    const decodeRatio = pairedRatio(decode.control.samples, decode.merged.samples);
    const prefillRatio = pairedRatio(prefill.merged.samples, prefill.control.samples);
    const versusBase = pairedRatio(decode.base.samples, decode.merged.samples);
    const prefillAA = pairedRatio(prefill.control2.samples, prefill.control.samples);
    const goal = { op: "<=" as const, target: 1.02 };
    return {
      figures: [
        figure("decode time/token merged÷control", decodeRatio.median, "×", { stats: decodeRatio, goal, note: "control: an empty merge (same weights, same build), interleaved" }),
        figure("prefill latency merged÷control", prefillRatio.median, "×", { stats: prefillRatio, goal }),
        figure("prefill latency control′÷control (A/A)", prefillAA.median, "×", { stats: prefillAA, note: "two identical empty merges: the noise floor of the ratio above" }),
        figure("decode time/token merged÷base model", versusBase.median, "×", { stats: versusBase, note: "the base model's own session (placement noise not cancelled)" }),
        figure("base decode", decode.base.stats.median, "tok/s", { stats: decode.base.stats }),
        figure("base prefill", prefill.base.stats.median, "ms", { stats: prefill.base.stats }),
        figure("merged session build", merged.buildMs.copy + merged.buildMs.delta + merged.buildMs.session, "ms"),
      ],
    };
  },
});
