import { describe, expect, it } from "vitest";
import { ERROR_TYPES, faultOf, isErrorType, readErrorAnswer, statusOf, typeForStatus, type ErrorType } from "./errors.js";

describe("the error vocabulary", () => {
  it("gives every type one status that agrees with its fault class", () => {
    for (const type of Object.keys(ERROR_TYPES) as ErrorType[]) {
      const status = statusOf(type);
      const fault = faultOf(type);
      if (fault === "request") expect(status, type).toBeLessThan(500);
      if (fault === "runner" || fault === "upstream") expect(status, type).toBeGreaterThanOrEqual(500);
    }
    expect(statusOf("adapter_unavailable")).toBe(502);
    expect(faultOf("adapter_unavailable")).toBe("upstream");
    expect(faultOf("overloaded")).toBe("busy");
    expect(faultOf("internal_error")).toBe("runner");
    expect(faultOf("context_length_exceeded")).toBe("request");
  });

  it("recognises only its own types (not Object.prototype keys)", () => {
    expect(isErrorType("invalid_request_error")).toBe(true);
    expect(isErrorType("toString")).toBe(false);
    expect(isErrorType("constructor")).toBe(false);
    expect(isErrorType(42)).toBe(false);
  });

  it("reads an answer by its type, else by its status", () => {
    expect(readErrorAnswer(502, JSON.stringify({ error: { type: "adapter_unavailable", message: "m" } }))).toEqual({
      type: "adapter_unavailable",
      message: "m",
      fault: "upstream",
    });
    // A known type decides even when the status would say otherwise.
    expect(readErrorAnswer(500, JSON.stringify({ error: { type: "overloaded", message: "full" } })).fault).toBe("busy");
    expect(readErrorAnswer(502, "<html>bad gateway</html>")).toEqual({ type: null, message: null, fault: "runner" });
    expect(readErrorAnswer(429, "")).toMatchObject({ fault: "busy" });
    expect(readErrorAnswer(418, JSON.stringify({ error: { type: "teapot", message: "no" } }))).toEqual({
      type: null,
      message: "no",
      fault: "request",
    });
  });

  it("maps a bare status to a type of the right class", () => {
    expect(typeForStatus(413)).toBe("payload_too_large_error");
    expect(typeForStatus(404)).toBe("not_found_error");
    expect(typeForStatus(429)).toBe("rate_limit_error");
    expect(typeForStatus(502)).toBe("runner_error");
    expect(typeForStatus(500)).toBe("internal_error");
    expect(typeForStatus(418)).toBe("invalid_request_error");
  });
});
