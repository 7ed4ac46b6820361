/**
 * `qbh acl check`: would the helper let this user use this bridge, and why — the deciding rule
 * with file:line, the port guard the tap would get, the files read or skipped. Exit 0 allowed, 1 denied.
 * @module
 */
import { AclError, DEFAULT_ACL_FILE, type AclCheck, type AclGuardInfo, type CheckAclOptions } from '../../acl/index.js';
import { checkBridge } from '../../attach/probe.js';
import { Rtnl } from '../../netlink/rtnl.js';
import { ifname, JSON_OPTION, parse } from '../args.js';
import { output, type Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';

/** The guard line: the words, and the line that decided (or that none did). */
function guardText(g: AclGuardInfo): string {
  return `  guard: ${g.words} (${g.rule === null ? 'no guard line' : `${g.rule.text}, ${g.rule.file}:${g.rule.line}`})`;
}

/** The explanation for a person. */
function checkText(c: AclCheck): string {
  const who = c.caller.user ?? `uid ${c.caller.uid}`;
  const lines = [c.reason, `  user: ${who} (uid ${c.caller.uid}, gid ${c.caller.gid}, groups ${c.caller.groups.join(',') || '-'})`];
  if (c.rule) lines.push(`  rule: ${c.rule.file}:${c.rule.line}: ${c.rule.text}`);
  if (c.overridden) lines.push(`  overrides: ${c.overridden.file}:${c.overridden.line}: ${c.overridden.text}`);
  if (c.guard) lines.push(guardText(c.guard));
  for (const f of c.files) {
    const extra = f.error ? ` (line ${f.error.line}: ${f.error.message})` : f.detail ? ` (${f.detail})` : '';
    lines.push(`  file: ${'  '.repeat(f.depth)}${f.path}: ${f.status}${extra}`);
  }
  for (const w of c.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}

const checkCommand: Command = {
  name: 'acl check',
  summary: 'Explain whether the bridge helper would allow a user a bridge: the rule that decided, the port guard, the files read.',
  usage: 'qbh acl check [BRIDGE | --bridge B] [--ifname NAME] [--user U] [--acl FILE] [-j|--json] [-p|--pretty]',
  options: `  BRIDGE, --bridge B
                the bridge, as QEMU passes it with --br= (a name the kernel would refuse is
                a usage error)
  --ifname NAME a tap name chosen with the helper's --ifname (checked against allow-ifname rules)
  --user U      check for this user (default: the current one, with real file access)
  --acl FILE    the ACL file (default ${DEFAULT_ACL_FILE})
  -j, --json    print the full result: {allowed, reason, rule, overridden, guard, fatal, files, messages,
                warnings, caller}; guard (when allowed): {words, rule: {file, line, text} | null}
  -p, --pretty  with --json: indented, over several lines

When allowed, the "guard:" line shows the port guard the tap gets (the guard, guard-user and
guard-group lines of the ACL) and the line that decided, or "none (no guard line)".

Exit status 0 when allowed, 1 when denied.`,
  async run(argv) {
    const { values, args } = parse(argv, { ...JSON_OPTION, bridge: { type: 'string' }, ifname: { type: 'string' }, user: { type: 'string' }, acl: { type: 'string' } }, { required: [], optional: ['BRIDGE'] });
    if (args[0] !== undefined && values.bridge !== undefined && args[0] !== values.bridge) {
      throw new UsageError(`two bridges: "${args[0]}" and --bridge "${values.bridge}"`);
    }
    const given = args[0] ?? values.bridge;
    if (given === undefined) throw new UsageError('missing BRIDGE (or --bridge B)');
    // A name no bridge can have: say so, rather than "no rule allows" it.
    const bridge = ifname(given, 'bridge name');
    const opts: CheckAclOptions = { bridge };
    if (values.user !== undefined) opts.user = values.user;
    if (values.ifname !== undefined) opts.ifname = values.ifname;
    if (values.acl !== undefined) opts.aclPath = values.acl;
    // As the helper decides, with its very lookup: on every name the kernel knows the bridge by (an
    // altname is denied when its kernel name is). No rtnetlink (odd sandbox): decided on the name as given.
    let rtnl: Rtnl | null = null;
    try {
      rtnl = Rtnl.openSync();
    } catch {
      // keep the plain decision
    }
    let result: AclCheck;
    try {
      result = checkBridge(opts, rtnl);
    } catch (e) {
      if (e instanceof AclError) throw new CliError(`cannot check bridge ${bridge}: ${e.message}`);
      throw e;
    } finally {
      rtnl?.close();
    }
    const { stderr: _bytes, ...json } = result;
    return output(json as Omit<AclCheck, 'stderr'>, values, (v) => checkText(v as AclCheck), result.allowed ? 0 : 1);
  },
};

export const aclCommands: Command[] = [checkCommand];
