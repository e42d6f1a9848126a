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
export { PolicyInputError, parsePolicyInput, parsePolicyParams, validatePolicyInput } from "./policy/parse.js";
