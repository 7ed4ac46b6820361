/**
 * Where the package lives. This file sits one level below the package root in every form the code
 * runs in (src/root.ts, dist/root.js, and the dist/*.cjs bundles, where import.meta.url is the
 * bundle's own), so `..` from it is the root.
 * @internal
 * @module
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root folder (where package.json, bin/ and build/ are). In the CommonJS bundles
 * `__dirname` is dist/ itself: no URL made and parsed at every start.
 */
export const PACKAGE_ROOT = typeof __dirname === 'string' ? dirname(__dirname) : fileURLToPath(new URL('..', import.meta.url));
