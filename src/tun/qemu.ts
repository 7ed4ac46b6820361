/**
 * Handing an open tap to QEMU: the `-netdev tap,fds=…` arguments and the `stdio` array that puts
 * the fds at those numbers in the child, and the hand-off that closes the parent's copies, so the
 * tap lives exactly as long as QEMU holds it (a killed guest takes its tap with it).
 * @module
 */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { InvalidArgumentError } from '../errors.js';
import { closeTap, type Tap } from './tap.js';

/** A `stdio` array for `child_process.spawn`: entry N becomes the child's fd N. */
export type StdioArray = Extract<StdioOptions, unknown[]>;

/** Options of {@link qemuNetdev}. */
export interface QemuNetdevOptions {
  /** The netdev id (`-netdev tap,id=ID`), which `-device virtio-net-pci,netdev=ID` refers to. */
  id: string;
  /**
   * The child's stdio so far; the tap's fds are appended, so they get the next numbers. Default
   * `['inherit', 'inherit', 'inherit']`. Pass another call's `stdio` to give QEMU several taps.
   */
  stdio?: StdioArray;
}

/** What {@link qemuNetdev} returns: spread `args` into QEMU's argv and pass `stdio` to spawn. */
export interface QemuNetdev {
  /** `['-netdev', 'tap,id=ID,fds=3:4:…']` (`fd=3` for a single queue). */
  args: string[];
  /** The stdio array with the tap's fds at the numbers `args` names. */
  stdio: StdioArray;
}

/**
 * The QEMU arguments and spawn `stdio` for an open tap: each queue fd is placed at the child fd
 * the `-netdev` option names. QEMU probes vnet_hdr and the queue count itself (it refuses
 * `vnet_hdr=` and `queues=` beside `fds=`). After `spawn`, call {@link handOff}.
 *
 * ```ts
 * const tap = await openTap({ bridge: 'br0', queues: 2 });
 * const net = qemuNetdev(tap, { id: 'n0' });
 * const qemu = spawn('qemu-system-x86_64', [...net.args, '-device', 'virtio-net-pci,netdev=n0,mq=on'], { stdio: net.stdio });
 * await handOff(tap, qemu); // our copies closed: the tap dies with QEMU
 * ```
 * Equivalent to QEMU's `-netdev tap,id=ID,fds=A:B` with the fds inherited.
 * @category Taps for QEMU
 */
export function qemuNetdev(tap: Pick<Tap, 'fds'>, opts: QemuNetdevOptions): QemuNetdev {
  const where = { op: 'qemuNetdev', target: opts.id };
  if (!/^[A-Za-z][\w.-]*$/.test(opts.id)) throw new InvalidArgumentError(`invalid netdev id "${opts.id}": a letter, then letters, digits, "-", "." or "_" (QEMU's id rule)`, where);
  if (tap.fds.length === 0) throw new InvalidArgumentError('the tap has no open fds (closed or already handed off)', where);
  const stdio: StdioArray = [...(opts.stdio ?? ['inherit', 'inherit', 'inherit'])];
  const numbers = tap.fds.map((fd) => stdio.push(fd) - 1);
  const fdOpt = numbers.length === 1 ? `fd=${numbers[0]}` : `fds=${numbers.join(':')}`;
  return { args: ['-netdev', `tap,id=${opts.id},${fdOpt}`], stdio };
}

/**
 * Gives the tap to a child spawned with {@link qemuNetdev}'s `stdio`: closes this process's copies
 * of its fds at once (spawn has already duplicated them into the child, or failed), so only the
 * child holds the tap and a non-persistent tap disappears when the child exits or is killed.
 * Resolves once the child is running; rejects with spawn's error if it could not be started (the
 * tap is then gone too). Without this, the parent's copies keep the tap, and its place on the
 * bridge, alive after the guest is gone.
 * Equivalent to closing the fds after fork/exec, as libvirt does after starting QEMU.
 * @category Taps for QEMU
 */
export function handOff(tap: Pick<Tap, 'fds'>, child: ChildProcess): Promise<void> {
  closeTap(tap);
  if (child.pid !== undefined) return Promise.resolve();
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
}
