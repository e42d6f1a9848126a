/** A 32-bit register or port as the kernel prints it: `0x5670`, `0xffffffff` (a negative number as its unsigned value). */
export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}
