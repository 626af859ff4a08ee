/**
 * The built-ins the guest code uses, captured when the prelude is evaluated, before any script
 * code runs: a script that later replaces JSON.parse or Object.keys changes what it sees, never
 * what the sandbox's own code does.
 */
export const parseJson = JSON.parse;
export const toJson = JSON.stringify;
export const objectKeys = Object.keys;
export const getPrototype = Object.getPrototypeOf;
export const createObject = Object.create;
export const setPrototype = Object.setPrototypeOf;
export const freeze = Object.freeze;
export const isArray = Array.isArray;
export const objectPrototype = Object.prototype;
export const ErrorClass = Error;
export const TypeErrorClass = TypeError;
export const StringOf = String;
export const isFiniteNumber = Number.isFinite;
export const now = Date.now;
export const Float64ArrayClass = Float64Array;
/** SharedArrayBuffer's byteLength getter: throws for anything that is not one (captured before the prelude wraps the constructor). */
export const sharedByteLength = Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength")!.get!;
export const reflectApply = Reflect.apply;
export const stringSlice = String.prototype.slice;
export const stringIndexOf = String.prototype.indexOf;
export const PromiseClass = Promise;
export const promiseThen = Promise.prototype.then;
