import { describe, expect, it } from "vitest";
import { LoraedgeError } from "./api-error.js";
import { sseData, sseJson } from "./sse.js";

const encoder = new TextEncoder();

/** A body that delivers `text` in the given chunk sizes (bytes), to split events anywhere. */
function body(text: string, chunk = 3): ReadableStream<Uint8Array> & { cancelled: () => boolean } {
  const bytes = encoder.encode(text);
  let offset = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (offset >= bytes.length) return c.close();
      c.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
    cancel() {
      cancelled = true;
    },
  });
  return Object.assign(stream, { cancelled: () => cancelled });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("sseData", () => {
  it("yields each event's data in order up to [DONE], whatever the chunking and line ends", async () => {
    const text = 'data: {"a":1}\n\n: comment\nevent: x\ndata: {"b":"é"}\r\n\r\ndata: line1\ndata: line2\n\ndata: [DONE]\n\ndata: after\n\n';
    for (const chunk of [1, 2, 5, 1000]) {
      expect(await collect(sseData(body(text, chunk)))).toEqual(['{"a":1}', '{"b":"é"}', "line1\nline2"]);
    }
  });

  it("keepDone: yields [DONE] as the last payload, nothing after it", async () => {
    const text = 'data: 1\n\ndata: [DONE]\n\ndata: after\n\n';
    expect(await collect(sseData(body(text), { keepDone: true }))).toEqual(["1", "[DONE]"]);
    expect(await collect(sseData(body("data: 1\n\ndata: [DONE]"), { keepDone: true }))).toEqual(["1", "[DONE]"]);
  });

  it("keeps a last event that has no blank line after it", async () => {
    expect(await collect(sseData(body('data: 1\n\ndata: 2')))).toEqual(["1", "2"]);
  });

  it("cancels the body when the consumer stops early", async () => {
    const b = body('data: 1\n\ndata: 2\n\ndata: 3\n\n');
    for await (const x of sseData(b)) {
      expect(x).toBe("1");
      break;
    }
    expect(b.cancelled()).toBe(true);
  });
});

describe("sseJson", () => {
  it("parses JSON events and throws the API's error event as a LoraedgeError", async () => {
    const text = 'data: {"n":1}\n\ndata: {"error":{"type":"runner_error","message":"runner stream failed: boom"}}\n\ndata: [DONE]\n\n';
    const seen: unknown[] = [];
    const err = await (async () => {
      try {
        for await (const e of sseJson(body(text), "req-1")) seen.push(e);
      } catch (e) {
        return e;
      }
    })();
    expect(seen).toEqual([{ n: 1 }]);
    expect(err).toBeInstanceOf(LoraedgeError);
    expect(err).toMatchObject({ status: 502, type: "runner_error", message: "runner stream failed: boom", requestId: "req-1" });
  });

  it("refuses an event that is not JSON", async () => {
    await expect(collect(sseJson(body("data: nope\n\n")))).rejects.toMatchObject({ type: "invalid_response" });
  });
});
