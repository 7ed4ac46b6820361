// What the bench scripts share: set-up inside the namespaces they run in.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';

/** Runs a command, its stdout dropped and its stderr shown; throws if it fails. */
export const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });

/**
 * Gives this mount namespace its own /etc/qemu/bridge.conf holding `acl`; the host's /etc is never
 * written. /etc/qemu is a tmpfs; where it does not exist, /etc is overlaid first, its upper layer
 * on /run — a tmpfs mounted here unless the caller mounted one already (`runIsTmpfs`).
 */
export function privateEtcQemu(acl = 'allow br0\n', { runIsTmpfs = false } = {}) {
  if (!existsSync('/etc/qemu')) {
    if (!runIsTmpfs) sh('mount', '-t', 'tmpfs', 'qbh-bench-run', '/run');
    mkdirSync('/run/etc-upper');
    mkdirSync('/run/etc-work');
    sh('mount', '-t', 'overlay', 'qbh-bench-etc', '-o', 'lowerdir=/etc,upperdir=/run/etc-upper,workdir=/run/etc-work', '/etc');
    mkdirSync('/etc/qemu');
  }
  sh('mount', '-t', 'tmpfs', 'qbh-bench', '/etc/qemu');
  writeFileSync('/etc/qemu/bridge.conf', acl, { mode: 0o644 });
}

/**
 * The raw datagrams of one full link dump (RTM_GETLINK, NLM_F_DUMP, stats skipped), as the kernel
 * sends them: what the decode-throughput figures decode. Needs a build (dist/).
 */
export async function rawLinkDump() {
  const { native } = await import('../dist/native.js');
  const { encodeMessage, encodeLink } = await import('../dist/netlink/message.js');
  const { fd } = native.nlOpen(0); // NETLINK_ROUTE
  native.setsockoptInt(fd, 1, 8, 1 << 20); // SOL_SOCKET, SO_RCVBUF
  native.nlSend(fd, encodeMessage({ type: 18, flags: 0x301, seq: 1, pid: 0 }, encodeLink({ attrs: { extMask: 8 } })));
  const out = [];
  for (;;) {
    const r = native.nlRecv(fd, 2000);
    if (!r) break;
    out.push(r.data);
    if (r.data.readUInt16LE(4) === 3) break; // NLMSG_DONE
  }
  native.close(fd);
  return out;
}
