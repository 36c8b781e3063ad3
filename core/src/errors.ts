/**
 * Typed errors for adapter files (safetensors, adapter_config.json, PEFT keys, .onnx_adapter,
 * compatibility). Each carries a machine-readable `code` and a precise human message; the
 * edge maps `status` to its HTTP reply (400: the bytes/JSON are malformed; 422: well-formed
 * but unsupported or inconsistent).
 */

/** Malformed input: the file cannot be parsed as what it claims to be → HTTP 400. */
const MALFORMED_CODES = [
  // safetensors container
  "file_truncated",
  "header_too_large",
  "header_not_utf8",
  "header_not_json",
  "header_not_object",
  "duplicate_key",
  "invalid_tensor_info",
  "invalid_metadata",
  "invalid_shape",
  "unknown_dtype",
  "shape_size_mismatch",
  "offsets_out_of_range",
  "offsets_overlap",
  "offsets_gap",
  // adapter_config.json
  "config_not_json",
  "config_invalid",
  // .onnx_adapter container
  "onnx_adapter_invalid",
] as const;

/** Well-formed but refused: unsupported feature or inconsistent adapter → HTTP 422. */
const UNPROCESSABLE_CODES = [
  "unsupported_dtype",
  "unsupported_peft_type",
  "unsupported_dora",
  "unsupported_modules_to_save",
  "unsupported_bias",
  "unsupported_target",
  "unsupported_feature",
  "unexpected_tensor",
  "multiple_adapters",
  "missing_lora_a",
  "missing_lora_b",
  "rank_mismatch",
  "shape_mismatch",
  "non_finite_weight",
  "module_not_targeted",
  "empty_adapter",
  "onnx_adapter_version",
  "incompatible_adapter",
] as const;

export type AdapterFormatErrorCode =
  | (typeof MALFORMED_CODES)[number]
  | (typeof UNPROCESSABLE_CODES)[number];

const malformed = new Set<string>(MALFORMED_CODES);

export class AdapterFormatError extends Error {
  override readonly name = "AdapterFormatError";
  readonly code: AdapterFormatErrorCode;
  /** Extra machine-readable facts (tensor name, offsets, every mismatch, …). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: AdapterFormatErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** 400 when the input is malformed, 422 when it is well-formed but refused. */
  get status(): 400 | 422 {
    return malformed.has(this.code) ? 400 : 422;
  }
}

export function isAdapterFormatError(e: unknown): e is AdapterFormatError {
  return e instanceof AdapterFormatError;
}
