/** One policy round, whichever the policy. */
import { esxDecide } from "./esx.js";
import { momDecide } from "./mom.js";
import { proxmoxDecide } from "./proxmox.js";
import type { PolicyDecision, PolicyInput, PolicyOutput } from "./types.js";

/** One round of the input's policy: every VM's allocation and balloon targets, in file order. A pure function. */
export function policyRound(input: PolicyInput): PolicyOutput {
  return policyDecide(input).output;
}

/** {@link policyRound} with the reasons for it, in words, for a person. */
export function policyDecide(input: PolicyInput): PolicyDecision {
  switch (input.policy) {
    case "esx":
      return esxDecide(input);
    case "mom":
      return momDecide(input);
    case "proxmox":
      return proxmoxDecide(input);
  }
}
