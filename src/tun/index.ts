/**
 * The tap layer: /dev/net/tun taps (vnet_hdr, multiqueue, persistent) attached to bridges the way
 * QEMU needs them, the blocking core of qemu-bridge-helper, and fd passing over unix sockets.
 * @module
 */
export {
  openTap,
  openTaps,
  openTapSync,
  closeTap,
  destroyTaps,
  deleteTap,
  deleteTaps,
  tunFeatures,
  tapInfo,
  decodeTunFlags,
  MAX_TAPS_PER_CALL,
  type OpenTapOptions,
  type Tap,
  type HelperTapOptions,
  type HelperTap,
  type TunFeatures,
} from './tap.js';
export { TapError, helperMessage, type TapStep, type TapErrorContext } from './errors.js';
export { qemuNetdev, handOff, type QemuNetdev, type QemuNetdevOptions, type StdioArray } from './qemu.js';
export { sendFds, recvFds, FdMessageTruncatedError, type RecvFdsOptions } from './fds.js';
export { MAX_TAP_QUEUES, TAP_MAX_MTU, RECV_MAX_BYTES, SCM_MAX_FD } from './constants.js';
