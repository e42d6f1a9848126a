export { SimGuest } from "./guest.js";
export type { GuestSpec } from "./guest.js";
export { SimMonitor } from "./monitor.js";
export type { MonitorSpec } from "./monitor.js";
export { InputError, ScenarioError, parseScenario, validateScenario } from "./scenario.js";
export type { Scenario, ScenarioEvent } from "./scenario.js";
export { TracingHypervisor, cycleRecord } from "./trace.js";
export type { CommandRecord, CycleRecord, DebugfsTraceRecord, ExitRecord, InitFailedRecord, TraceRecord } from "./trace.js";
export { TraceError, TraceReader, readTrace } from "./trace-reader.js";
export type { ReadCommand, ReadCycle, ReadDebugfs, ReadEvent, ReadExit, ReadInitFailed, ReadRecord } from "./trace-reader.js";
export { runScenario } from "./runner.js";
export type { RunOptions, RunResult } from "./runner.js";
export { builtinModernScenario, builtinScenario } from "./builtin.js";
export { ModernSimGuest } from "./modern-guest.js";
export type { ModernGuestSpec } from "./modern-guest.js";
export { ModernSimMonitor } from "./modern-monitor.js";
export type { ModernMonitorSpec, StartReply } from "./modern-monitor.js";
export { MODERN_EVENT_ACTIONS, parseModernScenario, validateModernScenario } from "./modern-scenario.js";
export type { ModernScenario, ModernScenarioEvent } from "./modern-scenario.js";
export { runModernScenario } from "./modern-runner.js";
export type { ModernRunOptions, ModernRunResult } from "./modern-runner.js";
export { ModernTracingHypervisor, modernCycleRecord } from "./modern-trace.js";
export { EventSchedule, applyMonitorEvent } from "./event-schedule.js";
export type { EventGuest, EventMonitor, MonitorEvent } from "./event-schedule.js";
export { DRIVER_NAMES, formatTraceRecord } from "./session.js";
export type {
  AnyTraceRecord,
  DriverName,
  DriverSession,
  DriverSnapshot,
  MachineOptions,
  MachinePageSource,
  SessionGuest,
  SessionMonitor,
  SessionOptions,
  ShrinkResult,
  UnloadResult,
} from "./session.js";
export { driver } from "./drivers.js";
export type { AnyScenario, Driver } from "./drivers.js";
export { runSession } from "./run-session.js";
export type { SessionRun } from "./run-session.js";
export { SeedSession, seedMachineSession, seedSimSession } from "./seed-session.js";
export type { SeedSessionOptions, SeedSessionPorts } from "./seed-session.js";
export { ModernSession, modernMachineSession, modernSimSession, shrinkSlab } from "./modern-session.js";
export type { ModernSessionOptions, ModernSessionPorts } from "./modern-session.js";
export type {
  DoorbellRecord,
  MigrateRecord,
  ModernCommandRecord,
  ModernCycleRecord,
  ModernDebugfsRecord,
  ModernExitRecord,
  ModernTraceRecord,
  ShrinkRecord,
} from "./modern-trace.js";
