export { allocateKernelBytes, allFiniteInPlace, KERNEL_MIN_BYTES, f16ToF32Simd, simdKernelsAvailable } from "./kernels.js";
export { kernelModuleBytes } from "./kernel-module.js";
