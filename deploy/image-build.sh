#!/usr/bin/env sh
# The build stage of deploy/Dockerfile, also run by .ci/image-smoke on a plain host with Node 24:
# installs without running any package's install script (isolated-vm 7.0.1 ships prebuilt
# binaries; the 5.x line, which would compile from source, is never used on Node 24), builds,
# keeps only what the server needs at run time, and leaves it in ./image.
set -eu
npm ci --no-audit --no-fund --ignore-scripts
npm run build
npm prune --omit=dev --no-audit --no-fund
# Lines of isolated-vm for other Node versions (runtime/sandbox/ivm.ts picks 7 on Node 24).
rm -rf node_modules/isolated-vm-5 node_modules/isolated-vm-6
rm -rf image && mkdir image
cp -R package.json bin dist node_modules examples image/
# The server refuses to start without a usable isolated-vm: say so at build time instead.
(cd image && node --no-node-snapshot --input-type=module -e "
const { loadIsolatedVm } = await import('./dist/runtime/sandbox/ivm.js');
const { line, version, patched } = loadIsolatedVm();
if (!patched) throw new Error(line + ' ' + version + ' lacks the fix for GHSA-864f-rcv7-6rh4');
console.log('isolated-vm', version);")
