/**
 * What the port forwarder (main.ts) and the effect that starts it (src/effects/publish-ports.ts) agree on.
 * It runs from the sidecar image, one container per published port.
 */

/** Where the bundle sits in the sidecar image (images/gateway/Dockerfile). */
export const FORWARDER_PROGRAM = '/opt/gateway/port-forwarder.cjs';
/** The port it listens on inside its container; Docker publishes the host's address:port onto it. */
export const FORWARDER_LISTEN_PORT = 8080;
/** `ADDRESS:PORT` of the agent: the one place it connects to. */
export const FORWARDER_TARGET_ENV = 'FORWARDER_TARGET';
/** The bottle's internal subnet: it never listens there, so the agent cannot reach it. */
export const FORWARDER_INTERNAL_SUBNET_ENV = 'FORWARDER_INTERNAL_SUBNET';
/** Printed on stdout once it listens on every host-side address. */
export const FORWARDER_READY = 'port-forwarder ready';
