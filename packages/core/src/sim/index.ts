export { SimGuest } from "./guest.js";
export type { GuestSpec } from "./guest.js";
export { SimMonitor } from "./monitor.js";
export type { MonitorSpec } from "./monitor.js";
export { ScenarioError, parseScenario, validateScenario } from "./scenario.js";
export type { Scenario, ScenarioEvent } from "./scenario.js";
export { TracingHypervisor, cycleRecord, formatTraceRecord } from "./trace.js";
export type {
  CommandRecord,
  CycleRecord,
  DebugfsTraceRecord,
  ExitRecord,
  InitFailedRecord,
  TraceRecord,
} from "./trace.js";
export { EventSchedule, Simulation, runScenario } from "./runner.js";
export type { RunOptions, RunResult } from "./runner.js";
export { builtinScenario } from "./builtin.js";
