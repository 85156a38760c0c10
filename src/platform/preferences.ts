// The --backend and --kernels choices, apart from the modules that act on them (backend.ts, kernels.ts), so a
// command's settings parse without loading backends and kernels: `supsup serve` starts its engine worker sooner.

export type BackendPreference = 'auto' | 'cuda' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'cuda', 'tensorflow', 'wasm', 'cpu'];

export type KernelPreference = 'auto' | 'native' | 'typescript';
export const KERNEL_PREFERENCES: readonly KernelPreference[] = ['auto', 'native', 'typescript'];
