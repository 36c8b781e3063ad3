export { f16ToF32, f16ToF32AllFinite, f16AllFinite, f16ToF32Table, f16ToF32Reference, f32ToF16, f16BitsToF32Bits, f32BitsToF16Bits, f16ToNumber, numberToF16 } from "./f16.js";
export { bf16ToF32, f32ToBf16, f32BitsToBf16Bits } from "./bf16.js";
export { allocatedFloat32, freshFloat32 } from "./float32-alloc.js";
export type { Float32Alloc } from "./float32-alloc.js";
