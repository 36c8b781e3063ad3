/**
 * Request signing between the worker and its runners (both directions).
 *
 * Semantics: signature = hex(HMAC-SHA256(secret, `${timestamp}\n${nonce}\n${METHOD}\n${pathAndQuery}\n` ‖ body)),
 * sent as headers `x-loraedge-timestamp` (unix seconds), `x-loraedge-nonce` (16 random bytes,
 * hex: every signing is unique, so two identical calls in the same second differ) and
 * `x-loraedge-signature`. A verifier accepts a timestamp at most windowSeconds in the past
 * (default 300 s) and at most futureSkewSeconds ahead of its clock (default 30 s), and
 * compares in constant time. Receivers also refuse a second use of an accepted signature
 * (./replay-guard.ts). Uses WebCrypto only, so it runs in Workers and Node alike.
 */
export const TIMESTAMP_HEADER = "x-loraedge-timestamp";
export const NONCE_HEADER = "x-loraedge-nonce";
export const SIGNATURE_HEADER = "x-loraedge-signature";
export const DEFAULT_REPLAY_WINDOW_SECONDS = 300;
export const DEFAULT_FUTURE_SKEW_SECONDS = 30;
const NONCE_RE = /^[0-9a-f]{32}$/;

const encoder = new TextEncoder();
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const keyCache = new Map<string, Promise<HmacKey>>();

function importKey(secret: string): Promise<HmacKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

function message(timestamp: string, nonce: string, method: string, pathAndQuery: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${timestamp}\n${nonce}\n${method.toUpperCase()}\n${pathAndQuery}\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length % 2 !== 0) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export interface SignInput {
  method: string;
  /** Path plus query string, e.g. "/internal/v1/completions". */
  pathAndQuery: string;
  body?: Uint8Array | string;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
  /** 32 hex digits; defaults to fresh random bytes (tests pin it). */
  nonce?: string;
}

function newNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)).buffer);
}

function bodyBytes(body: Uint8Array | string | undefined): Uint8Array {
  if (body === undefined) return new Uint8Array(0);
  return typeof body === "string" ? encoder.encode(body) : body;
}

/** Returns the three headers to attach to a request (a fresh nonce each call: sign anew for every retry). */
export async function signRequest(secret: string, input: SignInput): Promise<Record<string, string>> {
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? newNonce();
  const key = await importKey(secret);
  const sig = await crypto.subtle.sign(
    "HMAC",
    key,
    message(timestamp, nonce, input.method, input.pathAndQuery, bodyBytes(input.body)),
  );
  return { [TIMESTAMP_HEADER]: timestamp, [NONCE_HEADER]: nonce, [SIGNATURE_HEADER]: toHex(sig) };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

export interface VerifyInput extends Omit<SignInput, "timestamp" | "nonce"> {
  timestampHeader: string | null;
  nonceHeader: string | null;
  signatureHeader: string | null;
}

export interface VerifyOptions {
  /** How far in the past a timestamp may be (default 300 s). */
  windowSeconds?: number;
  /** How far in the future a timestamp may be (clock skew; default 30 s). */
  futureSkewSeconds?: number;
  /** Unix seconds (tests). */
  now?: number;
}

/** The three signature headers of a request, by a header getter (Hono's `c.req.header`, `Headers.get`, …). */
export function signatureHeaders(get: (name: string) => string | null | undefined): Pick<VerifyInput, "timestampHeader" | "nonceHeader" | "signatureHeader"> {
  return {
    timestampHeader: get(TIMESTAMP_HEADER) ?? null,
    nonceHeader: get(NONCE_HEADER) ?? null,
    signatureHeader: get(SIGNATURE_HEADER) ?? null,
  };
}

export async function verifyRequest(secret: string, input: VerifyInput, options: VerifyOptions = {}): Promise<VerifyResult> {
  const { timestampHeader, nonceHeader, signatureHeader } = input;
  if (!timestampHeader || !nonceHeader || !signatureHeader) return { ok: false, reason: "missing signature headers" };
  if (!/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: "malformed timestamp" };
  if (!NONCE_RE.test(nonceHeader)) return { ok: false, reason: "malformed nonce" };
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const window = options.windowSeconds ?? DEFAULT_REPLAY_WINDOW_SECONDS;
  const skew = options.futureSkewSeconds ?? DEFAULT_FUTURE_SKEW_SECONDS;
  const age = now - Number(timestampHeader);
  if (age > window) return { ok: false, reason: `timestamp outside the ${window}s replay window` };
  if (-age > skew) return { ok: false, reason: `timestamp more than ${skew}s in the future` };
  const sig = fromHex(signatureHeader);
  if (!sig || sig.length !== 32) return { ok: false, reason: "malformed signature" };
  const key = await importKey(secret);
  // crypto.subtle.verify compares in constant time.
  const ok = await crypto.subtle.verify(
    "HMAC",
    key,
    sig,
    message(timestampHeader, nonceHeader, input.method, input.pathAndQuery, bodyBytes(input.body)),
  );
  return ok ? { ok: true } : { ok: false, reason: "bad signature" };
}
