/**
 * `@vmballoon/host`: a host of many VMs under one memory policy
 * (`docs/HOST.md`). The policies are pure functions of one round's input
 * (`policyRound`); the host model calls them.
 */
export { esxDecide, esxNextState, esxRho, esxRound, esxThresholds } from "./policy/esx.js";
export type { EsxThresholds } from "./policy/esx.js";
export { momDecide, momRound } from "./policy/mom.js";
export { proxmoxDecide, proxmoxRound } from "./policy/proxmox.js";
export { policyDecide, policyRound } from "./policy/round.js";
export { ESX_DEFAULTS, ESX_STATES, MOM_DEFAULTS, POLICY_DEFAULTS, POLICY_NAMES, PROXMOX_DEFAULTS } from "./policy/types.js";
export type {
  DriverName,
  EsxInput,
  EsxParams,
  EsxState,
  MomInput,
  MomParams,
  PolicyDecision,
  PolicyHost,
  PolicyInput,
  PolicyName,
  PolicyOutput,
  PolicyParamsOf,
  PolicyVm,
  PolicyVmOutput,
  ProxmoxInput,
  ProxmoxParams,
} from "./policy/types.js";
// The host model (docs/HOST.md): the scenario, the run, its trace.
export { parseHostScenario, validateHostScenario } from "./scenario.js";
export type { HostEvent, HostGuestSpec, HostScenario, HostScenarioOptions, HostVmSpec } from "./scenario.js";
export { WorkloadError, parseWorkloadCsv } from "./workload-csv.js";
export type { CsvWorkload } from "./workload-csv.js";
export { Series } from "./series.js";
export type { SeriesPoints } from "./series.js";
export { mulberry32 } from "./mulberry32.js";
export { HostSimulation, runHost } from "./host.js";
export type { HostRunOptions, HostSecond } from "./host.js";
export type { VmScenario, VmScenarioEvent } from "./vm.js";
export type { EndRecord, HostRecord, HostTraceRecord, PolicyRecord, VmRecord, VmTotals } from "./trace.js";
export { checkHostTrace } from "./check.js";
export { HOST_EXPERIMENTS, hostExperiment, withOverrides } from "./experiments.js";
export type { HostExperiment } from "./experiments.js";
export { createVmDriver } from "./vm-driver.js";
export type { VmDriver, VmDriverOptions } from "./vm-driver.js";
export { PolicyInputError, parsePolicyInput, parsePolicyParams, validatePolicyInput } from "./policy/parse.js";
