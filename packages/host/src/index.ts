/**
 * `@vmballoon/host`: a host of many VMs under one memory policy
 * (`docs/HOST.md`). Filled in by the policies and the host model.
 */
export {};
