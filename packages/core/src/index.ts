export { Balloon } from "./balloon.js";
export type { BalloonOptions, BalloonSnapshot } from "./balloon.js";
export { NO_PAGE } from "./ports.js";
export type { Hypervisor, HypervisorReply, PageSource } from "./ports.js";
export { debugfsText, seedRecord } from "./debugfs.js";
