import { describe, expect, it } from "vitest";
import { PageStack } from "./page-stack.js";

describe("PageStack", () => {
  it("pops in the reverse order of pushes, across chunk boundaries", () => {
    const stack = new PageStack();
    const n = 200_000;
    for (let i = 0; i < n; i++) stack.push(i * 7);
    expect(stack.length).toBe(n);
    expect(stack.peek()).toBe((n - 1) * 7);
    let wrong = 0;
    for (let i = n - 1; i >= 0; i--) if (stack.pop() !== i * 7) wrong++;
    expect(wrong).toBe(0);
    expect(stack.length).toBe(0);
  });

  it("keeps 32-bit values whole", () => {
    const stack = new PageStack();
    stack.push(0xffffffff);
    stack.push(0);
    expect([stack.pop(), stack.pop()]).toEqual([0, 0xffffffff]);
  });

  it("copies out bottom first", () => {
    const stack = new PageStack();
    for (let i = 0; i < 70_000; i++) stack.push(i);
    const copy = stack.toArray();
    expect(copy.length).toBe(70_000);
    expect(copy[0]).toBe(0);
    expect(copy[69_999]).toBe(69_999);
  });

  it("holds 4 bytes a page and gives chunks back as it shrinks, keeping one spare", () => {
    const stack = new PageStack();
    const chunkBytes = (1 << 16) * 4;
    for (let i = 0; i < 10 * (1 << 16); i++) stack.push(i);
    expect(stack.byteLength).toBe(10 * chunkBytes);
    while (stack.length > 1 << 16) stack.pop();
    expect(stack.length).toBe(1 << 16);
    expect(stack.peek()).toBe((1 << 16) - 1);
    expect(stack.byteLength).toBe(2 * chunkBytes);
    // Pushing and popping across a boundary reuses the spare chunk.
    stack.push(1);
    stack.pop();
    expect(stack.byteLength).toBe(2 * chunkBytes);
  });

  it("remove() takes given pages out from anywhere, across chunks, and keeps the others in order", () => {
    const stack = new PageStack();
    const count = (1 << 16) + 10;
    for (let i = 0; i < count; i++) stack.push(i);
    expect(stack.remove(new Set([0, 5, 1 << 16, count - 1, 999_999_999]))).toBe(4);
    expect(stack.length).toBe(count - 4);
    const left = stack.toArray();
    expect([left[0], left[4], left[5], left[(1 << 16) - 3], left[(1 << 16) - 2], left.at(-1)]).toStrictEqual([
      1,
      6,
      7,
      (1 << 16) - 1,
      (1 << 16) + 1,
      count - 2,
    ]);
    expect(stack.peek()).toBe(count - 2);
  });
});
