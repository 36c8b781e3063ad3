/**
 * Request signing between the worker and its runners (both directions).
 *
 * Semantics: signature = hex(HMAC-SHA256(secret, `${timestamp}\n${METHOD}\n${pathAndQuery}\n` ‖ body)),
 * sent as headers `x-loraedge-timestamp` (unix seconds) and `x-loraedge-signature`.
 * A verifier accepts a timestamp within ±windowSeconds of its clock (default 300 s) and
 * compares in constant time. Uses WebCrypto only, so it runs in Workers and Node alike.
 */
export const TIMESTAMP_HEADER = "x-loraedge-timestamp";
export const SIGNATURE_HEADER = "x-loraedge-signature";
export const DEFAULT_REPLAY_WINDOW_SECONDS = 300;

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

function message(timestamp: string, method: string, pathAndQuery: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${timestamp}\n${method.toUpperCase()}\n${pathAndQuery}\n`);
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
}

function bodyBytes(body: Uint8Array | string | undefined): Uint8Array {
  if (body === undefined) return new Uint8Array(0);
  return typeof body === "string" ? encoder.encode(body) : body;
}

/** Returns the two headers to attach to a request. */
export async function signRequest(secret: string, input: SignInput): Promise<Record<string, string>> {
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000));
  const key = await importKey(secret);
  const sig = await crypto.subtle.sign(
    "HMAC",
    key,
    message(timestamp, input.method, input.pathAndQuery, bodyBytes(input.body)),
  );
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: toHex(sig) };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

export async function verifyRequest(
  secret: string,
  input: Omit<SignInput, "timestamp"> & { timestampHeader: string | null; signatureHeader: string | null },
  options: { windowSeconds?: number; now?: number } = {},
): Promise<VerifyResult> {
  const { timestampHeader, signatureHeader } = input;
  if (!timestampHeader || !signatureHeader) return { ok: false, reason: "missing signature headers" };
  if (!/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: "malformed timestamp" };
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const window = options.windowSeconds ?? DEFAULT_REPLAY_WINDOW_SECONDS;
  if (Math.abs(now - Number(timestampHeader)) > window) {
    return { ok: false, reason: `timestamp outside the ${window}s replay window` };
  }
  const sig = fromHex(signatureHeader);
  if (!sig || sig.length !== 32) return { ok: false, reason: "malformed signature" };
  const key = await importKey(secret);
  // crypto.subtle.verify compares in constant time.
  const ok = await crypto.subtle.verify(
    "HMAC",
    key,
    sig,
    message(timestampHeader, input.method, input.pathAndQuery, bodyBytes(input.body)),
  );
  return ok ? { ok: true } : { ok: false, reason: "bad signature" };
}
