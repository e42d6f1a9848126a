export { SimGuest } from "./guest.js";
export type { GuestSpec } from "./guest.js";
export { SimMonitor } from "./monitor.js";
export type { MonitorSpec } from "./monitor.js";
export { ScenarioError, parseScenario, validateScenario } from "./scenario.js";
export type { Scenario, ScenarioEvent } from "./scenario.js";
export { TracingHypervisor, cycleRecord, formatTraceRecord } from "./trace.js";
export type { CommandRecord, CycleRecord, DebugfsTraceRecord, ExitRecord, InitFailedRecord, TraceRecord } from "./trace.js";
export { TraceError, TraceReader, readTrace } from "./trace-reader.js";
export type { ReadCommand, ReadCycle, ReadDebugfs, ReadEvent, ReadExit, ReadInitFailed, ReadRecord } from "./trace-reader.js";
export { EventSchedule, Simulation, runScenario } from "./runner.js";
export type { RunOptions, RunResult } from "./runner.js";
export { builtinModernScenario, builtinScenario } from "./builtin.js";
export { ModernSimGuest } from "./modern-guest.js";
export type { ModernGuestSpec } from "./modern-guest.js";
export { ModernSimMonitor } from "./modern-monitor.js";
export type { ModernMonitorSpec, StartReply } from "./modern-monitor.js";
export { MODERN_EVENT_ACTIONS, parseModernScenario, validateModernScenario } from "./modern-scenario.js";
export type { ModernScenario, ModernScenarioEvent } from "./modern-scenario.js";
export { ModernEventSchedule, ModernSimulation, ModernTracingHypervisor, modernCycleRecord, runModernScenario, shrinkSlab } from "./modern-runner.js";
export type {
  DoorbellRecord,
  MigrateRecord,
  ModernCommandRecord,
  ModernCycleRecord,
  ModernDebugfsRecord,
  ModernExitRecord,
  ModernRunOptions,
  ModernRunResult,
  ModernTraceRecord,
  ShrinkRecord,
} from "./modern-runner.js";
