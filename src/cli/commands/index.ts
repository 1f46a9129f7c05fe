import type { Registrar } from '../program.js';

export type CommandModule = () => Promise<{ register: Registrar }>;
const control: CommandModule = () => import('./control.js');
/**
 * Every command's module, in the order help lists them. Only the module of the command being run
 * loads (help loads them all): bullmq, dockerode, ioredis and ink each cost a noticeable part of a second.
 */
export const COMMANDS: Array<[string, CommandModule]> = [
  ['start', () => import('./start.js')],
  ['resume', () => import('./resume.js')],
  ['attach', () => import('./attach.js')],
  ['logs', () => import('./logs.js')],
  ['list', () => import('./list.js')],
  ['events', () => import('./events.js')],
  ['egress', () => import('./egress.js')],
  ['replay', () => import('./replay.js')],
  ['approve', control],
  ['deny', control],
  ['stop', control],
  ['cleanup', () => import('./cleanup.js')],
  ['rm', () => import('./rm.js')],
  ['hosts', () => import('./hosts.js')],
  ['doctor', () => import('./doctor.js')],
  ['shutdown', () => import('./shutdown.js')],
  ['dashboard', () => import('./dashboard.js')],
  ['usage', () => import('./usage.js')],
  ['budget', () => import('./budget.js')],
  ['wait', () => import('./wait.js')],
  ['notify', () => import('./notify.js')],
  ['port', () => import('./port.js')],
  ['ports', () => import('./ports.js')],
];
