import { describe, expect, it } from "vitest";
import { curlFor, openaiPythonSnippet } from "./snippets.js";
import { tokenShade, tokenTitle } from "./shade.js";

describe("snippets", () => {
  it("curl carries exactly the JSON body, shell-quoted (a quote in the prompt survives)", () => {
    const body = { model: "m", prompt: "it's", stream: true, adapters: [{ id: "a/b@1.0.0", weight: -0.5 }] };
    const curl = curlFor("http://edge", "/v1/completions", body);
    expect(curl.startsWith("curl -sN http://edge/v1/completions")).toBe(true);
    const quoted = curl.slice(curl.indexOf("-d ") + 3);
    // Undo POSIX single-quoting: '…'\''…' → the original text.
    const unquoted = quoted.slice(1, -1).replace(/'\\''/g, "'");
    expect(JSON.parse(unquoted)).toEqual(body);
  });

  it("python passes the mix through extra_body", () => {
    const py = openaiPythonSnippet({ origin: "http://edge", model: "m", prompt: "p", adapters: [{ id: "a/b@1.0.0", weight: 1 }] });
    expect(py).toContain('extra_body={"adapters": [{"id": "a/b@1.0.0", "weight": 1}]}');
    expect(py).toContain('base_url="http://edge/v1"');
  });
});

describe("token shading", () => {
  it("is transparent for a certain token, darker as p falls, absent without a logprob", () => {
    expect(tokenShade(0)).toBe("rgba(214, 90, 0, 0.000)");
    expect(tokenShade(Math.log(0.5))).toBe("rgba(214, 90, 0, 0.275)");
    expect(tokenShade(null)).toBeUndefined();
    expect(tokenTitle("a", Math.log(0.25))).toBe('"a"  p = 0.250  (logprob -1.386)');
  });
});
