/**
 * Token shading for the playground: the lower a sampled token's probability, the stronger its
 * background. p = exp(logprob) ∈ [0, 1]; alpha = 0.55·(1 − p), so a certain token (p = 1) is
 * unshaded and a very unlikely one is clearly marked. Returned as CSS.
 */
export function tokenShade(logprob: number | null): string | undefined {
  if (logprob === null || !Number.isFinite(logprob)) return undefined;
  const p = Math.min(1, Math.max(0, Math.exp(logprob)));
  return `rgba(214, 90, 0, ${(0.55 * (1 - p)).toFixed(3)})`;
}

export function tokenTitle(text: string, logprob: number | null): string {
  const shown = JSON.stringify(text);
  if (logprob === null || !Number.isFinite(logprob)) return shown;
  return `${shown}  p = ${Math.exp(logprob).toFixed(3)}  (logprob ${logprob.toFixed(3)})`;
}
