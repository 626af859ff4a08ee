// The part of the npm package workerd (it ships no types) bench/peer.mjs uses, so that it is
// type-checked (bench/tsconfig.json). The package is CommonJS: its default import is module.exports.
declare module "workerd" {
  interface Workerd {
    /** Path of the workerd binary for this platform. */
    default: string;
    /** The package's (and the binary's) version, e.g. "1.20261117.1". */
    version: string;
    /** The newest compatibility date this workerd supports, YYYY-MM-DD. */
    compatibilityDate: string;
  }

  const workerd: Workerd;
  export default workerd;
}
