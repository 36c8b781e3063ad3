export { allocateKernelBytes, allFiniteInPlace, allFiniteStreamed, allWithinStreamed, claimForWidening, f16ToF32InMemory, f16ToF32Simd, float32LimitBits, forbidWidening, halvesAllFiniteStreamed, KERNEL_MIN_BYTES, simdKernelsAvailable, transposer, wasWidened } from "./kernels.js";
export type { KernelBytesOptions, Transposer } from "./kernels.js";
export { kernelModuleBytes } from "./kernel-module.js";
