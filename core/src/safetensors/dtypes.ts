/** Tensor dtypes this project reads and writes (others are refused with `unsupported_dtype`). */
export type SafetensorsDtype = "F32" | "F16" | "BF16";

export const SUPPORTED_DTYPES: readonly SafetensorsDtype[] = ["F32", "F16", "BF16"];

/** Bytes per element of each supported dtype. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** Every dtype the safetensors format defines (so a valid-but-unsupported dtype gets a precise refusal). */
export const KNOWN_SAFETENSORS_DTYPES: ReadonlySet<string> = new Set([
  "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
  "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "C64", "I64", "U64",
]);

export function isSupportedDtype(d: string): d is SafetensorsDtype {
  return d === "F32" || d === "F16" || d === "BF16";
}
