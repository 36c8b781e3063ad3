import { expect } from "vitest";
import { AdapterFormatError, type AdapterFormatErrorCode } from "../errors.js";

/**
 * Runs `fn` and expects an AdapterFormatError with `code` (and a message matching `message`);
 * any other error is rethrown, no error at all fails. Returns the error for further checks.
 */
export function expectFormatError(fn: () => unknown, code: AdapterFormatErrorCode, message?: RegExp): AdapterFormatError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AdapterFormatError)) throw e;
    expect(e.code, e.message).toBe(code);
    if (message) expect(e.message).toMatch(message);
    return e;
  }
  throw new Error(`expected AdapterFormatError ${code}, nothing was thrown`);
}
