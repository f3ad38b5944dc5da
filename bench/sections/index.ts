import type { BenchSection } from '../harness.js';

/** Every bench section, in run order. Add new ones here (one file each). */
export const sections: BenchSection[] = [];
