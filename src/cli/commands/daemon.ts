/**
 * `qbh daemon`: run the privileged tap service in the foreground (src/daemon). The unprivileged
 * helper asks it for taps when it lacks CAP_NET_ADMIN itself. See docs/daemon.md.
 * @module
 */
import { DEFAULT_ACL_FILE, readUserDb } from '../../acl/index.js';
import { runDaemon, type DaemonConfig } from '../../daemon/main.js';
import { DAEMON_SOCKET } from '../../attach/protocol.js';
import { MAX_CONNECTIONS, MAX_CONNECTIONS_PER_UID, REQUEST_DEADLINE_MS } from '../../daemon/server.js';
import { parse } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../errors.js';
import { version } from '../version.js';

function socketMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new UsageError(`invalid --socket-mode "${text}": expected octal such as 0666 or 0660`);
  return parseInt(text, 8);
}

function socketGroup(text: string): number {
  if (/^[0-9]+$/.test(text) && Number(text) <= 4294967294) return Number(text);
  const g = readUserDb().group(text);
  if (g === undefined) throw new UsageError(`invalid --socket-group "${text}": no such group in /etc/group`);
  return g.gid;
}

const daemonCommand: Command = {
  name: 'daemon',
  summary: 'Run the privileged service that gives unprivileged (and sandboxed) QEMU its taps.',
  usage: 'qbh daemon [--socket PATH] [--acl FILE] [--socket-mode MODE] [--socket-group GROUP]',
  options: `  --socket PATH         where to listen (default ${DAEMON_SOCKET}, the path the helper asks;
                        its directory is made 0755 if missing, and it and every directory
                        above must be root's and not group/world-writable unless sticky).
                        Ignored under systemd socket activation (LISTEN_FDS/LISTEN_PID: the
                        socket is fd 3; systemd-socket-activate makes it 0644: chmod it).
  --acl FILE            the ACL (default ${DEFAULT_ACL_FILE}), read afresh for every request
  --socket-mode MODE    the socket's mode (default 0666: anyone may ask, the ACL decides)
  --socket-group GROUP  the socket's group (name or gid), e.g. with --socket-mode 0660

Runs in the foreground as root (it needs CAP_NET_ADMIN, and reads ACL files for other users),
logs to stderr: one audit line per decision (time, peer uid/gid/groups/pid and command,
bridge, tap, allowed/denied and the rule FILE:LINE that decided). The peer's identity comes
from the kernel (SO_PEERCRED, SO_PEERGROUPS); the ACL is evaluated for it, hardened (every
ACL file and directory must be root's and not group- or world-writable). What the peer may
read is what the kernel lets it read: files are opened with its credentials (with CAP_SETUID
and CAP_SETGID), else mode bits and POSIX ACLs are evaluated as the kernel does.

One request per connection, one line of JSON each way (docs/daemon.md). Limits: a request of
at most 4096 bytes within ${REQUEST_DEADLINE_MS / 1000} s of connecting, ${MAX_CONNECTIONS} connections, ${MAX_CONNECTIONS_PER_UID} per uid (more get an
EAGAIN reply; the helper retries). SIGTERM/SIGINT: stop accepting, finish what is in flight
(bounded), exit 0. SIGHUP (systemctl reload): decide every tap handed out again and delete
those the ACL no longer allows, and those made persistent and no longer attached (a tap fd is
full control of its tap: deleting it is the only way to take it back).`,
  async run(argv, io) {
    const { values } = parse(
      argv,
      { socket: { type: 'string' }, acl: { type: 'string' }, 'socket-mode': { type: 'string' }, 'socket-group': { type: 'string' } },
      { required: [] },
    );
    const config: DaemonConfig = {
      socket: values.socket ?? DAEMON_SOCKET,
      acl: values.acl ?? DEFAULT_ACL_FILE,
      socketMode: values['socket-mode'] === undefined ? 0o666 : socketMode(values['socket-mode']),
      socketGroup: values['socket-group'] === undefined ? null : socketGroup(values['socket-group']),
    };
    if (!config.socket.startsWith('/')) throw new UsageError(`invalid --socket "${config.socket}": an absolute path is needed`);
    const signal = io.signal ?? new AbortController().signal;
    return runDaemon(config, { signal, log: (line) => io.stderr.write(`${line}\n`), env: io.env, version: version() });
  },
};

export const daemonCommands: Command[] = [daemonCommand];
