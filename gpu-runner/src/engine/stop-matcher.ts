/**
 * Stop strings over a stream of text pieces.
 *
 * Semantics: the full output is the concatenation of pushed pieces, cut just before the
 * earliest occurrence of any stop string (the stop string itself is not returned). While
 * streaming, text that could still be the beginning of a stop string is held back until it
 * is decided; `flush()` releases it when generation ends for another reason.
 */
export class StopMatcher {
  private pending = "";
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = stops.reduce((n, s) => Math.max(n, s.length), 0);
  }

  /** Adds generated text; returns the text that is now safe to emit and whether a stop string matched. */
  push(piece: string): { emit: string; stopped: boolean } {
    this.pending += piece;
    if (this.stops.length === 0) {
      const emit = this.pending;
      this.pending = "";
      return { emit, stopped: false };
    }
    let cut = -1;
    for (const stop of this.stops) {
      if (stop.length === 0) continue;
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const emit = this.pending.slice(0, cut);
      this.pending = "";
      return { emit, stopped: true };
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    let hold = 0;
    for (let n = Math.min(this.longest - 1, this.pending.length); n > 0; n--) {
      const suffix = this.pending.slice(this.pending.length - n);
      if (this.stops.some((s) => s.startsWith(suffix))) {
        hold = n;
        break;
      }
    }
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** Releases held-back text (generation ended without a stop string). */
  flush(): string {
    const rest = this.pending;
    this.pending = "";
    return rest;
  }
}
