'use strict';
// What `require('qbh')` loads on a Node that cannot require() an ES module (before 20.19 and 22.12,
// or with --no-experimental-require-module): one clear message instead of
// ERR_PACKAGE_PATH_NOT_EXPORTED. Where require() of ES modules works, the "module-sync" condition
// of package.json's exports gives require() the ES module itself, and this file is never read.
const error = new Error(
  "qbh is an ES module, and this Node cannot require() one (Node 20.19 or 22.12 and later can). " +
    "From CommonJS, load it with import(): `const { listBridges } = await import('qbh')`; " +
    'TypeScript keeps import() as written with "module": "node16" or "nodenext".',
);
error.code = 'ERR_REQUIRE_ESM';
throw error;
