export { allocateKernelBytes, allFiniteInPlace, f16ToF32Simd, simdKernelsAvailable } from "./kernels.js";
export { kernelModuleBytes } from "./kernel-module.js";
