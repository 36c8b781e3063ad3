/**
 * `onnxruntime.adapters.TensorDataType` (adapter_schema.fbs), the same numbering as ONNX
 * TensorProto.DataType. Names are lower-case ONNX names; `bytes` is the element size in raw_data.
 */
export const ONNX_ADAPTER_DTYPES = {
  float32: { code: 1, bytes: 4 },
  uint8: { code: 2, bytes: 1 },
  int8: { code: 3, bytes: 1 },
  uint16: { code: 4, bytes: 2 },
  int16: { code: 5, bytes: 2 },
  int32: { code: 6, bytes: 4 },
  int64: { code: 7, bytes: 8 },
  bool: { code: 9, bytes: 1 },
  float16: { code: 10, bytes: 2 },
  float64: { code: 11, bytes: 8 },
  uint32: { code: 12, bytes: 4 },
  uint64: { code: 13, bytes: 8 },
  complex64: { code: 14, bytes: 8 },
  complex128: { code: 15, bytes: 16 },
  bfloat16: { code: 16, bytes: 2 },
  float8e4m3fn: { code: 17, bytes: 1 },
  float8e4m3fnuz: { code: 18, bytes: 1 },
  float8e5m2: { code: 19, bytes: 1 },
  float8e5m2fnuz: { code: 20, bytes: 1 },
} as const;

export type OnnxAdapterDtype = keyof typeof ONNX_ADAPTER_DTYPES;

const byCode = new Map<number, OnnxAdapterDtype>(
  (Object.entries(ONNX_ADAPTER_DTYPES) as Array<[OnnxAdapterDtype, { code: number }]>).map(([name, v]) => [v.code, name]),
);

/** Name of a TensorDataType code, or null (UNDEFINED = 0, STRING = 8 and unknown codes). */
export function onnxAdapterDtypeFromCode(code: number): OnnxAdapterDtype | null {
  return byCode.get(code) ?? null;
}
