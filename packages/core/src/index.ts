export { Balloon } from "./balloon.js";
export type { BalloonOptions, BalloonSnapshot, FrameCheck, FrameCheckTotals } from "./balloon.js";
export { NO_PAGE } from "./ports.js";
export type { Hypervisor, HypervisorReply, PageSource } from "./ports.js";
export { debugfsText, seedRecord } from "./debugfs.js";
export { EBUSY, ModernBalloon } from "./modern-balloon.js";
export type {
  DoorbellHandle,
  ModernBalloonOptions,
  ModernFrameCheck,
  ModernFrameCheckTotals,
  ModernBalloonSnapshot,
  ModernBalloonStats,
} from "./modern-balloon.js";
export type { ModernHypervisor, ModernHypervisorReply, ModernPageSource } from "./ports.js";
